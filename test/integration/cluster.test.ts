/**
 * Redis Cluster. A real 3-master cluster on loopback (redis-server --cluster-enabled, joined with
 * redis-cli --cluster create), REDIS_CLUSTER=true, two `bulk-unassign worker` processes seeded from different
 * nodes, one batch of 300 chats with permanent and transient faults under a global rate limit. The report must
 * equal what the stand-in server saw, exactly, and every key (ours and BullMQ's) must sit in the prefix's one slot.
 * Skipped, with a message, only when redis-cli is not installed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from '@jest/globals';

import { findRedisServer } from '../../src/devtools/redis-server.js';
import { expectExactAccounting, simpleCsv, until } from '../helpers/accounting.js';
import { findRedisCli, slotOwner, startRedisCluster, type TestCluster } from '../helpers/cluster.js';
import { makeTestEnv, phones, type TestEnv } from '../helpers/harness.js';
import { killAllChildren, spawnWorker } from '../helpers/processes.js';

const WABA = '919000000000';
const canRun = findRedisCli() !== undefined && findRedisServer() !== undefined;
if (!canRun) process.stdout.write('cluster.test.ts: SKIPPED — redis-cli / redis-server not installed (apt-get install redis-tools redis-server)\n');

let cluster: TestCluster | undefined;
let env: TestEnv | undefined;
afterEach(async () => {
  await killAllChildren();
  await env?.cleanup();
  env = undefined;
  await cluster?.close();
  cluster = undefined;
});

(canRun ? describe : describe.skip)('Redis Cluster (REDIS_CLUSTER=true)', () => {
  it('two worker processes on a 3-master cluster: 300 chats, exact counts against the server, one slot for every key', async () => {
    cluster = await startRedisCluster(3);
    const seedA = cluster.urls[0] as string;
    const numbers = phones(300, 7000);
    const reject = numbers.filter((_, i) => i % 50 === 5); // 6 × 422: permanent
    const flaky = { [numbers[10] as string]: 1, [numbers[20] as string]: 1 }; // 503 once, then fine
    env = await makeTestEnv({
      api: { faults: { rejectNumbers: reject, flaky } },
      config: { redisUrl: seedA, redisCluster: true, rateLimitMax: 150, workerConcurrency: 4, maxAttempts: 3, requestTimeoutMs: 2000 },
    });
    const { text, chatKeys } = simpleCsv(numbers, WABA);
    const batch = await env.ingestCsv(env.csv('chats.csv', text));
    expect(batch.counts).toMatchObject({ rows: 300, valid: 300, rejected: 0, duplicates: 0 });

    // Configured as an operator would: environment only. Each process is seeded from a node that does NOT serve
    // the prefix's slot, so every command it sends must follow the cluster's redirects to get anywhere.
    const owner = await slotOwner(cluster.urls, env.ctx.keys.batch(batch.id).batch);
    const [seedB, seedC] = cluster.urls.filter((u) => u !== owner) as [string, string];
    const first = await spawnWorker(env, { REDIS_CLUSTER: 'true', REDIS_URL: seedB });
    const second = await spawnWorker(env, { REDIS_CLUSTER: 'true', REDIS_URL: seedC });
    await until(async () => (await env!.ctx.queue.getWorkersCount()) >= 2, 'both worker processes registered on the queue');
    const done = await env.waitFor(batch.id, ['finished'], 45_000);

    const stats = env.api.stats();
    expect(done.counts).toMatchObject({ valid: 300, succeeded: 294, failed: 6, cancelled: 0 });
    expect(stats.byStatus).toEqual({ 201: 294, 422: 6, 503: 2 });
    expect(stats.rateLimited).toBe(0);
    expect(Object.keys(stats.unassigned)).toHaveLength(294);
    expect(Object.values(stats.unassigned).every((n) => n === 1)).toBe(true);
    const accounting = await expectExactAccounting(env, batch.id, chatKeys);
    expect(accounting.extra201s).toBe(0);
    const summary = JSON.parse(readFileSync(join(env.config.reportsDir, batch.id, 'summary.json'), 'utf8')) as {
      counts: { succeeded: number; failed: number };
    };
    expect(summary.counts).toMatchObject({ succeeded: 294, failed: 6 });

    // The hash tag at work: the batch record, the results and BullMQ's queue meta hash to one slot.
    const k = env.ctx.keys.batch(batch.id);
    const slots = await Promise.all(
      [k.batch, k.results, `${env.ctx.keys.bullPrefix}:unassign:meta`].map((key) => env!.ctx.redis.call('CLUSTER', 'KEYSLOT', key)),
    );
    expect(new Set(slots).size).toBe(1);

    first.kill('SIGTERM');
    second.kill('SIGTERM');
    expect((await first.exited).code).toBe(0);
    expect((await second.exited).code).toBe(0);
  });
});
