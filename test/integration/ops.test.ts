/**
 * The ops workflow against real Redis and the stand-in server: rerun (filters, links, rerun of a
 * rerun, refusals, failed.csv round trip), cancel, pause/resume of one batch, report rebuild, duplicate-upload
 * guard, dry run, and fairness between a big and a small batch.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from '@jest/globals';

import { cancelBatch, pauseBatch, resumeBatch } from '../../src/ops/batch-control.js';
import { DuplicateUploadError } from '../../src/domain/errors.js';
import { writeReport } from '../../src/report/report.js';
import { rerunBatch } from '../../src/ops/rerun.js';
import { makeTestEnv, phones, type TestEnv } from '../helpers/harness.js';
import { eventually } from '../helpers/eventually.js';
import { TEST_ACTOR } from '../helpers/actor.js';

const WABA = '919000000000';
let env: TestEnv | undefined;
afterEach(async () => {
  await env?.cleanup();
  env = undefined;
});

const csvOf = (numbers: readonly string[], extra = ''): string => `phone,waba,note\n${numbers.map((n, i) => `+${n},${WABA},row ${i}${extra}`).join('\n')}\n`;

async function chatKeysOf(e: TestEnv, batchId: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const [k] of e.ctx.results.scan(batchId)) keys.push(k);
  return keys.sort();
}

describe('ops: rerun', () => {
  it('reruns fixable failures only by default, links parent and child, and reruns a rerun', async () => {
    const numbers = phones(60);
    const down = numbers.slice(0, 6); // 503 until the fault is lifted → transient failures
    const refused = numbers.slice(6, 9); // 422 → permanent
    env = await makeTestEnv({ api: { faults: { flaky: Object.fromEntries(down.map((n) => [n, 100])), rejectNumbers: refused } }, config: { maxAttempts: 2 } });
    env.worker();
    const parent = await env.waitFor((await env.ingestCsv(env.csv('a.csv', csvOf(numbers)))).id);
    expect(parent.counts).toMatchObject({ succeeded: 51, failed: 9 });

    // A rerun of a running batch is refused, so is nothing-to-rerun; both with a clear message.
    const busy = await env.ingestCsv(env.csv('b.csv', csvOf(phones(5, 1000))));
    await pauseBatch(env.ctx, busy.id, TEST_ACTOR);
    await expect(rerunBatch(env.ctx, busy.id, TEST_ACTOR)).rejects.toThrow(/still paused .*wait for it to finish, or `bulk-unassign cancel/);

    env.api.setFaults({ flaky: Object.fromEntries(down.slice(0, 2).map((n) => [n, 100])), rejectNumbers: refused });
    const child = await rerunBatch(env.ctx, parent.id, TEST_ACTOR);
    expect(child.counts.valid).toBe(6);
    expect(child.parent).toBe(parent.id);
    expect((await env.ctx.batches.require(parent.id)).children).toEqual([child.id]);
    await expect(rerunBatch(env.ctx, parent.id, TEST_ACTOR)).rejects.toThrow(`already has a rerun in progress: ${child.id}`);
    const childDone = await env.waitFor(child.id);
    expect(childDone.counts).toMatchObject({ succeeded: 4, failed: 2 });
    const childSummary = JSON.parse(readFileSync(join(env.config.reportsDir, child.id, 'summary.json'), 'utf8'));
    expect(childSummary.parent).toBe(parent.id);
    const parentSummary = JSON.parse(readFileSync(join(env.config.reportsDir, parent.id, 'summary.json'), 'utf8'));
    expect(parentSummary.children).toEqual([child.id]);
    // The child's failed.csv keeps the source's own columns and rows.
    expect(readFileSync(join(env.config.reportsDir, child.id, 'failed.csv'), 'utf8').split('\r\n')[0]).toBe('phone,waba,note,status,error');

    env.api.setFaults({});
    const grandchild = await env.waitFor((await rerunBatch(env.ctx, child.id, TEST_ACTOR)).id);
    expect(grandchild.counts).toMatchObject({ valid: 2, succeeded: 2, failed: 0 });
    // Every chat was unassigned exactly once over the three batches, and the 422s were never called again.
    const stats = env.api.stats();
    expect(Object.values(stats.unassigned).every((n) => n === 1)).toBe(true);
    const busyDone = await env.ctx.batches.require(busy.id); // the worker may have run some before the pause
    expect(Object.keys(stats.unassigned)).toHaveLength(51 + 4 + 2 + busyDone.counts.succeeded);
    expect(stats.byStatus['422']).toBe(3);

    await expect(rerunBatch(env.ctx, grandchild.id, TEST_ACTOR)).rejects.toThrow(/nothing to rerun .*no failed chats/);
    await expect(rerunBatch(env.ctx, parent.id, TEST_ACTOR, { onlyReason: 'no such text' })).rejects.toThrow(/none of its 9 failed chat\(s\) match/);
    const permanent = await rerunBatch(env.ctx, parent.id, TEST_ACTOR, { includePermanent: true, onlyReason: 'not a member' });
    expect(permanent.counts.valid).toBe(3);
    await env.waitFor(permanent.id);
  });

  it("uploading a batch's failed.csv gives the same chats as rerun --include-permanent", async () => {
    const numbers = phones(20, 2000);
    env = await makeTestEnv({ api: { faults: { rejectNumbers: numbers.slice(0, 4), notFoundNumbers: numbers.slice(4, 5) } } });
    env.worker();
    const parent = await env.waitFor(
      (
        await env.ingestCsv(
          env.csv('p.csv', `Mobile;Business Number;"=HYPERLINK(""x"")"\n${numbers.map((n) => `+${n.slice(0, 2)} ${n.slice(2)};${WABA};=1+1`).join('\n')}\n`),
        )
      ).id,
    );
    expect(parent.counts.failed).toBe(5);
    const failedCsv = join(env.config.reportsDir, parent.id, 'failed.csv');
    const reupload = await env.ingestCsv(failedCsv, { dryRun: true });
    const rerun = await rerunBatch(env.ctx, parent.id, TEST_ACTOR, { includePermanent: true, dryRun: true });
    const staged = async (id: string): Promise<string[]> => (await env!.ctx.redis.hkeys(env!.ctx.keys.batch(id).chats)).sort();
    expect(reupload.counts).toMatchObject({ valid: 5, rejected: 0 });
    expect(await staged(reupload.id)).toEqual(await staged(rerun.id));
    // The parent keeps the input rows of its failed chats only (successes are dropped to save memory).
    expect(await staged(rerun.id)).toEqual(await staged(parent.id));
    expect((await chatKeysOf(env, parent.id)).length).toBe(20);
  });
});

describe('ops: cancel, pause, resume, report, duplicates, dry run, fairness', () => {
  it('cancel: waiting chats become cancelled, in-flight ones finish, counts add up, report says so', async () => {
    env = await makeTestEnv({ api: { latencyMs: 20 }, config: { rateLimitMax: 40, workerConcurrency: 2 } });
    env.worker();
    const batch = await env.ingestCsv(env.csv('c.csv', csvOf(phones(200, 3000))));
    // Cancel once some chats are done (at 40/s most are still waiting): both kinds are in the batch.
    await eventually(async () => (await env!.ctx.batches.require(batch.id)).done >= 10, { timeoutMs: 20_000, message: 'the first 10 chats to finish' });
    const cancelled = await cancelBatch(env.ctx, batch.id, TEST_ACTOR);
    const done = await env.waitFor(batch.id, ['cancelled']);
    expect(cancelled).toBeGreaterThan(100);
    // Workers that fetch a chat of a cancelling batch record it as cancelled too.
    expect(done.counts.cancelled).toBeGreaterThanOrEqual(cancelled);
    expect(done.counts.valid).toBe(done.counts.succeeded + done.counts.failed + done.counts.cancelled);
    expect(done.counts.succeeded).toBe(Object.keys(env.api.stats().unassigned).length);
    const summary = JSON.parse(readFileSync(join(env.config.reportsDir, batch.id, 'summary.json'), 'utf8'));
    expect(summary.status).toBe('cancelled');
    expect(summary.counts.cancelled).toBe(done.counts.cancelled);
    expect(readFileSync(join(env.config.reportsDir, batch.id, 'summary.md'), 'utf8')).toMatch(/cancel/i);
    // Cancelled chats did not fail: they are not a failure reason anywhere (status, console, report).
    expect(done.reasons).toEqual({});
    expect(summary.failureReasons).toEqual([]);
  });

  it('pause holds one batch while another finishes; resume completes it with exact counts', async () => {
    env = await makeTestEnv({ config: { rateLimitMax: 100 } });
    const a = await env.ingestCsv(env.csv('a.csv', csvOf(phones(150, 4000))));
    const b = await env.ingestCsv(env.csv('b.csv', csvOf(phones(50, 5000))));
    await pauseBatch(env.ctx, a.id, TEST_ACTOR);
    env.worker();
    expect((await env.waitFor(b.id)).counts.succeeded).toBe(50);
    const paused = await env.ctx.batches.require(a.id);
    expect(paused.status).toBe('paused');
    expect(paused.done).toBe(0);
    expect(await resumeBatch(env.ctx, a.id, TEST_ACTOR)).toBe(150);
    expect((await env.waitFor(a.id)).counts.succeeded).toBe(150);
    expect(Object.values(env.api.stats().unassigned).every((n) => n === 1)).toBe(true);
    await expect(pauseBatch(env.ctx, a.id, TEST_ACTOR)).rejects.toThrow(/cannot pause batch .* it is finished/);
  });

  it('report rebuilds the same files from Redis at any time', async () => {
    env = await makeTestEnv({ api: { faults: { rejectNumbers: phones(2, 6000) } } });
    env.worker();
    const batch = await env.waitFor((await env.ingestCsv(env.csv('r.csv', csvOf(phones(30, 6000)) + 'bad,919000000000,x\n'))).id);
    const dir = join(env.config.reportsDir, batch.id);
    const before = ['summary.json', 'failed.csv', 'rejected.csv', 'summary.md'].map((f) => readFileSync(join(dir, f), 'utf8'));
    await writeReport(env.ctx, await env.ctx.batches.require(batch.id), env.config.reportsDir);
    const after = ['summary.json', 'failed.csv', 'rejected.csv', 'summary.md'].map((f) => readFileSync(join(dir, f), 'utf8'));
    const strip = (s: string): string => s.replace(/"generatedAt": "[^"]+"/, '').replace(/Generated [^\n]*/, '');
    expect(after.map(strip)).toEqual(before.map(strip));
  });

  it('refuses the same file content within the duplicate window unless forced, naming the earlier batch', async () => {
    env = await makeTestEnv();
    const file = env.csv('d.csv', csvOf(phones(3, 7000)));
    const first = await env.ingestCsv(file, { duplicateWindowHours: 24 });
    const again = env.ingestCsv(file, { duplicateWindowHours: 24 });
    await expect(again).rejects.toBeInstanceOf(DuplicateUploadError);
    await expect(env.ingestCsv(file, { duplicateWindowHours: 24 })).rejects.toThrow(`already run as batch ${first.id}`);
    const forced = await env.ingestCsv(file, { duplicateWindowHours: 24, force: true });
    expect(forced.id).not.toBe(first.id);
    expect((await env.ctx.batches.list(10)).map((b) => b.id).sort()).toEqual([first.id, forced.id].sort());
  });

  it('dry run calls nothing and enqueues nothing', async () => {
    env = await makeTestEnv();
    const dry = await env.ingestCsv(env.csv('dry.csv', csvOf(phones(10, 8000)) + 'nope,919000000000,x\n'), { dryRun: true });
    // Ingest has returned and no worker runs yet: whatever it enqueued would be here.
    expect(await env.ctx.queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active')).toEqual({ waiting: 0, prioritized: 0, delayed: 0, active: 0 });
    env.worker();
    // Instead of a sleep, a barrier: a real one-chat batch enqueued after the dry run. Once it is finished, the
    // worker has been running and fetching; a chat of the dry run would have been called by then.
    const [barrierPhone] = phones(1, 8100) as [string];
    await env.waitFor((await env.ingestCsv(env.csv('barrier.csv', csvOf([barrierPhone])))).id, ['finished']);
    const batch = await env.ctx.batches.require(dry.id); // read after the wait, not the record ingest returned
    expect(batch.status).toBe('dry-run');
    expect(batch.counts).toMatchObject({ valid: 10, rejected: 1, succeeded: 0, failed: 0, cancelled: 0 });
    expect(batch.done).toBe(0);
    expect(env.api.stats().requests).toBe(1);
    expect(Object.keys(env.api.stats().unassigned)).toEqual([`p:${barrierPhone}@${WABA}`]);
  });

  it('a small batch uploaded behind a big one does not wait for the big one to finish', async () => {
    env = await makeTestEnv({ config: { rateLimitMax: 100, workerConcurrency: 4 } });
    env.worker();
    const big = await env.ingestCsv(env.csv('big.csv', csvOf(phones(1500, 10_000))));
    // The small batch arrives while the big one is under way (not merely queued).
    await eventually(async () => (await env!.ctx.batches.require(big.id)).done >= 20, { timeoutMs: 20_000, message: 'the big batch to get going' });
    const small = await env.ingestCsv(env.csv('small.csv', csvOf(phones(20, 20_000))));
    await env.waitFor(small.id);
    const bigNow = await env.ctx.batches.require(big.id);
    // At 100/s the big batch needs ~15 s; the small one finished while most of it was still waiting.
    expect(bigNow.done).toBeLessThan(bigNow.counts.valid / 2);
    await cancelBatch(env.ctx, big.id, TEST_ACTOR);
    await env.waitFor(big.id, ['cancelled']);
  });
});
