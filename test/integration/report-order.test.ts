/**
 * The report and rerun stream. failed.csv is written a page at a time from a sort index in Redis (a ZSET by input
 * line) instead of every failure held in memory, so these pin what must not change: every failed chat exactly once,
 * in file order across page boundaries (more failures than one page), the classes counted, and the index gone
 * afterwards. A rerun reads its chats from the same kind of index: the same chats, the same order, no index left.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from '@jest/globals';

import { writeReport } from '../../src/report/report.js';
import { rerunBatch } from '../../src/ops/rerun.js';
import { makeTestEnv, phones, type TestEnv } from '../helpers/harness.js';
import { keysUnder } from '../helpers/redis-dump.js';
import { TEST_ACTOR } from '../helpers/actor.js';

const WABA = '919000000000';
let env: TestEnv | undefined;
afterEach(async () => {
  await env?.cleanup();
  env = undefined;
});

/**
 * 2,500 chats of which every other one is refused (422), written in reverse order so that neither HSCAN's nor the
 * queue's order could pass for file order by accident, run to the end by a worker.
 */
async function finishedHalfRefusedBatch(firstPhone: number) {
  const numbers = phones(2500, firstPhone);
  const refused = numbers.filter((_, i) => i % 2 === 1);
  const t = await makeTestEnv({ api: { faults: { rejectNumbers: refused } }, config: { workerConcurrency: 16 } });
  env = t; // for afterEach
  const rows = [...numbers].reverse().map((n, i) => `${n},${WABA},row ${i}`);
  const batch = await t.ingestCsv(t.csv('chats.csv', `phone,waba,note\n${rows.join('\n')}\n`));
  t.worker();
  const done = await t.waitFor(batch.id, ['finished']);
  return { t, numbers, refused, rows, batch, done };
}

/** Failure-index keys left under the test's prefix (a report or rerun must drop its own). */
async function failureIndexKeys(t: TestEnv): Promise<string[]> {
  return (await keysUnder(t.ctx.redis, t.config.queuePrefix)).filter((k) => k.includes(':failures:'));
}

describe('report: failed.csv in file order without holding the failures in memory', () => {
  it('2,500 chats, every other one refused (422): 1,250 failures in file order, counted by class, no index left', async () => {
    const { t, refused, rows, batch, done } = await finishedHalfRefusedBatch(40_000);
    expect(done.counts).toMatchObject({ valid: 2500, succeeded: 1250, failed: 1250 });
    expect(t.api.stats().byStatus).toEqual({ 201: 1250, 422: 1250 });

    const expected = rows.filter((r) => refused.includes(r.split(',')[0] as string)).map((r) => `${r},422,HTTP 422: User is not a member of the team`);
    const read = (): string[] =>
      readFileSync(join(t.config.reportsDir, batch.id, 'failed.csv'), 'utf8')
        .trim()
        .split('\r\n');
    expect(read()).toEqual(['phone,waba,note,status,error', ...expected]);

    // Rebuilt on demand (as `bulk-unassign report` does): the same file, the same counts, and no sort index left.
    const summary = await writeReport(t.ctx, await t.ctx.batches.require(batch.id), t.config.reportsDir);
    expect(summary.failuresByClass).toEqual({ permanent: 1250 });
    expect(read()).toEqual(['phone,waba,note,status,error', ...expected]);
    expect(await failureIndexKeys(t)).toEqual([]);
  });
});

describe("rerun: the child is built from the failure index, in the parent's file order", () => {
  it('1,250 refused chats of 2,500 (more than a page): the rerun stages exactly them, in file order, and drops its index', async () => {
    const { t, numbers, refused, rows, batch: parent } = await finishedHalfRefusedBatch(50_000);

    // 422 is permanent: the default selection takes none of them, --include-permanent takes all.
    await expect(rerunBatch(t.ctx, parent.id, TEST_ACTOR, { dryRun: true })).rejects.toThrow(/none of its 1250 failed chat\(s\) match/);
    const child = await rerunBatch(t.ctx, parent.id, TEST_ACTOR, { dryRun: true, includePermanent: true });
    expect(child.counts).toMatchObject({ rows: 1250, valid: 1250, rejected: 0, duplicates: 0 });
    // A dry run keeps its staged order list: the chats as the child would enqueue them.
    const staged = await t.ctx.redis.lrange(t.ctx.keys.batch(child.id).order, 0, -1);
    const inFileOrder = rows
      .map((r) => r.split(',')[0] as string)
      .filter((n) => refused.includes(n))
      .map((n) => `p:${n}@${WABA}`);
    expect(staged).toEqual(inFileOrder);
    // Each child row keeps the parent's line and cells (the file's first data row, line 2, is refused: numbers[2499]).
    const first = JSON.parse((await t.ctx.redis.hget(t.ctx.keys.batch(child.id).chats, staged[0] as string)) as string) as {
      line: number;
      cells: Record<string, string>;
    };
    expect(first).toEqual({ line: 2, cells: { phone: numbers[2499], waba: WABA, note: 'row 0' } });
    expect(await failureIndexKeys(t)).toEqual([]);
  });
});
