/**
 * CSV file → rows, streaming: records from `readCsvRecords` (src/ingest/csv-records.ts: parsing, limits, line numbers)
 * become valid chats or rejected rows here (column roles, phone normalisation).
 */
import type { CountryCode } from 'libphonenumber-js';

import { aliasesOf, CANONICAL, type ColumnMap, mapColumns, uniqueHeaderNames } from './csv-headers.js';
import { type CsvReadOptions, type CsvRecord, readCsvRecords } from './csv-records.js';
import { InputError } from '../domain/errors.js';
import { isCountryCode, normalisePhone } from '../domain/phone.js';
import { type ChatRow, type ChatTarget, chatKeyOf, type RejectedRow } from '../domain/chat.js';

export { type CsvReadOptions, type CsvRecord, type CsvRecords, readCsvRecords, sniffDelimiter } from './csv-records.js';

/** What the ingester yields for each data row. Duplicates are found later, in Redis staging. */
export type IngestRow = { readonly kind: 'valid'; readonly row: ChatRow } | { readonly kind: 'rejected'; readonly row: RejectedRow };

export interface CsvSourceOptions extends CsvReadOptions {
  /** Business number for files without a WABA column (--waba). */
  readonly defaultWaba?: string;
  /** For national-format numbers (--default-country). */
  readonly defaultCountry?: CountryCode;
}

/** A row source over one CSV file; see RowSource in enqueue.ts. */
export interface CsvSource {
  readonly file: string;
  /** The header as row cells are keyed (unique names; `wabaNumber` appended when --waba supplied it). */
  readonly header: readonly string[];
  readonly delimiter: string;
  rows(): AsyncIterable<IngestRow>;
  sha256(): string;
}

function describeHeader(header: readonly string[]): string {
  const shown = header
    .slice(0, 8)
    .map((h) => JSON.stringify(h))
    .join(', ');
  return header.length > 8 ? `${shown}, … (${header.length} columns)` : shown;
}

/** A header cell that is really a phone number (or digits enough to be one): the file has no header row. */
function looksLikeData(cell: string, defaultCountry: CountryCode | undefined): boolean {
  return normalisePhone(cell, defaultCountry).ok || /^[+']?[\d\s().-]{7,}$/.test(cell.trim());
}

/** Decides which columns mean what, or explains why the header cannot work. */
function resolveColumns(file: string, line: number, header: readonly string[], opts: { defaultWaba?: string; defaultCountry?: CountryCode }): ColumnMap {
  const map = mapColumns(header);
  if (map.phone === undefined && map.group === undefined) {
    const dataFirst = header.some((h) => looksLikeData(h, opts.defaultCountry));
    throw new InputError(
      { file, line },
      dataFirst
        ? `the first line looks like data, not a header: add a header row such as "${CANONICAL.phone},${CANONICAL.waba}"`
        : `no phone or group column: expected a header named one of ${aliasesOf('phone').slice(0, 6).join(', ')} … or ` +
            `${aliasesOf('group').slice(0, 2).join(', ')} (found ${describeHeader(header)})`,
    );
  }
  if (map.phone !== undefined && map.waba === undefined && opts.defaultWaba === undefined) {
    throw new InputError({ file, line }, `no business number column (${aliasesOf('waba').slice(0, 3).join(', ')} …): add one or pass --waba <number>`);
  }
  return map;
}

/** Distinct values remembered by `memoised`: far more than a file has business numbers, far less than rows. */
const MEMO_LIMIT = 1000;

/**
 * A file names a handful of business numbers on every row; parsing each again with libphonenumber was a third of
 * ingest time. Remembers the first MEMO_LIMIT distinct inputs (then just computes), so memory stays bounded.
 */
function memoised<T>(fn: (raw: string) => T): (raw: string) => T {
  const seen = new Map<string, T>();
  return (raw) => {
    const hit = seen.get(raw);
    if (hit !== undefined) return hit;
    const value = fn(raw);
    if (seen.size < MEMO_LIMIT) seen.set(raw, value);
    return value;
  };
}

/** Opens a CSV file as a row source. Header problems throw here, before any batch exists. */
export async function openCsvSource(opts: CsvSourceOptions): Promise<CsvSource> {
  const { file } = opts;
  let defaultWaba: string | undefined;
  if (opts.defaultWaba !== undefined) {
    const waba = normalisePhone(opts.defaultWaba, opts.defaultCountry);
    if (!waba.ok) throw new InputError({ file }, `--waba ${JSON.stringify(opts.defaultWaba)}: the business number ${waba.reason}`);
    defaultWaba = waba.digits;
  }
  const csv = await readCsvRecords(opts);
  let map: ColumnMap;
  try {
    map = resolveColumns(file, csv.headerLine, csv.header, { ...opts, ...(defaultWaba === undefined ? {} : { defaultWaba }) });
  } catch (error) {
    csv.close(); // nobody will read the records: release the file now
    throw error;
  }
  const names = uniqueHeaderNames(csv.header);
  const addWaba = map.waba === undefined && defaultWaba !== undefined;
  const header = addWaba ? [...names, uniqueHeaderNames([...names, CANONICAL.waba]).at(-1) as string] : names;
  const wabaName = addWaba ? (header.at(-1) as string) : undefined;
  const normaliseWaba = memoised((raw: string) => normalisePhone(raw, opts.defaultCountry));

  // Cells past the header are kept as `column_<n>` (n = position in the file), never clashing with a header name.
  let cellNames: readonly string[] = names;
  const namesFor = (count: number): readonly string[] => {
    if (count > cellNames.length) cellNames = uniqueHeaderNames([...csv.header, ...new Array<string>(count - csv.header.length).fill('')]);
    return cellNames;
  };

  const toRow = (rec: CsvRecord): IngestRow => {
    const cells: Record<string, string> = {};
    const keys = namesFor(rec.cells.length);
    rec.cells.forEach((value, i) => {
      cells[keys[i] as string] = value;
    });
    if (wabaName !== undefined && defaultWaba !== undefined) cells[wabaName] = defaultWaba;
    const reject = (column: number | undefined, raw: string, reason: string): IngestRow => ({
      kind: 'rejected',
      row: { line: rec.line, raw, reason, cells, ...(column === undefined ? {} : { column: names[column] ?? `column_${column + 1}` }) },
    });
    const cell = (i: number | undefined): string => (i === undefined ? '' : (rec.cells[i] ?? '').trim());
    const phoneRaw = cell(map.phone);
    // failed.csv guards a cell starting with = + - @ with a leading ' (csv-write.ts): undo it, as phones do.
    const groupRaw = cell(map.group).replace(/^'(?=[=+\-@])/, '');
    if (phoneRaw !== '' && groupRaw !== '') return reject(map.group, groupRaw, 'both a phone number and a group id: one row names one chat');
    let chat: ChatTarget;
    if (groupRaw !== '') {
      if (!/^[\w.@:-]{1,128}$/u.test(groupRaw)) return reject(map.group, groupRaw, 'not a group id (letters, digits, _ . @ : - only, up to 128)');
      chat = { kind: 'group', groupId: groupRaw };
    } else {
      if (map.phone === undefined) return reject(map.group, '', 'group id is empty');
      const phone = normalisePhone(phoneRaw, opts.defaultCountry);
      if (!phone.ok) return reject(map.phone, phoneRaw, `phone number ${phone.reason}`);
      const wabaRaw = map.waba === undefined ? '' : cell(map.waba);
      let waba = defaultWaba;
      if (wabaRaw !== '') {
        const parsed = normaliseWaba(wabaRaw);
        if (!parsed.ok) return reject(map.waba, wabaRaw, `business number ${parsed.reason}`);
        waba = parsed.digits;
      }
      if (waba === undefined) return reject(map.waba, '', 'business number is empty (fill it in or pass --waba)');
      chat = { kind: 'individual', customerPhoneNumber: phone.digits, wabaNumber: waba };
    }
    return { kind: 'valid', row: { line: rec.line, chat, key: chatKeyOf(chat), cells } };
  };

  return {
    file,
    header,
    delimiter: csv.delimiter,
    sha256: () => csv.sha256(),
    async *rows() {
      for await (const rec of csv.records()) yield toRow(rec);
    },
  };
}

/** Per-row and per-file limits every caller uses: a row over 1 MiB or 1,000 columns is a broken file, not data. */
export const ROW_LIMITS = { maxRecordBytes: 1024 * 1024, maxColumns: 1000 } as const;

/** Opens a CSV file with the configured limits and default country (CLI, console upload, inbox). */
export function openConfiguredCsv(
  config: { readonly maxFileMb: number; readonly defaultCountry: string | undefined },
  file: string,
  defaultWaba?: string,
): Promise<CsvSource> {
  const country = config.defaultCountry;
  return openCsvSource({
    file,
    ...(defaultWaba === undefined ? {} : { defaultWaba }),
    ...(country && isCountryCode(country) ? { defaultCountry: country } : {}),
    maxFileBytes: config.maxFileMb * 1024 * 1024,
    ...ROW_LIMITS,
  });
}
