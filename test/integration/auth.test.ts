/**
 * A bad API key (wrong from the start, or revoked mid-batch) stops the batch within a few
 * calls, marks nothing failed for it, says what to do, and `resume <batchId>` (library and CLI) finishes the
 * batch once the key is fixed, with every chat unassigned exactly once.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { afterEach, describe, expect, it } from '@jest/globals';

import { resumeBatch } from '../../src/ops/batch-control.js';
import { resolveConfig } from '../../src/config/config.js';
import { type Context, makeContext } from '../../src/runtime/context.js';
import { silentLogger } from '../../src/config/logger.js';
import { type RunningWorker, startWorker } from '../../src/execution/worker.js';
import { jobTable } from '../../jobs/index.js';
import { makeTestEnv, phones, TEST_KEY, type TestEnv, waitForQuiet } from '../helpers/harness.js';
import { TEST_ACTOR } from '../helpers/actor.js';

const WABA = '919000000000';
const WORKERS = 3;
const CONCURRENCY = 4;
/** Calls that may still go out after the first 401: one in flight per worker slot, plus a few for timing. */
const MAX_CALLS_AFTER_REVOKE = WORKERS * CONCURRENCY + 3;
const CLI = fileURLToPath(new URL('../../dist/src/main.js', import.meta.url));

let env: TestEnv | undefined;
const extra: { ctx?: Context; workers: RunningWorker[] } = { workers: [] };
afterEach(async () => {
  await Promise.all(extra.workers.map((w) => w.close(true)));
  await extra.ctx?.close();
  extra.workers = [];
  delete extra.ctx;
  await env?.cleanup();
  env = undefined;
});

async function ingest(e: TestEnv, n: number) {
  const numbers = phones(n, 20_000);
  return e.ingestCsv(e.csv('chats.csv', `phone,waba\n${numbers.map((p) => `${p},${WABA}`).join('\n')}\n`));
}

function runCli(args: string[], env: Record<string, string>, cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, cwd, timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

function expectStoppedForAuth(batch: Awaited<ReturnType<TestEnv['waitFor']>>): void {
  expect(batch.status).toBe('stopped');
  // The reason says what happened and what to do next.
  expect(batch.reason).toMatch(/API key rejected \(HTTP 401: Invalid public api key\)/);
  expect(batch.reason).toContain('DOUBLETICK_API_KEY');
  expect(batch.reason).toContain(`bulk-unassign resume ${batch.id}`);
  // A bad key is not the chats' fault: none is failed for it.
  expect(batch.counts.failed).toBe(0);
  expect(batch.reasons).toEqual({});
}

describe('bad API key: the batch stops within a few calls, and resume finishes it once the key is fixed', () => {
  it('key revoked mid-batch: stops after ≤ workers × concurrency + 3 rejected calls; resumeBatch() finishes every chat exactly once', async () => {
    const chats = 300;
    const okBeforeRevoke = 60;
    env = await makeTestEnv({ api: { faults: { revokeKeyAfter: okBeforeRevoke } }, config: { workerConcurrency: CONCURRENCY, rateLimitMax: 0 } });
    const batch = await ingest(env, chats);
    for (let i = 0; i < WORKERS; i += 1) env.worker();
    const stopped = await env.waitFor(batch.id, ['stopped', 'finished'], 30_000);
    await waitForQuiet(env);

    const atStop = env.api.stats();
    expectStoppedForAuth(await env.ctx.batches.require(batch.id));
    expect(atStop.byStatus['201']).toBe(okBeforeRevoke);
    expect(atStop.byStatus['401']).toBeGreaterThanOrEqual(1);
    expect(atStop.byStatus['401']).toBeLessThanOrEqual(MAX_CALLS_AFTER_REVOKE);
    expect((await env.ctx.batches.require(batch.id)).counts.succeeded).toBe(okBeforeRevoke);
    expect(stopped.status).toBe('stopped');
    // Every chat without a result is parked for resume; none is lost.
    expect(await env.ctx.redis.hlen(env.ctx.keys.batch(batch.id).parked)).toBe(chats - okBeforeRevoke);

    env.api.setFaults({}); // the key works again
    expect(await resumeBatch(env.ctx, batch.id, TEST_ACTOR)).toBe(chats - okBeforeRevoke);
    const done = await env.waitFor(batch.id, ['finished'], 30_000);

    const stats = env.api.stats();
    expect(done.counts).toMatchObject({ valid: chats, succeeded: chats, failed: 0, cancelled: 0 });
    expect(Object.keys(stats.unassigned)).toHaveLength(chats);
    expect(Object.values(stats.unassigned).every((n) => n === 1)).toBe(true);
    expect(stats.byStatus['201']).toBe(chats);
    expect(stats.requests).toBe(chats + atStop.byStatus['401']!);
    expect(done.reason).toBe('');
  });

  it('wrong key from the start: stops after ≤ workers × concurrency + 3 calls; `bulk-unassign resume` (CLI) finishes it with the right key', async () => {
    const chats = 120;
    env = await makeTestEnv({ config: { apiKey: 'key_wrong_0000000000', workerConcurrency: CONCURRENCY, rateLimitMax: 0 } });
    const batch = await ingest(env, chats);
    const badWorkers = Array.from({ length: WORKERS }, () => env!.worker());
    await env.waitFor(batch.id, ['stopped', 'finished'], 30_000);
    await waitForQuiet(env);

    const atStop = env.api.stats();
    expectStoppedForAuth(await env.ctx.batches.require(batch.id));
    expect(atStop.byStatus).toEqual({ 401: atStop.requests });
    expect(atStop.requests).toBeLessThanOrEqual(MAX_CALLS_AFTER_REVOKE);
    expect(await env.ctx.redis.hlen(env.ctx.keys.batch(batch.id).parked)).toBe(chats);

    // Fix the key: the workers restart with the right one (as an operator would), then the CLI resumes the batch.
    await Promise.all(badWorkers.map((w) => w.close()));
    extra.ctx = makeContext(resolveConfig({ ...env.config, apiKey: TEST_KEY }, {}), silentLogger());
    for (let i = 0; i < WORKERS; i += 1) extra.workers.push(startWorker(extra.ctx, jobTable, { sweepIntervalMs: 1000 }));
    const cli = await runCli(['resume', batch.id], { REDIS_URL: env.config.redisUrl, QUEUE_PREFIX: env.config.queuePrefix }, env.dir);
    expect(cli).toEqual({ code: 0, stdout: `batch ${batch.id} resumed: ${chats} chat(s) back on the queue\n`, stderr: '' });
    const done = await env.waitFor(batch.id, ['finished'], 30_000);

    const stats = env.api.stats();
    expect(done.counts).toMatchObject({ valid: chats, succeeded: chats, failed: 0 });
    expect(Object.keys(stats.unassigned)).toHaveLength(chats);
    expect(Object.values(stats.unassigned).every((n) => n === 1)).toBe(true);
    expect(stats.byStatus).toEqual({ 201: chats, 401: atStop.requests });
  });

  // Regression: resume used to re-add only the parked set; a chat whose job was still parking itself (or that the
  // stopper took off the queue after resume began) was left with no job and the batch hung in `running` forever.
  it('resume right after the stop, while jobs still park themselves: no chat is stranded, every chat 201 once', async () => {
    const chats = 1500;
    env = await makeTestEnv({ api: { faults: { revokeKeyAfter: 100 }, latencyMs: 5 }, config: { workerConcurrency: CONCURRENCY, rateLimitMax: 0 } });
    const batch = await ingest(env, chats);
    for (let i = 0; i < WORKERS; i += 1) env.worker();
    await env.waitFor(batch.id, ['stopped'], 30_000);
    env.api.setFaults({});
    let done = await env.ctx.batches.require(batch.id);
    // A call answered 401 before the key was fixed may stop the batch once more: then resume again, as the reason says.
    for (let resumes = 0; done.status === 'stopped' && resumes < 3; resumes += 1) {
      await resumeBatch(env.ctx, batch.id, TEST_ACTOR);
      done = await env.waitFor(batch.id, ['finished', 'stopped'], 30_000);
    }
    const stats = env.api.stats();
    expect(done.counts).toMatchObject({ valid: chats, succeeded: chats, failed: 0 });
    expect(Object.keys(stats.unassigned)).toHaveLength(chats);
    expect(Object.values(stats.unassigned).every((n) => n === 1)).toBe(true);
  });

  it('resuming a batch that is not stopped is refused with its state (CLI exit 2)', async () => {
    env = await makeTestEnv();
    const batch = await ingest(env, 3);
    env.worker();
    await env.waitFor(batch.id, ['finished']);
    const cli = await runCli(['resume', batch.id], { REDIS_URL: env.config.redisUrl, QUEUE_PREFIX: env.config.queuePrefix }, env.dir);
    expect(cli.code).toBe(2);
    expect(cli.stderr).toBe(`bulk-unassign: cannot resume batch ${batch.id}: it is finished, and only a paused or stopped batch can be\n`);
  });
});
