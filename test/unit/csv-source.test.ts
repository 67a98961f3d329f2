/**
 * The CSV ingest layer: bytes → header + records with exact start lines
 * (`readCsvRecords`), records → valid or rejected rows (`openCsvSource`), and whole-file errors that name
 * file:line[:column] and say what was expected. Real files in a temp dir; nothing mocked.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import { type CsvReadOptions, type CsvSourceOptions, type IngestRow, openCsvSource, readCsvRecords, sniffDelimiter } from '../../src/ingest/csv-source.js';
import { inputError } from '../helpers/errors.js';
import { eventually } from '../helpers/eventually.js';

/** The limits the CLI passes (src/cli/commands/common.ts), with a 64 MiB file cap. */
const LIMITS = { maxFileBytes: 64 * 1024 * 1024, maxRecordBytes: 1024 * 1024, maxColumns: 1000 } as const;
const WABA = '919000000000';
const SPECTRUM = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/csv-spectrum');

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'csv-source-test-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

let fileCount = 0;
function write(content: string | Buffer, name = `case-${(fileCount += 1)}.csv`): string {
  const file = join(dir, name);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, content);
  return file;
}

async function readAll(file: string, opts: Partial<CsvReadOptions> = {}) {
  const csv = await readCsvRecords({ file, ...LIMITS, ...opts });
  const records = [];
  for await (const rec of csv.records()) records.push(rec);
  return { header: csv.header, delimiter: csv.delimiter, records, sha256: csv.sha256() };
}

async function rowsOf(file: string, opts: Partial<CsvSourceOptions> = {}) {
  const source = await openCsvSource({ file, ...LIMITS, ...opts });
  const rows: IngestRow[] = [];
  for await (const row of source.rows()) rows.push(row);
  return { header: source.header, rows, sha256: source.sha256() };
}

function valid(row: IngestRow | undefined) {
  if (row?.kind !== 'valid') throw new Error(`expected a valid row, got ${JSON.stringify(row)}`);
  return row.row;
}

function rejected(row: IngestRow | undefined) {
  if (row?.kind !== 'rejected') throw new Error(`expected a rejected row, got ${JSON.stringify(row)}`);
  return row.row;
}

describe('csv-spectrum conformance (fixtures/csv-spectrum)', () => {
  const names = readdirSync(join(SPECTRUM, 'csvs'))
    .filter((f) => f.endsWith('.csv'))
    .map((f) => f.slice(0, -4))
    .sort();

  it('has all the corpus cases', () => {
    expect(names).toEqual([
      'comma_in_quotes',
      'empty',
      'empty_crlf',
      'escaped_quotes',
      'json',
      'location_coordinates',
      'newlines',
      'newlines_crlf',
      'quotes_and_newlines',
      'simple',
      'simple_crlf',
      'utf8',
    ]);
  });

  /**
   * The corpus's own defects, handled here rather than by loosening the comparison (see the fixture README):
   * the `_crlf` files lost their CRs before they reached us, so CRLF is restored in a temp copy; and
   * location_coordinates.json is the csv-spectrum 2.0.0 erratum (a bare object whose phone value is not the
   * one in its CSV; fixed upstream later), so it is wrapped in an array and expects the CSV's own value.
   * `empty` / `empty_crlf` need nothing special: `1,"",""` has a non-empty cell, so it is a row, not one of the
   * blank lines (all cells empty) that our reader skips on purpose.
   */
  /**
   * Deliberate difference: location_coordinates has a quote inside an unquoted cell (`37°36'37.8"N`), which
   * csv-spectrum keeps literally. We refuse the file at file:line:column instead (README: "a stray quote …
   * stops"): a stray quote usually means a broken export, and csv-parse cannot keep a mid-cell quote literal
   * without also swallowing a broken closing quote (`"91"x`) silently. The same row, quoted as a spreadsheet
   * writes it, must then give exactly the expected cells.
   */
  const REFUSED: Record<string, { line: number; column: number; quoted: (csv: string) => string }> = {
    location_coordinates: {
      line: 2,
      column: 2,
      quoted: (csv) => csv.replace(/,(37[^,]*W),/, (_m, cell: string) => `,"${cell.replace(/"/g, '""')}",`),
    },
  };
  function expectedRows(name: string): Record<string, string>[] {
    const parsed = JSON.parse(readFileSync(join(SPECTRUM, 'json', `${name}.json`), 'utf8')) as unknown;
    const rows = (Array.isArray(parsed) ? parsed : [parsed]) as Record<string, string>[];
    if (name === 'location_coordinates') return rows.map((r) => ({ ...r, 'Contact Phone Number': '2095257564' }));
    return rows;
  }

  function inputBytes(name: string): Buffer {
    const bytes = readFileSync(join(SPECTRUM, 'csvs', `${name}.csv`));
    if (name.endsWith('_crlf') && !bytes.includes(0x0d)) return Buffer.from(bytes.toString('utf8').replace(/\n/g, '\r\n'), 'utf8');
    return bytes;
  }

  it.each(names)('%s: yields exactly the expected rows', async (name) => {
    let bytes = inputBytes(name);
    const refused = REFUSED[name];
    if (refused) {
      const file = write(bytes, `spectrum/${name}.refused.csv`);
      const err = await inputError(readAll(file));
      expect(err.location).toEqual({ file, line: refused.line, column: refused.column });
      expect(err.message).toMatch(/a quote inside an unquoted cell/);
      bytes = Buffer.from(refused.quoted(bytes.toString('utf8')), 'utf8');
    }
    const { header, delimiter, records, sha256 } = await readAll(write(bytes, `spectrum/${name}.csv`));
    expect(delimiter).toBe(',');
    const objects = records.map((rec) => Object.fromEntries(header.map((h, i) => [h, rec.cells[i]])));
    expect(objects).toEqual(expectedRows(name));
    for (const rec of records) expect(rec.cells).toHaveLength(header.length);
    expect(sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
  });

  it('newlines / newlines_crlf: the row after a multi-line cell starts on its real line', async () => {
    for (const name of ['newlines', 'newlines_crlf']) {
      const { records } = await readAll(write(inputBytes(name), `spectrum-lines/${name}.csv`));
      expect(records.map((r) => r.line)).toEqual([2, 3, 5]);
    }
    const { records } = await readAll(write(inputBytes('quotes_and_newlines'), 'spectrum-lines/qn.csv'));
    expect(records.map((r) => r.line)).toEqual([2, 5]);
  });
});

describe('readCsvRecords: encodings, delimiters, quoting', () => {
  it('strips a UTF-8 BOM from the first header name', async () => {
    const { header, records } = await readAll(write(`\ufeffcustomerPhoneNumber,wabaNumber\n919876543210,${WABA}\n`));
    expect(header).toEqual(['customerPhoneNumber', 'wabaNumber']);
    expect(records).toEqual([{ line: 2, cells: ['919876543210', WABA] }]);
  });

  it('reads CRLF files without stray \\r in cells', async () => {
    const { header, records } = await readAll(write(`phone,waba\r\n919876543210,${WABA}\r\n919876543211,${WABA}\r\n`));
    expect(header).toEqual(['phone', 'waba']);
    expect(records).toEqual([
      { line: 2, cells: ['919876543210', WABA] },
      { line: 3, cells: ['919876543211', WABA] },
    ]);
  });

  it.each([
    ['semicolon', ';', 'phone;waba;notes\n919876543210;919000000000;"Doe, John"\n', ['919876543210', WABA, 'Doe, John']],
    ['tab', '\t', 'phone\twaba\tnotes\n919876543210\t919000000000\tDoe, John; Jr\n', ['919876543210', WABA, 'Doe, John; Jr']],
    ['comma', ',', 'phone,waba,notes\n919876543210,919000000000,"a;b;c"\n', ['919876543210', WABA, 'a;b;c']],
    ['semicolon after blank lines', ';', '\n\r\n  \nphone;waba;notes\n919876543210;919000000000;x,y\n', ['919876543210', WABA, 'x,y']],
    ['semicolon with BOM and CRLF', ';', '\ufeffphone;waba;notes\r\n919876543210;919000000000;n\r\n', ['919876543210', WABA, 'n']],
  ])('sniffs the %s delimiter from the header line', async (_name, delimiter, text, cells) => {
    const csv = await readAll(write(text));
    expect(csv.delimiter).toBe(delimiter);
    expect(csv.header).toEqual(['phone', 'waba', 'notes']);
    expect(csv.records.map((r) => r.cells)).toEqual([cells]);
  });

  it.each([
    ['a,b;c', ','],
    ['a;b;c,d', ';'],
    ['a\tb\tc;d,e', '\t'],
    ['"x;y;z",b', ','],
    ['single', ','],
    ['a;b', ';'],
    ['a,b;c;d\n1,2,3,4,5,6,7', ';'],
    ['\n\t\t\n\na;b\n1,2,3', ';'],
    ['', ','],
  ])('sniffDelimiter(%j) → %j (first non-blank line only, quotes ignored, ties → comma)', (text, expected) => {
    expect(sniffDelimiter(text)).toBe(expected);
  });

  it('keeps delimiters, quotes and line breaks inside quoted cells', async () => {
    const text = 'phone,waba,notes\n"+91 98765 43210","919000000000","line 1\nline 2, with comma; and ""quotes"""\n';
    const { records } = await readAll(write(text));
    expect(records).toEqual([{ line: 2, cells: ['+91 98765 43210', WABA, 'line 1\nline 2, with comma; and "quotes"'] }]);
  });

  it('skips blank lines, whitespace-only lines and all-empty ",,," lines, and keeps counting them', async () => {
    const text = ['phone,waba', '', '919876543210,919000000000', ',,', '   ', ' , ', '""," "', '', '919876543211,919000000000', ''].join('\n');
    const { records } = await readAll(write(text));
    expect(records).toEqual([
      { line: 3, cells: ['919876543210', WABA] },
      { line: 9, cells: ['919876543211', WABA] },
    ]);
  });

  it('skips blank and ",,," lines before the header too', async () => {
    const csv = await readCsvRecords({ file: write('\n,,\n\r\nphone,waba\n919876543210,919000000000\n'), ...LIMITS });
    expect(csv.headerLine).toBe(4);
    csv.close();
    const { header, records } = await readAll(write('\n,,\n\r\nphone,waba\n919876543210,919000000000\n'));
    expect(header).toEqual(['phone', 'waba']);
    expect(records).toEqual([{ line: 5, cells: ['919876543210', WABA] }]);
  });

  it('gives exact start lines after multi-line cells (LF, CRLF, lone CR in quotes) and blank lines', async () => {
    const text = [
      'phone,waba,notes', // 1
      '919876543210,919000000000,"two', // 2
      'lines"', // 3
      '919876543211,919000000000,"three\r\nlines\r\nin crlf"', // 4-6
      '', // 7
      '919876543212,919000000000,plain', // 8
      '"919876543213",919000000000,"a\n\nb"', // 9-11
      '919876543214,919000000000,last', // 12
    ].join('\n');
    const { records } = await readAll(write(`${text}\n`));
    expect(records.map((r) => r.line)).toEqual([2, 4, 8, 9, 12]);
    expect(records[1]?.cells[2]).toBe('three\r\nlines\r\nin crlf');
    expect(records[3]?.cells[2]).toBe('a\n\nb');
  });

  it('gives exact lines in a CRLF file with CRLF inside quoted cells', async () => {
    const text = 'phone,waba,notes\r\n1,2,"x\r\ny"\r\n\r\n3,4,"p\r\nq\r\nr"\r\n5,6,z\r\n';
    const { records } = await readAll(write(text));
    expect(records.map((r) => [r.line, r.cells[0]])).toEqual([
      [2, '1'],
      [5, '3'],
      [8, '5'],
    ]);
  });

  it('reads old Mac (CR-only) line endings', async () => {
    const { records } = await readAll(write('phone,waba\r919876543210,919000000000\r\r919876543211,919000000000\r'));
    expect(records).toEqual([
      { line: 2, cells: ['919876543210', WABA] },
      { line: 4, cells: ['919876543211', WABA] },
    ]);
  });

  it('reads mixed line endings row by row (files pasted together from several systems)', async () => {
    // Regression: the ending was detected once from the header, so LF rows after a CRLF header were glued into
    // one record and CRLF rows after an LF header kept a stray \r (and counted an extra line).
    const crlfThenLf = await readAll(write('phone,waba\r\n1,a\n2,b\n3,c\r\n'));
    expect(crlfThenLf.records).toEqual([
      { line: 2, cells: ['1', 'a'] },
      { line: 3, cells: ['2', 'b'] },
      { line: 4, cells: ['3', 'c'] },
    ]);
    const lfThenCrlf = await readAll(write('phone,waba\n1,a\r\n2,"b\r\nc"\r\n3,d\r4,e\n'));
    expect(lfThenCrlf.records).toEqual([
      { line: 2, cells: ['1', 'a'] },
      { line: 3, cells: ['2', 'b\r\nc'] },
      { line: 5, cells: ['3', 'd'] },
      { line: 6, cells: ['4', 'e'] },
    ]);
  });

  it('keeps extra cells and short rows as they are (relaxed column count)', async () => {
    const { records } = await readAll(write('phone,waba\n919876543210,919000000000,extra 1,extra 2\n919876543211\n'));
    expect(records).toEqual([
      { line: 2, cells: ['919876543210', WABA, 'extra 1', 'extra 2'] },
      { line: 3, cells: ['919876543211'] },
    ]);
  });

  it('handles a file without a final newline and a header-only file', async () => {
    expect((await readAll(write(`phone,waba\n919876543210,${WABA}`))).records).toEqual([{ line: 2, cells: ['919876543210', WABA] }]);
    const headerOnly = await readAll(write('phone,waba\n'));
    expect(headerOnly.header).toEqual(['phone', 'waba']);
    expect(headerOnly.records).toEqual([]);
  });

  it('sha256 is the sha256 of the file bytes once records are consumed', async () => {
    const bytes = Buffer.from(`\ufeffphone;waba\r\n"+91 98765 43210";${WABA}\r\n\r\n,,\r\n`, 'utf8');
    const file = write(bytes);
    const expected = createHash('sha256').update(bytes).digest('hex');
    expect((await readAll(file)).sha256).toBe(expected);
    expect((await rowsOf(file, { defaultWaba: WABA })).sha256).toBe(expected);
  });

  it('sha256 of a large file (many chunks) matches too', async () => {
    const lines = ['phone,waba'];
    for (let i = 0; i < 20_000; i += 1) lines.push(`9198${String(10_000_000 + i)},${WABA}`);
    const bytes = Buffer.from(lines.join('\n'));
    const { records, sha256 } = await readAll(write(bytes));
    expect(records).toHaveLength(20_000);
    expect(records.at(-1)?.line).toBe(20_001);
    expect(sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
  });

  it('records() can be read only once', async () => {
    const csv = await readCsvRecords({ file: write('phone,waba\n1,2\n'), ...LIMITS });
    for await (const _ of csv.records()) {
      /* drain */
    }
    await expect(async () => {
      for await (const _ of csv.records()) {
        /* second pass */
      }
    }).rejects.toThrow('records() can be read once');
  });
});

describe('readCsvRecords: files that cannot be read as CSV', () => {
  it('an unclosed quote names file:line of the record where it starts', async () => {
    const file = write(`phone,waba,notes\n919876543210,${WABA},"ok\nmulti"\n919876543211,${WABA},"never closed\nmore\nand more\n`);
    const err = await inputError(readAll(file));
    expect(err.location).toMatchObject({ file, line: 4 });
    expect(err.message).toContain(`${file}:4`);
    expect(err.message).toMatch(/quoted cell is never closed: expected a closing "/);
    expect(err.code).toBe('ERR_CSV_INVALID');
  });

  it('an unclosed quote in the header is line 1', async () => {
    const err = await inputError(readAll(write('"phone,waba\n1,2\n')));
    expect(err.location.line).toBe(1);
  });

  it('an invalid closing quote names file:line:column', async () => {
    const file = write(`phone,waba\n919876543210,${WABA}\n\n919876543211,"${WABA}"x\n`);
    const err = await inputError(readAll(file));
    expect(err.location).toEqual({ file, line: 4, column: 2 });
    expect(err.message).toMatch(new RegExp(`:4:2: unexpected character after a closing quote: expected a delimiter or end of line`));
  });

  it('a quote inside an unquoted cell is refused with what to write instead', async () => {
    const file = write(`phone,waba,notes\n919876543210,${WABA},5'10" tall\n`);
    const err = await inputError(readAll(file));
    expect(err.location).toMatchObject({ file, line: 2, column: 3 });
    expect(err.message).toMatch(/quote inside an unquoted cell.*""/);
  });

  it('an error deep in a file has its exact line even when hundreds of records are still queued', async () => {
    // Regression: the line was counted from the records the consumer had taken, so it read 513 here.
    const lines = ['phone,waba'];
    for (let i = 0; i < 3000; i += 1) lines.push(i === 1499 ? `"1"x,${WABA}` : `9198${10_000_000 + i},${WABA}`);
    const err = await inputError(readAll(write(`${lines.join('\n')}\n`)));
    expect(err.location.line).toBe(1501);
  });

  it.each([
    ['xlsx (zip)', Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), Buffer.alloc(64, 1)]), /zip\/Excel \(\.xlsx\).*CSV UTF-8/],
    ['xls (OLE)', Buffer.concat([Buffer.from('d0cf11e0a1b11ae1', 'hex'), Buffer.alloc(64, 0)]), /Excel 97-2003 \(\.xls\)/],
    ['UTF-16 LE with BOM', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('phone,waba\n', 'utf16le')]), /UTF-16.*CSV UTF-8/],
    ['UTF-16 BE with BOM', Buffer.from([0xfe, 0xff, 0, 0x70, 0, 0x2c, 0, 0x77]), /UTF-16/],
    ['UTF-16 LE without BOM (NUL bytes)', Buffer.from('phone,waba\n919876543210,919000000000\n', 'utf16le'), /NUL bytes/],
    ['NUL bytes', Buffer.from('phone,waba\n9198\x0076543210,1\n', 'latin1'), /NUL bytes.*binary/],
    ['empty file', Buffer.alloc(0), /the file is empty: expected a header row/],
    ['only blank lines', Buffer.from('\n\r\n  \n,,,\n'), /no rows: expected a header row/],
  ])('%s → InputError at line 1 with what to do', async (_name, bytes, message) => {
    const file = write(bytes);
    const err = await inputError(readAll(file));
    expect(err.location).toEqual({ file, line: 1 });
    expect(err.message).toMatch(message);
  });

  it('a missing file or a directory is an InputError naming it', async () => {
    const missing = join(dir, 'does-not-exist.csv');
    expect((await inputError(readAll(missing))).message).toBe(`${missing}: no such file`);
    expect((await inputError(readAll(dir))).message).toBe(`${dir}: not a regular file`);
  });

  it('too many columns names the line and the limit', async () => {
    const file = write(`phone,waba\n${Array.from({ length: 12 }, (_, i) => String(i)).join(',')}\n`);
    const err = await inputError(readAll(file, { maxColumns: 10 }));
    expect(err.location).toEqual({ file, line: 2 });
    expect(err.message).toMatch(/12 columns, over the limit of 10: is the delimiter right\?/);
  });
});

describe('openCsvSource: rows', () => {
  it('turns records into valid chats with normalised numbers, line numbers and the original cells', async () => {
    const text = [
      'Customer Phone;WABA Number;Notes',
      `+91 98765 43210;+${WABA};first`,
      `0091-98765-43211;00${WABA};"multi`,
      `line"`,
      `'+919876543212;${WABA};from failed.csv`,
    ].join('\r\n');
    const { header, rows } = await rowsOf(write(text));
    expect(header).toEqual(['Customer Phone', 'WABA Number', 'Notes']);
    expect(rows.map((r) => r.kind)).toEqual(['valid', 'valid', 'valid']);
    const [a, b, c] = rows.map(valid);
    expect(a).toEqual({
      line: 2,
      chat: { kind: 'individual', customerPhoneNumber: '919876543210', wabaNumber: WABA },
      key: `p:919876543210@${WABA}`,
      cells: { 'Customer Phone': '+91 98765 43210', 'WABA Number': `+${WABA}`, Notes: 'first' },
    });
    expect(b).toMatchObject({ line: 3, key: `p:919876543211@${WABA}`, cells: { Notes: 'multi\r\nline' } });
    expect(c).toMatchObject({ line: 5, key: `p:919876543212@${WABA}` });
  });

  it('rejected rows carry line, raw value, column, reason and cells', async () => {
    const text = [
      'phone,waba,notes',
      `12345,${WABA},short`,
      `call me,${WABA},letters`,
      `9.19876E+11,${WABA},excel`,
      `,${WABA},empty`,
      `919876543210,123,bad waba`,
      `09876543210,${WABA},national`,
    ].join('\n');
    const { rows } = await rowsOf(write(text));
    expect(rows.map(rejected)).toEqual([
      { line: 2, raw: '12345', column: 'phone', reason: 'phone number is too short', cells: { phone: '12345', waba: WABA, notes: 'short' } },
      {
        line: 3,
        raw: 'call me',
        column: 'phone',
        reason: 'phone number contains characters that are not part of a phone number',
        cells: { phone: 'call me', waba: WABA, notes: 'letters' },
      },
      {
        line: 4,
        raw: '9.19876E+11',
        column: 'phone',
        reason: expect.stringMatching(/^phone number is in scientific notation/),
        cells: { phone: '9.19876E+11', waba: WABA, notes: 'excel' },
      },
      { line: 5, raw: '', column: 'phone', reason: 'phone number is empty', cells: { phone: '', waba: WABA, notes: 'empty' } },
      { line: 6, raw: '123', column: 'waba', reason: 'business number is too short', cells: { phone: '919876543210', waba: '123', notes: 'bad waba' } },
      {
        line: 7,
        raw: '09876543210',
        column: 'phone',
        reason: expect.stringMatching(/^phone number is in national format/),
        cells: { phone: '09876543210', waba: WABA, notes: 'national' },
      },
    ]);
  });

  it('reads national numbers with --default-country', async () => {
    const { rows } = await rowsOf(write(`phone,waba\n098765 43210,${WABA}\n98765 43211,${WABA}\n`), { defaultCountry: 'IN' });
    expect(rows.map((r) => valid(r).chat)).toEqual([
      { kind: 'individual', customerPhoneNumber: '919876543210', wabaNumber: WABA },
      { kind: 'individual', customerPhoneNumber: '919876543211', wabaNumber: WABA },
    ]);
  });

  it('keeps extra cells under column_<n> names that never overwrite a header column', async () => {
    // Regression: a cell past the header was keyed `column_<n>` even when the header itself had that name.
    const { header, rows } = await rowsOf(write(`phone,waba,column_4\n919876543210,${WABA},c,d,e\n`));
    expect(header).toEqual(['phone', 'waba', 'column_4']);
    expect(valid(rows[0]).cells).toEqual({ phone: '919876543210', waba: WABA, column_4: 'c', column_4_2: 'd', column_5: 'e' });
  });

  it('rows shorter than the header: missing cells are empty', async () => {
    const { rows } = await rowsOf(write(`phone,waba,notes\n919876543210\n919876543211,${WABA}\n`));
    expect(rejected(rows[0])).toEqual({
      line: 2,
      raw: '',
      column: 'waba',
      reason: 'business number is empty (fill it in or pass --waba)',
      cells: { phone: '919876543210' },
    });
    expect(valid(rows[1])).toMatchObject({ line: 3, cells: { phone: '919876543211', waba: WABA } });
  });

  it('duplicate and blank header names become unique cell keys, and the first phone column is the one used', async () => {
    const { header, rows } = await rowsOf(write(`phone,,phone,waba,\n919876543210,x,919876543299,${WABA},y\n`));
    expect(header).toEqual(['phone', 'column_2', 'phone_2', 'waba', 'column_5']);
    const row = valid(rows[0]);
    expect(row.chat).toEqual({ kind: 'individual', customerPhoneNumber: '919876543210', wabaNumber: WABA });
    expect(row.cells).toEqual({ phone: '919876543210', column_2: 'x', phone_2: '919876543299', waba: WABA, column_5: 'y' });
  });

  it('group rows name a group chat; phone and group on one row is rejected', async () => {
    const text = [
      'phone,waba,groupId',
      ',,grp_1234',
      `,${WABA},120363025246125888@g.us`,
      `919876543210,${WABA},grp_9`,
      `919876543211,${WABA},`,
      ',,not a group!',
      ",,'-grp-from-failed-csv",
    ].join('\n');
    const { rows } = await rowsOf(write(text));
    expect(valid(rows[0])).toMatchObject({ line: 2, chat: { kind: 'group', groupId: 'grp_1234' }, key: 'g:grp_1234' });
    expect(valid(rows[1])).toMatchObject({ line: 3, chat: { kind: 'group', groupId: '120363025246125888@g.us' } });
    expect(rejected(rows[2])).toMatchObject({ line: 4, raw: 'grp_9', column: 'groupId', reason: 'both a phone number and a group id: one row names one chat' });
    expect(valid(rows[3])).toMatchObject({ line: 5, chat: { kind: 'individual', customerPhoneNumber: '919876543211' } });
    expect(rejected(rows[4])).toMatchObject({ line: 6, raw: 'not a group!', column: 'groupId', reason: expect.stringMatching(/^not a group id/) });
    // failed.csv writes a group id starting with - as '-… (formula guard); reading it back undoes that.
    expect(valid(rows[5])).toMatchObject({ line: 7, chat: { kind: 'group', groupId: '-grp-from-failed-csv' } });
  });

  it('a groups-only file needs no business number', async () => {
    const { header, rows } = await rowsOf(write('Group ID,name\ngrp_1,a\n,b\n'));
    expect(header).toEqual(['Group ID', 'name']);
    expect(valid(rows[0]).chat).toEqual({ kind: 'group', groupId: 'grp_1' });
    expect(rejected(rows[1])).toMatchObject({ line: 3, raw: '', column: 'Group ID', reason: 'group id is empty' });
  });

  it('--waba fills the business number and appends a wabaNumber column, so failed.csv is re-uploadable', async () => {
    const file = write('Mobile,notes\n+91 98765 43210,a\n919876543211,b,extra\n');
    const { header, rows } = await rowsOf(file, { defaultWaba: '+91 90000 00000' });
    expect(header).toEqual(['Mobile', 'notes', 'wabaNumber']);
    expect(valid(rows[0])).toEqual({
      line: 2,
      chat: { kind: 'individual', customerPhoneNumber: '919876543210', wabaNumber: WABA },
      key: `p:919876543210@${WABA}`,
      cells: { Mobile: '+91 98765 43210', notes: 'a', wabaNumber: WABA },
    });
    expect(valid(rows[1]).cells).toEqual({ Mobile: '919876543211', notes: 'b', column_3: 'extra', wabaNumber: WABA });

    // The header written to failed.csv (plus status/error columns) reads back without --waba.
    const again = write(`${header.join(',')},status,error\n919876543210,a,${WABA},404,not found\n`);
    const reread = await rowsOf(again);
    expect(valid(reread.rows[0]).chat).toEqual({ kind: 'individual', customerPhoneNumber: '919876543210', wabaNumber: WABA });
  });

  it('--waba fills only the empty cells of an existing business number column', async () => {
    const { header, rows } = await rowsOf(write('phone,waba\n919876543210,\n919876543211,919111111111\n'), { defaultWaba: WABA });
    expect(header).toEqual(['phone', 'waba']);
    expect(rows.map((r) => valid(r).chat)).toEqual([
      { kind: 'individual', customerPhoneNumber: '919876543210', wabaNumber: WABA },
      { kind: 'individual', customerPhoneNumber: '919876543211', wabaNumber: '919111111111' },
    ]);
  });

  it('an unusable --waba is an InputError naming the flag', async () => {
    const err = await inputError(rowsOf(write('phone\n919876543210\n'), { defaultWaba: '12' }));
    expect(err.message).toMatch(/--waba "12": the business number is too short/);
  });
});

describe('openCsvSource: header problems stop before any row', () => {
  it('no phone or group column → line 1 and the list of expected names', async () => {
    const file = write('name,email,notes\nA,a@example.com,x\n');
    const err = await inputError(openCsvSource({ file, ...LIMITS }));
    expect(err.location).toEqual({ file, line: 1 });
    expect(err.message).toContain(`${file}:1: no phone or group column`);
    for (const alias of ['customerPhoneNumber', 'customerPhone', 'phone', 'phoneNumber', 'groupId']) expect(err.message).toContain(alias);
    expect(err.message).toContain('(found "name", "email", "notes")');
  });

  it("a header after blank lines: its errors name the header's own line", async () => {
    const file = write('\n\nname,notes\nA,x\n');
    expect((await inputError(openCsvSource({ file, ...LIMITS }))).location).toEqual({ file, line: 3 });
  });

  it('a first line that is data → "looks like data" with a header example', async () => {
    for (const [text, country] of [
      [`919876543210,${WABA}\n919876543211,${WABA}\n`, undefined],
      [`+91 98765 43210;x\n`, undefined],
      [`098765 43210,${WABA}\n`, undefined],
      [`98765 43210,${WABA}\n`, 'IN'],
    ] as const) {
      const file = write(text);
      const err = await inputError(openCsvSource({ file, ...LIMITS, ...(country ? { defaultCountry: country } : {}) }));
      expect(err.location).toEqual({ file, line: 1 });
      expect(err.message).toMatch(/the first line looks like data, not a header: add a header row such as "customerPhoneNumber,wabaNumber"/);
    }
  });

  it('a phone column without a business number column or --waba → line 1, asks for one', async () => {
    const file = write('phone,notes\n919876543210,x\n');
    const err = await inputError(openCsvSource({ file, ...LIMITS }));
    expect(err.location).toEqual({ file, line: 1 });
    expect(err.message).toMatch(/no business number column \(wabaNumber, waba, wabaPhone …\): add one or pass --waba <number>/);
  });

  // Regression: a header error left the file open (and its stream paused) for the life of the process.
  const itWithProcFs = existsSync('/proc/self/fd') ? it : it.skip;
  itWithProcFs(
    'a header error releases the file',
    async () => {
      const lines = ['name,notes'];
      for (let i = 0; i < 50_000; i += 1) lines.push(`n${i},x`);
      const file = write(lines.join('\n'));
      const openFds = (): number => readdirSync('/proc/self/fd').length;
      const before = openFds();
      for (let i = 0; i < 10; i += 1) await inputError(openCsvSource({ file, ...LIMITS }));
      // destroy() closes the descriptors asynchronously: poll rather than sleep.
      await eventually(() => openFds() <= before, { timeoutMs: 5000, intervalMs: 20, message: () => `open descriptors back to ${before} (now ${openFds()})` });
    },
    20_000,
  );

  it('a structural error after valid rows surfaces from rows() as an InputError with its line', async () => {
    const file = write(`phone,waba\n919876543210,${WABA}\n"919876543211,${WABA}\n`);
    const source = await openCsvSource({ file, ...LIMITS });
    const seen: IngestRow[] = [];
    const err = await inputError(
      (async () => {
        for await (const row of source.rows()) seen.push(row);
      })(),
    );
    expect(seen.map((r) => r.kind)).toEqual(['valid']);
    expect(err.location.line).toBe(3);
  });
});
