/**
 * Stopping on a signal. A `worker` given SIGTERM mid-batch stops taking jobs,
 * finishes the ones in flight and exits 0 within its grace period (REQUEST_TIMEOUT_MS + 5 s), leaving no job
 * locked; another worker then finishes the batch with exact counts. A second signal forces the exit (130) while
 * calls are still in flight; their jobs are re-run once their locks expire. `run` interrupted with SIGINT exits
 * 3 and leaves the batch for a `worker` to finish, nothing lost or counted twice.
 */
import { afterEach, describe, expect, it } from '@jest/globals';

import { jobsHeldFor } from '../../src/execution/call-slots.js';
import { expectExactAccounting, simpleCsv, type StalledWatch, until, waitForDone, watchStalled } from '../helpers/accounting.js';
import { makeTestEnv, phones, type TestEnv } from '../helpers/harness.js';
import { type ExitStatus, killAllChildren, type SpawnedCli, spawnCli, spawnWorker } from '../helpers/processes.js';

const WABA = '919000000000';
const CONCURRENCY = 4;

let env: TestEnv | undefined;
let stalled: StalledWatch | undefined;
afterEach(async () => {
  await killAllChildren();
  await stalled?.close();
  await env?.cleanup();
  [env, stalled] = [undefined, undefined];
});

/** The exit status, or a failure naming what the process printed if it has not exited within `ms`. */
async function exitWithin(proc: SpawnedCli, ms: number): Promise<ExitStatus> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still running ${ms} ms after the signal; output:\n${proc.output()}`)), ms);
  });
  try {
    return await Promise.race([proc.exited, late]);
  } finally {
    clearTimeout(timer);
  }
}

describe('graceful shutdown', () => {
  it('SIGTERM: the worker finishes its jobs in flight, exits 0 within the grace period; the next worker finishes the batch exactly', async () => {
    const chats = 600;
    const requestTimeoutMs = 2000;
    env = await makeTestEnv({ api: { latencyMs: 50 }, config: { workerConcurrency: CONCURRENCY, requestTimeoutMs } });
    const { text, chatKeys } = simpleCsv(phones(chats), WABA);
    stalled = await watchStalled(env);
    const batch = await env.ingestCsv(env.csv('chats.csv', text));
    const first = await spawnWorker(env);
    await waitForDone(env, batch.id, 100);

    const requestsAtSignal = env.api.stats().requests;
    const signalledAt = Date.now();
    first.kill('SIGTERM');
    const graceMs = requestTimeoutMs + 5000;
    expect(await exitWithin(first, graceMs)).toEqual({ code: 0, signal: null });
    const exitMs = Date.now() - signalledAt;
    expect(first.output()).toContain('worker stopped');
    // Stopped taking jobs: at most its calls in flight reached the server after the signal (the jobs waiting for a
    // call slot were given back uncalled).
    const requestsAfterSignal = env.api.stats().requests - requestsAtSignal;
    expect(requestsAfterSignal).toBeLessThanOrEqual(CONCURRENCY);
    const paused = await env.ctx.batches.require(batch.id);
    expect(paused.status).toBe('running');
    expect(paused.done).toBeLessThan(chats);
    // Nothing left locked by the stopped worker: the next one need not wait for a lock to expire.
    expect(await env.ctx.queue.getActiveCount()).toBe(0);

    await spawnWorker(env);
    await env.waitFor(batch.id, ['finished'], 60_000);
    const { extra201s } = await expectExactAccounting(env, batch.id, chatKeys);
    expect(extra201s).toBe(0);
    expect(stalled.times).toHaveLength(0);
    console.log(
      `graceful-shutdown: SIGTERM, exit 0 after ${exitMs} ms (grace ${graceMs} ms), ${requestsAfterSignal} requests reached ` +
        `the server after the signal, done ${paused.done} at exit, extra 201s ${extra201s}`,
    );
  }, 60_000);

  it('stopping gracefully: the calls in flight finish; a job still waiting for a call slot goes back to the queue uncalled, no attempt spent', async () => {
    const concurrency = 2;
    const chats = 8;
    env = await makeTestEnv({ api: { latencyMs: 1500 }, config: { workerConcurrency: concurrency, requestTimeoutMs: 5000 } });
    const { text, chatKeys } = simpleCsv(phones(chats), WABA);
    const batch = await env.ingestCsv(env.csv('chats.csv', text));
    const first = env.worker();
    // Both slots' calls are at the server and the worker holds one job more, waiting for a slot.
    await until(
      async () => env?.api.stats().requests === concurrency && (await env.ctx.queue.getActiveCount()) === jobsHeldFor(concurrency),
      'the calls in flight and a job waiting for a call slot',
    );
    await first.close();
    expect(env.api.stats().requests).toBe(concurrency);
    expect((await env.ctx.batches.require(batch.id)).done).toBe(concurrency);
    expect(await env.ctx.queue.getActiveCount()).toBe(0);
    const back = await env.ctx.queue.getJobs(['prioritized', 'waiting']);
    expect(back).toHaveLength(chats - concurrency);
    expect(back.every((j) => j.attemptsMade === 0)).toBe(true);

    env.worker();
    const done = await env.waitFor(batch.id, ['finished'], 30_000);
    await expectExactAccounting(env, batch.id, chatKeys);
    expect(done.attempts).toBe(chats);
    expect(env.api.stats().requests).toBe(chats);
  }, 60_000);

  it('a second signal forces the exit with calls in flight; their jobs are re-run after the lock expires', async () => {
    const chats = 6;
    const latencyMs = 4000;
    // The lock must outlast the timeout (config.ts enforces timeout + 1 s); short here so recovery takes seconds.
    env = await makeTestEnv({ api: { latencyMs }, config: { workerConcurrency: CONCURRENCY, requestTimeoutMs: 6000, lockDurationMs: 7000 } });
    const { text, chatKeys } = simpleCsv(phones(chats), WABA);
    stalled = await watchStalled(env);
    const batch = await env.ingestCsv(env.csv('chats.csv', text));
    const first = await spawnWorker(env);
    await until(() => env?.api.stats().requests === CONCURRENCY, 'the worker to have its calls in flight');

    first.kill('SIGTERM');
    await first.waitForOutput('finishing jobs in flight');
    first.kill('SIGTERM');
    expect(await exitWithin(first, 3000)).toEqual({ code: 130, signal: null });
    expect(first.output()).toContain('SIGTERM again: forcing exit');
    // Forced before any in-flight call could answer (each takes latencyMs): nothing was recorded.
    expect((await env.ctx.batches.require(batch.id)).done).toBe(0);

    const startedAt = Date.now();
    await spawnWorker(env);
    await env.waitFor(batch.id, ['finished'], 60_000);
    const { extra201s } = await expectExactAccounting(env, batch.id, chatKeys);
    // Its calls in flight are re-run after the lock expires (the server completed the abandoned calls too, so
    // those chats were unassigned twice: one per call in flight). A job that was waiting for a call slot is given
    // back to the queue on the way out, or, if the exit came first, re-run like the others.
    expect(stalled.times.length).toBeGreaterThanOrEqual(CONCURRENCY);
    expect(stalled.times.length).toBeLessThanOrEqual(jobsHeldFor(CONCURRENCY));
    expect(extra201s).toBeLessThanOrEqual(CONCURRENCY);
    console.log(
      `graceful-shutdown (forced): exit 130, ${stalled.times.length} jobs re-run, first ${(stalled.times[0] ?? 0) - startedAt} ms after the next worker started, extra 201s ${extra201s}`,
    );
  }, 60_000);

  it('run interrupted with SIGINT exits 3 and leaves the batch for a worker; counts exact', async () => {
    const chats = 600;
    env = await makeTestEnv({ api: { latencyMs: 30 }, config: { workerConcurrency: CONCURRENCY, requestTimeoutMs: 2000 } });
    const { text, chatKeys } = simpleCsv(phones(chats), WABA);
    stalled = await watchStalled(env);
    const run = spawnCli(env, ['run', env.csv('chats.csv', text), '--quiet']);
    let batchId = '';
    await until(async () => {
      batchId = (await env?.ctx.batches.list(1))?.[0]?.id ?? '';
      return batchId !== '';
    }, 'the batch to be created');
    await waitForDone(env, batchId, 100);

    run.kill('SIGINT');
    expect(await exitWithin(run, 2000 + 5000)).toEqual({ code: 3, signal: null });
    expect(run.output()).toContain(`interrupted: batch ${batchId} keeps its place in the queue`);
    const left = await env.ctx.batches.require(batchId);
    expect(left.status).toBe('running');
    expect(left.done).toBeLessThan(chats);
    expect(await env.ctx.queue.getActiveCount()).toBe(0);

    await spawnWorker(env);
    await env.waitFor(batchId, ['finished'], 60_000);
    const { extra201s } = await expectExactAccounting(env, batchId, chatKeys);
    expect(extra201s).toBe(0);
    expect(stalled.times).toHaveLength(0);
    console.log(`graceful-shutdown (run SIGINT): exit 3 at done=${left.done}, worker finished the rest, extra 201s ${extra201s}`);
  }, 60_000);
});
