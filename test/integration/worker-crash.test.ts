/**
 * Worker processes killed with SIGKILL in the middle of a batch. Three `bulk-unassign worker`
 * processes share a batch; three times one of them is killed while jobs are in flight and a fresh one started.
 * The batch must still finish with exactly one result per chat, counters equal to those results, and the
 * stand-in server may see a chat unassigned twice only for jobs that were in flight in a killed process
 * (re-run after their lock expired): extra 201s ≤ stalled re-runs ≤ kills × jobs a worker holds (call-slots.ts).
 * LOCK_DURATION_MS is short here so recovery takes seconds; the default is ≥ 30 s. And a chat whose job BullMQ
 * fails outright after too many stalls (maxStalledCount) still gets a terminal result, so its batch can finish.
 */
import { afterEach, describe, expect, it } from '@jest/globals';

import { jobsHeldFor } from '../../src/execution/call-slots.js';
import { jobIdFor } from '../../src/store/queue.js';
import { expectExactAccounting, simpleCsv, type StalledWatch, waitForDone, watchStalled } from '../helpers/accounting.js';
import { makeTestEnv, phones, type TestEnv } from '../helpers/harness.js';
import { killAllChildren, type SpawnedCli, spawnWorker } from '../helpers/processes.js';

const WABA = '919000000000';
const CHATS = 1500;
const CONCURRENCY = 4;
const REQUEST_TIMEOUT_MS = 1000;
// Short so a killed worker's jobs run again within seconds; long enough (renewed every 1.5 s) that a live worker on
// a busy 2-core machine never loses a lock, which would count as a stall no kill caused.
const LOCK_DURATION_MS = 3000;

let env: TestEnv | undefined;
let stalled: StalledWatch | undefined;
afterEach(async () => {
  await killAllChildren();
  await stalled?.close();
  await env?.cleanup();
  [env, stalled] = [undefined, undefined];
});

describe('worker crash (kill -9) mid-batch', () => {
  it('finishes the batch with exactly one result per chat; repeated calls bounded by the jobs in flight', async () => {
    env = await makeTestEnv({
      api: { latencyMs: 30 }, // so every worker has calls in flight when it is killed
      config: { workerConcurrency: CONCURRENCY, requestTimeoutMs: REQUEST_TIMEOUT_MS, lockDurationMs: LOCK_DURATION_MS, maxAttempts: 3 },
    });
    const { text, chatKeys } = simpleCsv(phones(CHATS), WABA);
    stalled = await watchStalled(env);
    const batch = await env.ingestCsv(env.csv('chats.csv', text));
    expect(batch.counts.valid).toBe(CHATS);

    const workers: SpawnedCli[] = await Promise.all([spawnWorker(env), spawnWorker(env), spawnWorker(env)]);
    const kills: { at: number; done: number }[] = [];
    for (const fraction of [0.2, 0.4, 0.6]) {
      const before = await waitForDone(env, batch.id, Math.round(CHATS * fraction));
      expect(before.status).toBe('running'); // the kill must land mid-batch, or this test proves nothing
      const victim = workers.shift() as SpawnedCli;
      victim.kill('SIGKILL');
      expect(await victim.exited).toMatchObject({ signal: 'SIGKILL' });
      kills.push({ at: Date.now(), done: before.done });
      workers.push(await spawnWorker(env));
    }

    const done = await env.waitFor(batch.id, ['finished'], 60_000);
    const finishedAt = Date.now();
    const { extra201s } = await expectExactAccounting(env, batch.id, chatKeys);
    expect(done.counts).toMatchObject({ succeeded: CHATS, failed: 0, cancelled: 0 });
    // Only a job that was in flight in a killed process runs twice, and only if the server had answered it.
    expect(stalled.times.length).toBeLessThanOrEqual(kills.length * jobsHeldFor(CONCURRENCY));
    expect(extra201s).toBeLessThanOrEqual(stalled.times.length);
    // The re-runs are evidence the kills hit jobs in flight (without them the bound above is vacuous).
    expect(stalled.times.length).toBeGreaterThan(0);

    const [firstKill, lastKill] = [kills[0]?.at ?? 0, kills.at(-1)?.at ?? 0];
    const firstRerunMs = (stalled.times.find((t) => t >= firstKill) ?? Number.NaN) - firstKill;
    const lastRerunMs = (stalled.times.at(-1) ?? Number.NaN) - lastKill;
    console.log(
      `worker-crash: ${kills.length} kills at done=${kills.map((k) => k.done).join('/')}, ` +
        `stalled re-runs ${stalled.times.length}, extra 201s ${extra201s}, first re-run ${firstRerunMs} ms after the first kill, ` +
        `last re-run ${lastRerunMs} ms after the last kill, ` +
        `finished ${finishedAt - (kills.at(-1)?.at ?? finishedAt)} ms after the last kill, server requests ${env.api.stats().requests}`,
    );
  }, 90_000);

  it('a chat whose job BullMQ gives up on after repeated crashes is recorded as failed, so the batch still finishes', async () => {
    env = await makeTestEnv();
    const { text, chatKeys } = simpleCsv(phones(3), WABA);
    const batch = await env.ingestCsv(env.csv('chats.csv', text));
    const doomed = chatKeys[1] as string;
    // What BullMQ's stall check writes on a job that stalled more than maxStalledCount times; the next worker
    // to take it fails it at once (UnrecoverableError), on its first attempt, without running it.
    await env.ctx.redis.hset(env.ctx.queue.toKey(jobIdFor(batch.id, doomed)), 'defa', 'job stalled more than allowable limit');
    env.worker();
    const done = await env.waitFor(batch.id, ['finished'], 20_000);
    expect(done.counts).toMatchObject({ succeeded: 2, failed: 1 });
    const { results } = await expectExactAccounting(env, batch.id, chatKeys);
    expect(results.get(doomed)).toMatchObject({ state: 'failed', failureClass: 'transient', reason: 'internal error: job stalled more than allowable limit' });
    expect(env.api.stats().requests).toBe(2);
  });
});
