/**
 * Issue 7: the report and rerun stream. failed.csv is written a page at a time from a sort index in Redis (a ZSET by input
 * line) instead of every failure held in memory, so these pin what must not change: every failed chat exactly once,
 * in file order across page boundaries (more failures than one page), the classes counted, and the index gone
 * afterwards. A rerun reads its chats from the same kind of index: the same chats, the same order, no index left.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from '@jest/globals';

import { writeReport } from '../../src/report.js';
import { rerunBatch } from '../../src/rerun.js';
import { makeTestEnv, phones, type TestEnv } from '../helpers/harness.js';
import { keysUnder } from '../helpers/redis-dump.js';

const WABA = '919000000000';
let env: TestEnv | undefined;
afterEach(async () => {
  await env?.cleanup();
  env = undefined;
});

describe('report: failed.csv in file order without holding the failures in memory', () => {
  it('2,500 chats, every other one refused (422): 1,250 failures in file order, counted by class, no index left', async () => {
    const numbers = phones(2500, 40_000);
    const refused = numbers.filter((_, i) => i % 2 === 1);
    env = await makeTestEnv({ api: { faults: { rejectNumbers: refused } }, config: { workerConcurrency: 16 } });
    // Reverse file order, so neither HSCAN's nor the queue's order could pass for file order by accident.
    const rows = [...numbers].reverse().map((n, i) => `${n},${WABA},row ${i}`);
    const batch = await env.ingestCsv(env.csv('chats.csv', `phone,waba,note\n${rows.join('\n')}\n`));
    env.worker();
    const done = await env.waitFor(batch.id, ['finished']);
    expect(done.counts).toMatchObject({ valid: 2500, succeeded: 1250, failed: 1250 });
    expect(env.api.stats().byStatus).toEqual({ 201: 1250, 422: 1250 });

    const expected = rows.filter((r) => refused.includes(r.split(',')[0] as string)).map((r) => `${r},422,HTTP 422: User is not a member of the team`);
    const read = (): string[] => readFileSync(join(env!.config.reportsDir, batch.id, 'failed.csv'), 'utf8').trim().split('\r\n');
    expect(read()).toEqual(['phone,waba,note,status,error', ...expected]);

    // Rebuilt on demand (as `bulk-unassign report` does): the same file, the same counts, and no sort index left.
    const summary = await writeReport(env.ctx, await env.ctx.batches.require(batch.id), env.config.reportsDir);
    expect(summary.failuresByClass).toEqual({ permanent: 1250 });
    expect(read()).toEqual(['phone,waba,note,status,error', ...expected]);
    expect((await keysUnder(env.ctx.redis, env.config.queuePrefix)).filter((k) => k.includes(':failures:'))).toEqual([]);
  });
});

describe('rerun: the child is built from the failure index, in the parent\'s file order', () => {
  it('1,250 refused chats of 2,500 (more than a page): the rerun stages exactly them, in file order, and drops its index', async () => {
    const numbers = phones(2500, 50_000);
    const refused = numbers.filter((_, i) => i % 2 === 1);
    env = await makeTestEnv({ api: { faults: { rejectNumbers: refused } }, config: { workerConcurrency: 16 } });
    const rows = [...numbers].reverse().map((n, i) => `${n},${WABA},row ${i}`);
    const parent = await env.ingestCsv(env.csv('chats.csv', `phone,waba,note\n${rows.join('\n')}\n`));
    env.worker();
    await env.waitFor(parent.id, ['finished']);

    // 422 is permanent: the default selection takes none of them, --include-permanent takes all.
    await expect(rerunBatch(env.ctx, parent.id, { dryRun: true })).rejects.toThrow(/none of its 1250 failed chat\(s\) match/);
    const child = await rerunBatch(env.ctx, parent.id, { dryRun: true, includePermanent: true });
    expect(child.counts).toMatchObject({ rows: 1250, valid: 1250, rejected: 0, duplicates: 0 });
    // A dry run keeps its staged order list: the chats as the child would enqueue them.
    const staged = await env.ctx.redis.lrange(env.ctx.keys.batch(child.id).order, 0, -1);
    const inFileOrder = rows.map((r) => r.split(',')[0] as string).filter((n) => refused.includes(n)).map((n) => `p:${n}@${WABA}`);
    expect(staged).toEqual(inFileOrder);
    // Each child row keeps the parent's line and cells (the file's first data row, line 2, is refused: numbers[2499]).
    const first = JSON.parse((await env.ctx.redis.hget(env.ctx.keys.batch(child.id).chats, staged[0] as string)) as string) as { line: number; cells: Record<string, string> };
    expect(first).toEqual({ line: 2, cells: { phone: numbers[2499], waba: WABA, note: 'row 0' } });
    expect((await keysUnder(env.ctx.redis, env.config.queuePrefix)).filter((k) => k.includes(':failures:'))).toEqual([]);
  });
});
