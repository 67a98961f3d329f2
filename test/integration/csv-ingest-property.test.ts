/**
 * Property of CSV ingest into real Redis (dry run), over the same arbitrary inputs as the unit-tier parsing
 * properties (test/unit/csv-property.test.ts): either an error and no batch left behind, or
 * rows = valid + rejected + duplicates, matching what the source itself yielded.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';

import type { BatchRecord } from '../../src/store/batch-store.js';
import { BulkUnassignError } from '../../src/domain/errors.js';
import { makeTestEnv, type TestEnv } from '../helpers/harness.js';
import { CASE_TIMEOUT_MS, EXAMPLES, inputs, readOutcome, useTempCsvFiles, WABA } from '../unit/csv-property-inputs.js';

const write = useTempCsvFiles();

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
