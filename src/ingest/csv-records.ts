/**
 * The reading layer of CSV ingest: bytes → header + records with the line each starts on. csv-parse does the
 * parsing; this adds delimiter sniffing, size limits, encoding checks, exact line numbers and errors that name
 * file, line and column. Memory stays flat: records are pulled one at a time with back-pressure.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { pipeline, Transform } from 'node:stream';

import { CsvError, type Info, type Options, parse, type Parser } from 'csv-parse';

import { InputError, toError } from '../domain/errors.js';

export interface CsvReadOptions {
  readonly file: string;
  /** Refuse files bigger than this before reading a byte. */
  readonly maxFileBytes: number;
  /** Longest single cell or record, in characters (csv-parse max_record_size). */
  readonly maxRecordBytes: number;
  /** Most cells a row may have: a wider row almost always means a wrong delimiter. */
  readonly maxColumns: number;
}

/** One parsed record: its cells and the 1-based line it starts on. */
export interface CsvRecord {
  readonly line: number;
  readonly cells: readonly string[];
}

export interface CsvRecords {
  readonly header: readonly string[];
  /** Where the header row starts: 1 unless blank lines come first. */
  readonly headerLine: number;
  readonly delimiter: string;
  /** Data records after the header; blank lines (all cells empty) are skipped. Single use. */
  records(): AsyncIterable<CsvRecord>;
  /** sha256 of the file's bytes, complete once records() has been consumed. */
  sha256(): string;
  /** Stops reading and releases the file; for a caller that gives up before records() ends. Idempotent. */
  close(): void;
}

const SNIFF_BYTES = 64 * 1024;
const DELIMITERS = [',', ';', '\t'] as const;
const LINE_BREAK = /\r\n|\r|\n/g;

/**
 * Picks the delimiter that occurs most often outside quotes on the first non-blank line, the header (ties and
 * none → comma). Blank lines before it are skipped as the parser skips them.
 */
export function sniffDelimiter(text: string): string {
  const counts = new Map<string, number>(DELIMITERS.map((d) => [d, 0]));
  let quoted = false;
  let content = false;
  for (const ch of text) {
    if (ch === '"') quoted = !quoted;
    if (!quoted && (ch === '\n' || ch === '\r')) {
      if (content) break;
      counts.forEach((_, d) => counts.set(d, 0)); // whitespace only (tabs too): not the header yet
      continue;
    }
    if (ch.trim() !== '') content = true;
    if (!quoted && counts.has(ch)) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  }
  let best = ',';
  for (const d of DELIMITERS) if ((counts.get(d) ?? 0) > (counts.get(best) ?? 0)) best = d;
  return best;
}

/** Refuses what is clearly not a UTF-8 CSV, with what to do about it. */
function checkEncoding(file: string, head: Buffer): void {
  const fail = (msg: string): never => {
    throw new InputError({ file, line: 1 }, msg);
  };
  if (head.length === 0) fail('the file is empty: expected a header row such as "customerPhoneNumber,wabaNumber"');
  if (head.subarray(0, 4).equals(Buffer.from('PK\x03\x04', 'latin1'))) {
    fail('this is a zip/Excel (.xlsx) file, not CSV: in your spreadsheet use "Save as / Download → CSV UTF-8"');
  }
  if (head.subarray(0, 8).equals(Buffer.from('d0cf11e0a1b11ae1', 'hex'))) {
    fail('this is an Excel 97-2003 (.xls) file, not CSV: in your spreadsheet use "Save as → CSV UTF-8"');
  }
  if ((head[0] === 0xff && head[1] === 0xfe) || (head[0] === 0xfe && head[1] === 0xff)) {
    fail('the file is UTF-16 ("Unicode text"): save it as "CSV UTF-8" instead');
  }
  if (head.includes(0)) fail('the file contains NUL bytes: it looks binary, not a CSV text file');
}

const QUEUE_HIGH = 512;

/**
 * Pulls parsed records one at a time with back-pressure: the stream pauses while QUEUE_HIGH records wait.
 * Records already queued are handed out before an error; records still buffered inside the stream are dropped
 * with it. That loses nothing that matters (a broken file is refused as a whole) and the error's line does not
 * depend on them: it is known at parse time (see `lineCounter`).
 */
function recordQueue<T>(stream: NodeJS.ReadableStream): () => Promise<T | undefined> {
  const queue: T[] = [];
  let ended = false;
  let failure: unknown;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    wake?.();
    wake = undefined;
  };
  stream.on('data', (rec: T) => {
    queue.push(rec);
    if (queue.length >= QUEUE_HIGH) stream.pause();
    notify();
  });
  stream.on('end', () => {
    ended = true;
    notify();
  });
  stream.on('error', (err: unknown) => {
    failure ??= err;
    notify();
  });
  stream.on('close', () => {
    ended = true;
    notify();
  });
  return async () => {
    for (;;) {
      const rec = queue.shift();
      if (rec !== undefined) {
        if (queue.length < QUEUE_HIGH / 2 && stream.isPaused()) stream.resume();
        return rec;
      }
      if (failure !== undefined) throw toError(failure);
      if (ended) return undefined;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  };
}

function countLineBreaks(cells: readonly string[]): number {
  let n = 0;
  for (const c of cells) n += c.match(LINE_BREAK)?.length ?? 0;
  return n;
}

/**
 * Where records start, 1-based. csv-parse's own counter counts a CRLF inside a quoted cell twice, so we count:
 * a record starts one line after the previous one ended, plus the blank lines csv-parse skipped in between.
 * It runs inside the parser (on_record), so it is exact when a later record fails, however far the consumer
 * lags behind.
 */
function lineCounter(): { start(emptyLines: number): number; finish(emptyLines: number, cells: readonly string[]): number } {
  let next = 1;
  let emptySeen = 0;
  const start = (emptyLines: number): number => next + Math.max(0, emptyLines - emptySeen);
  return {
    /** Start line of the record being parsed now. */
    start,
    /** Start line of the record just parsed; moves past it. */
    finish(emptyLines, cells) {
      const line = start(emptyLines);
      emptySeen = emptyLines;
      next = line + 1 + countLineBreaks(cells);
      return line;
    },
  };
}

/**
 * csv-parse builds a record's cell array before any hook sees it, and empty cells do not count towards
 * max_record_size, so one line of a hundred million commas would exhaust memory before on_record could object.
 * After each input chunk (64 KiB) this looks at the record being built (csv-parse's `state.record`: not in its
 * typings, stable since v4; if it ever goes, on_record's check after the record still applies) and stops once
 * it is far past the limit. "Far past" leaves an ordinary too-wide row to on_record, which knows its exact width.
 */
function guardColumnCount(parser: Parser, maxColumns: number, tooWide: (columns: number) => Error): void {
  const hardLimit = Math.max(2 * maxColumns, 65_536);
  const inner = parser._transform.bind(parser);
  parser._transform = (chunk, encoding, done) => {
    inner(chunk, encoding, (err?: Error | null) => {
      const building = (parser as unknown as { state?: { record?: unknown[] } }).state?.record?.length ?? 0;
      done(err ?? (building > hardLimit ? tooWide(building) : undefined));
    });
  };
}

/** Maps a csv-parse error to an InputError at the line where the broken record starts. */
function csvErrorAt(file: string, err: CsvError, line: number, maxRecordBytes: number): InputError {
  const context = err as CsvError & { column?: number | string };
  const column = typeof context.column === 'number' ? context.column + 1 : undefined;
  const limit = maxRecordBytes % (1024 * 1024) === 0 ? `${maxRecordBytes / 1024 / 1024} MiB` : `${maxRecordBytes} characters`;
  const what: Partial<Record<string, string>> = {
    CSV_QUOTE_NOT_CLOSED: 'a quoted cell is never closed: expected a closing " before the end of the file',
    CSV_INVALID_CLOSING_QUOTE: 'unexpected character after a closing quote: expected a delimiter or end of line (write "" for a quote inside a quoted cell)',
    CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE: 'unexpected character after a closing quote: expected a delimiter or end of line',
    INVALID_OPENING_QUOTE: 'a quote inside an unquoted cell: put the whole cell in quotes and write "" for each quote in it',
    CSV_MAX_RECORD_SIZE: `a row is larger than the per-row limit of ${limit}: is a quote left open?`,
  };
  const message = what[err.code] ?? `malformed CSV: ${err.message}`;
  return new InputError({ file, line, ...(column === undefined ? {} : { column }) }, message, { cause: err });
}

/** Opens a CSV file: checks size and encoding, sniffs the delimiter, reads the header row. */
export async function readCsvRecords(opts: CsvReadOptions): Promise<CsvRecords> {
  const { file } = opts;
  const info = await stat(file).catch((err: NodeJS.ErrnoException) => {
    throw new InputError({ file }, err.code === 'ENOENT' ? 'no such file' : `cannot read the file (${err.code ?? err.message})`);
  });
  if (!info.isFile()) throw new InputError({ file }, 'not a regular file');
  if (info.size > opts.maxFileBytes) {
    const mb = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MB`;
    throw new InputError({ file }, `the file is ${mb(info.size)}, over the ${mb(opts.maxFileBytes)} limit (MAX_FILE_MB): split it or raise the limit`);
  }
  const handle = await open(file, 'r');
  const head = Buffer.alloc(Math.min(SNIFF_BYTES, info.size));
  try {
    await handle.read(head, 0, head.length, 0);
  } finally {
    await handle.close();
  }
  checkEncoding(file, head);
  const delimiter = sniffDelimiter(head.toString('utf8').replace(/^\ufeff/, ''));

  const hash = createHash('sha256');
  let digest = '';
  const hasher = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      done(null, chunk);
    },
    flush(done) {
      digest = hash.digest('hex');
      done();
    },
  });
  const lines = lineCounter();
  const tooWide = (line: number, columns: string): InputError =>
    new InputError({ file, line }, `${columns} columns, over the limit of ${opts.maxColumns}: is the delimiter right?`);
  // on_record turns cells into CsvRecord; csv-parse's overloads only type that together with `columns`.
  const parseOptions: Options<CsvRecord, string[]> = {
    bom: true,
    delimiter,
    // Files pasted together from several systems mix LF, CRLF and CR. Detecting one ending from the first line
    // would glue every row with another ending into one record, or leave a stray \r in the last cell.
    record_delimiter: ['\r\n', '\n', '\r'],
    relax_column_count: true,
    skip_empty_lines: true,
    max_record_size: opts.maxRecordBytes,
    on_record: (cells: string[], recInfo: Info): CsvRecord | null => {
      const line = lines.finish(recInfo.empty_lines, cells);
      if (cells.length > opts.maxColumns) throw tooWide(line, String(cells.length));
      return cells.every((c) => c.trim() === '') ? null : { line, cells }; // ",,," is a blank line a spreadsheet wrote
    },
  };
  const parser = parse(parseOptions as unknown as Options);
  guardColumnCount(parser, opts.maxColumns, (columns) => tooWide(lines.start(parser.info.empty_lines), `${columns} or more`));
  const stream = pipeline(createReadStream(file), hasher, parser, () => {
    /* errors surface through the record queue below */
  });
  const next = recordQueue<CsvRecord>(stream);

  const pull = async (): Promise<CsvRecord | undefined> => {
    try {
      return await next();
    } catch (err) {
      if (err instanceof InputError) throw err;
      if (err instanceof CsvError) {
        const emptyLines = (err as CsvError & { empty_lines?: number }).empty_lines ?? parser.info.empty_lines;
        throw csvErrorAt(file, err, lines.start(emptyLines), opts.maxRecordBytes);
      }
      throw new InputError({ file, line: lines.start(parser.info.empty_lines) }, `cannot read the file: ${(err as Error).message}`, { cause: err });
    }
  };

  const first = await pull();
  if (first === undefined) {
    stream.destroy();
    throw new InputError({ file, line: 1 }, 'the file has no rows: expected a header row such as "customerPhoneNumber,wabaNumber"');
  }
  let consumed = false;
  return {
    header: first.cells,
    headerLine: first.line,
    delimiter,
    sha256: () => digest,
    close: () => {
      stream.destroy();
    },
    async *records() {
      if (consumed) throw new Error('records() can be read once');
      consumed = true;
      try {
        for (let rec = await pull(); rec !== undefined; rec = await pull()) yield rec;
      } finally {
        stream.destroy();
      }
    },
  };
}
