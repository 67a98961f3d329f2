/**
 * Oversized inputs: a huge cell, a header of a million columns, a line of millions of empty cells
 * and a file over MAX_FILE_MB each stop with a clear InputError, in bounded time and memory. The files are
 * generated in a temp dir and deleted after each test.
 */
import { closeSync, mkdtempSync, openSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';

import { openCsvSource, readCsvRecords } from '../../src/ingest/csv-source.js';
import { inputError } from '../helpers/errors.js';

const MiB = 1024 * 1024;
/** As src/cli/commands/common.ts passes them; the file cap is MAX_FILE_MB's default (512). */
const LIMITS = { maxFileBytes: 512 * MiB, maxRecordBytes: 1 * MiB, maxColumns: 1000 } as const;
const WABA = '919000000000';

let dir: string;
let current: string | undefined;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'csv-limits-test-'));
});
afterEach(() => {
  if (current) rmSync(current, { force: true });
  current = undefined;
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Writes a file from parts without building one giant string. */
function writeParts(name: string, parts: Iterable<string | Buffer>): string {
  current = join(dir, name);
  const fd = openSync(current, 'w');
  try {
    for (const part of parts) writeSync(fd, typeof part === 'string' ? Buffer.from(part) : part);
  } finally {
    closeSync(fd);
  }
  return current;
}

async function drain(file: string, limits: Partial<typeof LIMITS> = {}): Promise<number> {
  const source = await openCsvSource({ file, ...LIMITS, ...limits, defaultWaba: WABA });
  let n = 0;
  for await (const _ of source.rows()) n += 1;
  return n;
}

describe('oversized inputs', () => {
  it('a 10 MB quoted cell → InputError about the 1 MiB per-row limit at the row where it starts', async () => {
    const tenMb = Buffer.alloc(10 * MiB, 'x');
    const file = writeParts('huge-cell.csv', [`phone,waba,notes\n919876543210,${WABA},ok\n919876543211,${WABA},"`, tenMb, '"\n']);
    const err = await inputError(drain(file));
    expect(err.location).toMatchObject({ file, line: 3 });
    expect(err.message).toMatch(/a row is larger than the per-row limit of 1 MiB/);
  });

  it('a 10 MB unquoted cell → the same error', async () => {
    const file = writeParts('huge-cell-unquoted.csv', [`phone,waba,notes\n919876543210,${WABA},`, Buffer.alloc(10 * MiB, 'y'), '\n']);
    const err = await inputError(drain(file));
    expect(err.location).toMatchObject({ file, line: 2, column: 3 });
    expect(err.message).toMatch(/per-row limit of 1 MiB/);
  });

  it('a quote left open near the top (the rest of the file becomes one cell) → the per-row limit names its line', async () => {
    const rows = Array.from({ length: 60_000 }, (_, i) => `9198${10_000_000 + i},${WABA},n\n`);
    const file = writeParts('open-quote.csv', ['phone,waba,notes\n', `919876543210,${WABA},"oops\n`, ...rows]);
    const err = await inputError(drain(file));
    expect(err.location.line).toBe(2);
    expect(err.message).toMatch(/per-row limit of 1 MiB: is a quote left open\?/);
  });

  it.each([
    ['named columns c0..c999999', (i: number) => `c${i}`],
    ['one-letter columns', () => 'a'],
    ['empty columns', () => ''],
  ])('a header of a million %s → a clear column-limit error at line 1, without building the whole row', async (_name, cell) => {
    const parts = function* (): Generator<string> {
      for (let start = 0; start < 1_000_000; start += 10_000) {
        yield `${Array.from({ length: 10_000 }, (_, k) => cell(start + k)).join(',')}${start + 10_000 < 1_000_000 ? ',' : '\n'}`;
      }
      yield `919876543210,${WABA}\n`;
    };
    const file = writeParts('wide-header.csv', parts());
    const err = await inputError(readCsvRecords({ file, ...LIMITS }));
    expect(err.location).toEqual({ file, line: 1 });
    expect(err.message).toMatch(/\d+( or more)? columns, over the limit of 1000: is the delimiter right\?/);
  });

  it('a line of 50 million commas in the data → column-limit error at its line (memory stays bounded)', async () => {
    const commas = Buffer.alloc(MiB, ',');
    const file = writeParts('commas.csv', ['phone,waba\n', `919876543210,${WABA}\n`, '\n', ...Array.from({ length: 50 }, () => commas), '\n']);
    const before = process.memoryUsage().rss;
    const err = await inputError(drain(file));
    expect(err.location).toEqual({ file, line: 4 });
    expect(err.message).toMatch(/or more columns, over the limit of 1000/);
    // Not a speed assertion: the unguarded parser held a 50-million-cell array here (hundreds of MB).
    expect(process.memoryUsage().rss - before).toBeLessThan(300 * MiB);
  });

  it('a row just over the column limit gets its exact width', async () => {
    const file = writeParts('1001.csv', ['phone,waba\n', `919876543210,${WABA}${',x'.repeat(999)}\n`]);
    const err = await inputError(drain(file));
    expect(err.location).toEqual({ file, line: 2 });
    expect(err.message).toMatch(/: 1001 columns, over the limit of 1000/);
  });

  it('a file over maxFileBytes is refused before a byte is read, naming MAX_FILE_MB', async () => {
    // A sparse file of NUL bytes: had it been read, the NUL-byte check would have answered instead.
    current = join(dir, 'too-big.csv');
    writeFileSync(current, '');
    truncateSync(current, 513 * MiB);
    const err = await inputError(readCsvRecords({ file: current, ...LIMITS }));
    expect(err.location).toEqual({ file: current });
    expect(err.message).toBe(`${current}: the file is 513.0 MB, over the 512.0 MB limit (MAX_FILE_MB): split it or raise the limit`);
  });

  it('the file limit is inclusive: exactly maxFileBytes is read, one byte more is not', async () => {
    const body = `phone,waba\n919876543210,${WABA}\n`;
    const file = writeParts('at-limit.csv', [body]);
    const size = Buffer.byteLength(body);
    expect(await drain(file, { maxFileBytes: size })).toBe(1);
    const err = await inputError(drain(file, { maxFileBytes: size - 1 }));
    expect(err.message).toMatch(/MAX_FILE_MB/);
  });
});
