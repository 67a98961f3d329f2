/**
 * Properties of the CSV ingest layer (issue 2 §4, issue 3 §6) over arbitrary input:
 *  - parsing: any bytes either stop with an InputError (never another error type, never a hang) or yield rows
 *    that are each valid or rejected, with start lines >= 2 that only go forward;
 *  - ingest into real Redis (dry run): either an error and no batch left behind, or
 *    rows = valid + rejected + duplicates, matching what the source itself yielded.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';

import type { BatchRecord } from '../../src/store/batch-store.js';
import { openCsvSource } from '../../src/ingest/csv-source.js';
import { BulkUnassignError, InputError } from '../../src/domain/errors.js';
import { chatKeyOf } from '../../src/domain/chat.js';
import { makeTestEnv, type TestEnv } from '../helpers/harness.js';

const LIMITS = { maxFileBytes: 64 * 1024 * 1024, maxRecordBytes: 1024 * 1024, maxColumns: 1000 } as const;
const WABA = '919000000000';
/** Per case: far above what a few KB take, low enough that a hang fails the property instead of the suite. */
const CASE_TIMEOUT_MS = 10_000;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'csv-property-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

let fileCount = 0;
function write(content: string | Uint8Array): string {
  const file = join(dir, `p-${(fileCount += 1)}.csv`);
  writeFileSync(file, content);
  return file;
}

/** Pieces that exercise quoting, delimiters, line endings, encodings, phone formats and column roles. */
const TOKENS = [
  ',', ',', ';', '\t', '"', '"', '""', '\n', '\n', '\r\n', '\r', ' ', "'", '+', '-', '.', '(', ')', '\u00a0', '\ufeff',
  '919876543210', '+91 98765 43210', '0091-98765-43211', '09876543210', '12345', '9.19876E+11', WABA, 'grp_1',
  'phone', 'waba', 'groupId', 'Customer Phone', 'notes', 'x', 'é', '😀', 'column_3', '=cmd',
];

/** CSV-ish text: usually a usable header first, so the row path is exercised as much as the error path. */
const csvishText = fc
  .tuple(
    fc.constantFrom('', 'phone,waba\n', 'phone;waba;groupId\r\n', '\ufeffCustomer Phone,notes\n', 'groupId\tnotes\n', 'phone,phone,,waba\n'),
    fc.array(fc.constantFrom(...TOKENS), { maxLength: 200 }),
  )
  .map(([header, tokens]) => header + tokens.join(''));

/** Rows of plausible cells under a real header: mostly valid, rejected and duplicate rows rather than errors. */
const rowsText = fc
  .array(
    fc.tuple(
      fc.constantFrom('919876543210', '+91 98765 43211', '0091 98765 43212', "'+919876543210", '12345', '', 'call me', '9.19876E+11'),
      fc.constantFrom(WABA, `+${WABA}`, '', '1'),
      fc.constantFrom('', 'grp_1', 'grp_2', 'bad group!'),
    ),
    { maxLength: 25 },
  )
  .map((rows) => `phone,waba,groupId\n${rows.map((r) => r.join(',')).join('\n')}\n`);

const inputs = fc.oneof(
  { arbitrary: fc.uint8Array({ maxLength: 2000 }), weight: 1 },
  { arbitrary: csvishText, weight: 3 },
  { arbitrary: rowsText, weight: 2 },
);

/** Always-run examples, so both outcomes are covered whatever the seed. */
const EXAMPLES: [string, string | undefined][] = [
  [`phone,waba\n919876543210,${WABA}\n+91 98765 43210,${WABA}\n12345,${WABA}\n`, undefined], // valid, duplicate, rejected
  ['groupId\ngrp_1\n\ngrp_2\n', undefined], // groups only
  ['phone\n919876543210\n', WABA], // --waba
  [`phone,waba\n"919876543210,${WABA}\n`, undefined], // unclosed quote: InputError
  [`phone,waba\n12345,${WABA}\n`, undefined], // no valid row
  ['', undefined], // empty file
];

type Outcome = { kind: 'error'; error: unknown } | { kind: 'rows'; lines: number[]; valid: string[]; rejected: number };

/** Opens and drains a source, never throwing: what happened is the result. */
async function readOutcome(file: string, waba: string | undefined): Promise<Outcome> {
  try {
    const source = await openCsvSource({ file, ...LIMITS, ...(waba === undefined ? {} : { defaultWaba: waba }) });
    const lines: number[] = [];
    const valid: string[] = [];
    let rejected = 0;
    for await (const item of source.rows()) {
      lines.push(item.row.line);
      if (item.kind === 'valid') {
        const { chat, key, cells } = item.row;
        expect(key).toBe(chatKeyOf(chat));
        if (chat.kind === 'individual') {
          expect(chat.customerPhoneNumber).toMatch(/^\d{7,15}$/);
          expect(chat.wabaNumber).toMatch(/^\d{7,15}$/);
        } else {
          expect(chat.groupId).toMatch(/^[\w.@:-]{1,128}$/u);
        }
        expect(Object.values(cells).every((v) => typeof v === 'string')).toBe(true);
        valid.push(key);
      } else {
        expect(item.kind).toBe('rejected');
        expect(item.row.reason).not.toBe('');
        expect(typeof item.row.raw).toBe('string');
        rejected += 1;
      }
    }
    return { kind: 'rows', lines, valid, rejected };
  } catch (error) {
    return { kind: 'error', error };
  }
}

describe('csv parsing properties', () => {
  it('any input: an InputError, or rows that are valid or rejected with lines >= 2 going forward', async () => {
    const property = fc.asyncProperty(inputs, fc.option(fc.constant(WABA), { nil: undefined }), async (content, waba) => {
      const outcome = await readOutcome(write(content), waba);
      if (outcome.kind === 'error') {
        expect(outcome.error).toBeInstanceOf(InputError);
        expect((outcome.error as InputError).code).toBe('ERR_CSV_INVALID');
        return;
      }
      for (const line of outcome.lines) expect(line).toBeGreaterThanOrEqual(2);
      // Records start on distinct lines in file order, so lines strictly increase (stronger than non-decreasing).
      outcome.lines.forEach((line, i) => {
        if (i > 0) expect(line).toBeGreaterThan(outcome.lines[i - 1] as number);
      });
    });
    await fc.assert(property, { numRuns: 200, examples: EXAMPLES, plugins: [fc.timeout(CASE_TIMEOUT_MS)] });
  });

  it('a well-formed CSV of known rows reads back exactly, whatever the delimiter, mixed line endings and blank lines', async () => {
    const notesCell = fc.string({ unit: fc.constantFrom('a', 'b', ' ', ',', ';', '\t', '"', '\n', '\r\n', 'é', '1'), maxLength: 8 });
    // Each line picks its own ending: files pasted together from several systems mix them.
    const eol = fc.constantFrom('\n', '\r\n', '\r');
    const property = fc.asyncProperty(
      fc.constantFrom(',', ';', '\t'),
      eol,
      fc.array(fc.tuple(fc.integer({ min: 0, max: 999_999 }), notesCell, fc.array(eol, { maxLength: 2 }), eol), { minLength: 1, maxLength: 30 }),
      async (delimiter, headerEol, rows) => {
        const quote = (v: string): string => `"${v.replace(/"/g, '""')}"`;
        let text = ['phone', 'waba', 'notes'].join(delimiter) + headerEol;
        const expected: { line: number; key: string }[] = [];
        for (const [n, notes, blankLines, rowEol] of rows) {
          text += blankLines.join('');
          // A row starts on 1 + the line breaks before it (a \r then a \n is one CRLF, not a blank line).
          const line = 1 + (text.match(/\r\n|\r|\n/g)?.length ?? 0);
          const phone = `9198${String(10_000_000 + n)}`;
          text += [phone, WABA, quote(notes)].join(delimiter) + rowEol;
          expected.push({ line, key: `p:${phone}@${WABA}` });
        }
        const outcome = await readOutcome(write(text), undefined);
        if (outcome.kind === 'error') throw outcome.error;
        expect(outcome.lines).toEqual(expected.map((e) => e.line));
        expect(outcome.valid).toEqual(expected.map((e) => e.key));
      },
    );
    await fc.assert(property, { numRuns: 100, plugins: [fc.timeout(CASE_TIMEOUT_MS)] });
  });
});

describe('ingest properties (real Redis, dry run)', () => {
  let env: TestEnv | undefined;
  beforeAll(async () => {
    env = await makeTestEnv();
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  it('either an error and no batch left, or rows = valid + rejected + duplicates as the source yielded them', async () => {
    const t = env as TestEnv;
    const batchIds = async (): Promise<string[]> => (await t.ctx.batches.list(1000)).map((b) => b.id);
    const property = fc.asyncProperty(inputs, fc.option(fc.constant(WABA), { nil: undefined }), async (content, waba) => {
      const file = write(content);
      const expected = await readOutcome(file, waba);
      const before = await batchIds();
      let batch: BatchRecord | undefined;
      let error: unknown;
      try {
        batch = await t.ingestCsv(file, { dryRun: true, ...(waba === undefined ? {} : { waba }) });
      } catch (caught) {
        error = caught;
      }
      const after = await batchIds();
      if (batch === undefined) {
        expect(error).toBeInstanceOf(BulkUnassignError);
        expect(['ERR_CSV_INVALID', 'ERR_NO_VALID_ROWS']).toContain((error as BulkUnassignError).code);
        expect(after).toEqual(before);
        // The same verdict as reading the file alone: a broken file, or one without a single valid row.
        if (expected.kind === 'rows') expect(expected.valid).toHaveLength(0);
        return;
      }
      const { counts } = batch;
      expect(batch.status).toBe('dry-run');
      expect(counts.rows).toBe(counts.valid + counts.rejected + counts.duplicates);
      if (expected.kind !== 'rows') throw new Error(`ingest succeeded where reading failed: ${String(expected.error)}`);
      const distinct = new Set(expected.valid).size;
      expect(counts).toMatchObject({ rows: expected.lines.length, rejected: expected.rejected, valid: distinct, duplicates: expected.valid.length - distinct });
      expect(after.sort()).toEqual([...before, batch.id].sort());
    });
    await fc.assert(property, { numRuns: 30, examples: EXAMPLES, plugins: [fc.timeout(CASE_TIMEOUT_MS * 2)] });
  });
});
