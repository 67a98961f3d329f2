/**
 * What the CSV property tests share: the arbitrary inputs, the always-run examples, and `readOutcome` (open and
 * drain a source, checking each row's shape). Used by test/unit/csv-property.test.ts (parsing alone) and
 * test/integration/csv-ingest-property.test.ts (ingest into real Redis). Pure: no Redis, no build.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, expect } from '@jest/globals';
import fc from 'fast-check';

import { openCsvSource } from '../../src/ingest/csv-source.js';
import { chatKeyOf } from '../../src/domain/chat.js';

/** Registers a temp dir for the calling test file (made in beforeAll, removed in afterAll); returns its writer. */
export function useTempCsvFiles(): (content: string | Uint8Array) => string {
  let dir: string | undefined;
  let fileCount = 0;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'csv-property-'));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  return (content) => {
    if (!dir) throw new Error('useTempCsvFiles: write() called outside a test');
    const file = join(dir, `p-${(fileCount += 1)}.csv`);
    writeFileSync(file, content);
    return file;
  };
}

export const LIMITS = { maxFileBytes: 64 * 1024 * 1024, maxRecordBytes: 1024 * 1024, maxColumns: 1000 } as const;
export const WABA = '919000000000';
/** Per case: far above what a few KB take, low enough that a hang fails the property instead of the suite. */
export const CASE_TIMEOUT_MS = 10_000;

/** Pieces that exercise quoting, delimiters, line endings, encodings, phone formats and column roles. */
const TOKENS = [
  ',',
  ',',
  ';',
  '\t',
  '"',
  '"',
  '""',
  '\n',
  '\n',
  '\r\n',
  '\r',
  ' ',
  "'",
  '+',
  '-',
  '.',
  '(',
  ')',
  '\u00a0',
  '\ufeff',
  '919876543210',
  '+91 98765 43210',
  '0091-98765-43211',
  '09876543210',
  '12345',
  '9.19876E+11',
  WABA,
  'grp_1',
  'phone',
  'waba',
  'groupId',
  'Customer Phone',
  'notes',
  'x',
  'é',
  '😀',
  'column_3',
  '=cmd',
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

export const inputs = fc.oneof(
  { arbitrary: fc.uint8Array({ maxLength: 2000 }), weight: 1 },
  { arbitrary: csvishText, weight: 3 },
  { arbitrary: rowsText, weight: 2 },
);

/** Always-run examples, so both outcomes are covered whatever the seed. */
export const EXAMPLES: [string, string | undefined][] = [
  [`phone,waba\n919876543210,${WABA}\n+91 98765 43210,${WABA}\n12345,${WABA}\n`, undefined], // valid, duplicate, rejected
  ['groupId\ngrp_1\n\ngrp_2\n', undefined], // groups only
  ['phone\n919876543210\n', WABA], // --waba
  [`phone,waba\n"919876543210,${WABA}\n`, undefined], // unclosed quote: InputError
  [`phone,waba\n12345,${WABA}\n`, undefined], // no valid row
  ['', undefined], // empty file
];

export type Outcome = { kind: 'error'; error: unknown } | { kind: 'rows'; lines: number[]; valid: string[]; rejected: number };

/** Opens and drains a source, never throwing: what happened is the result. */
export async function readOutcome(file: string, waba: string | undefined): Promise<Outcome> {
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
