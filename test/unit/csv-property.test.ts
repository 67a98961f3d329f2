/**
 * Properties of the CSV parsing layer over arbitrary input: any bytes either stop with
 * an InputError (never another error type, never a hang) or yield rows that are each valid or rejected, with
 * start lines >= 2 that only go forward. The same inputs through ingest into real Redis are an integration test:
 * test/integration/csv-ingest-property.test.ts.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';

import { InputError } from '../../src/domain/errors.js';
import { CASE_TIMEOUT_MS, EXAMPLES, inputs, readOutcome, useTempCsvFiles, WABA } from './csv-property-inputs.js';

const write = useTempCsvFiles();

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
