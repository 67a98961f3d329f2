/**
 * Redis killed (SIGKILL) and restarted mid-batch, twice, with AOF on. A private
 * redis-server (src/devtools/redis-server.ts) is used so the shared one is never touched. `bulk-unassign run` (CLI with
 * an in-process worker) and one `bulk-unassign worker` process must reconnect by themselves (ioredis
 * retryStrategy, maxRetriesPerRequest null) and the batch must finish with exact counts: one result per chat,
 * counters equal to the records, and every chat unassigned exactly once by the server.
 *
 * Why `--appendfsync always` here: it makes "Redis acknowledged it" mean "it is in the AOF", so a kill loses
 * nothing the workers were told was written. With the production setting (`everysec`) Redis can acknowledge a
 * write it has not yet handed to the file (it postpones the write while a slow fsync runs, up to ~2 s); if a
 * kill hits then, a chat's result and its job's completion are lost together, the job is re-run after its lock
 * expires and that chat is unassigned a second time. The bound would then be "chats finished in the last ~2 s
 * before the kill", not zero, so this test could not assert exactness.
 */
import { afterEach, describe, expect, it } from '@jest/globals';

import { redisAnswers } from '../../src/store/redis.js';
import { type PrivateRedis, startPrivateRedis } from '../../src/devtools/redis-server.js';
import { expectExactAccounting, simpleCsv, type StalledWatch, until, waitForDone, watchStalled } from '../helpers/accounting.js';
import { makeTestEnv, phones, type TestEnv } from '../helpers/harness.js';
import { killAllChildren, spawnCli, spawnWorker } from '../helpers/processes.js';

const WABA = '919000000000';
const CHATS = 1000;
const OUTAGE_MS = 1500;
/**
 * Comfortably longer than outage + reconnect (renewed every 3 s, so ≥ 3 s are left at the kill): jobs in flight
 * keep their locks. Yet short, because a kill can lose the reply to BullMQ's "move the next job to active":
 * Redis then has that job active under a lock no worker holds, and it runs only once the lock expires and the
 * stall check moves it (lockDuration + up to two stall intervals: ~70 s with the 15 s default timeout). Such a
 * job never reached the API, so it costs time, not a second call.
 */
const LOCK_DURATION_MS = 6000;

let env: TestEnv | undefined;
let redis: PrivateRedis | undefined;
let stalled: StalledWatch | undefined;
afterEach(async () => {
  await killAllChildren();
  // Cleanup needs it up, whatever state a failure left it in.
  if (redis && !(await redisAnswers(redis.url))) await redis.restart();
  await stalled?.close();
  await env?.cleanup();
  await redis?.close();
  [env, redis, stalled] = [undefined, undefined, undefined];
});

describe('Redis restart (SIGKILL + AOF replay) mid-batch', () => {
  it('workers and the CLI reconnect; every chat unassigned exactly once, counts exact', async () => {
    redis = await startPrivateRedis({ args: ['--appendfsync', 'always'] });
    env = await makeTestEnv({
      api: { latencyMs: 20 },
      config: { redisUrl: redis.url, workerConcurrency: 4, requestTimeoutMs: 1000, lockDurationMs: LOCK_DURATION_MS },
    });
    stalled = await watchStalled(env);
    const { text, chatKeys } = simpleCsv(phones(CHATS), WABA);
    const run = spawnCli(env, ['run', env.csv('chats.csv', text), '--quiet']);
    const worker = await spawnWorker(env);
    let batchId = '';
    await until(async () => {
      batchId = (await env?.ctx.batches.list(1))?.[0]?.id ?? '';
      return batchId !== '';
    }, 'the batch to be created');

    const outages: { done: number; backAt: number; resumedAt: number }[] = [];
    for (const fraction of [0.25, 0.6]) {
      const before = await waitForDone(env, batchId, Math.round(CHATS * fraction));
      expect(before.status).toBe('running');
      await redis.stop(true);
      await new Promise((r) => setTimeout(r, OUTAGE_MS));
      await redis.restart();
      const backAt = Date.now();
      const atRestart = await env.ctx.batches.require(batchId); // includes what finished between the poll and the kill
      const after = await waitForDone(env, batchId, atRestart.done + 50);
      outages.push({ done: before.done, backAt, resumedAt: Date.now() });
      expect(after.done).toBeGreaterThan(before.done);
    }

    expect(await run.exited).toMatchObject({ code: 0 });
    const finishedAt = Date.now();
    expect(run.output()).toContain('finished');
    const { extra201s } = await expectExactAccounting(env, batchId, chatKeys);
    expect(extra201s).toBe(0);
    expect(worker.running()).toBe(true); // it rode out both outages
    console.log(
      `redis-restart: ${outages.length} outages of ${OUTAGE_MS} ms at done=${outages.map((o) => o.done).join('/')}, ` +
        `50 more chats done ${outages.map((o) => o.resumedAt - o.backAt).join('/')} ms after Redis was back, ` +
        `finished ${finishedAt - (outages.at(-1)?.backAt ?? finishedAt)} ms after the last restart, jobs re-run by the stall check ${stalled.times.length}, extra 201s ${extra201s}, ` +
        `server requests ${env.api.stats().requests}`,
    );
  }, 90_000);
});
