/**
 * Redis memory stays bounded. After a 2,000-chat batch no BullMQ job is left behind (finished
 * jobs are removed at once: removeOnComplete/removeOnFail), and what the batch keeps in Redis until it expires is
 * measured with MEMORY USAGE and held under a generous per-chat bound, so a regression (say, results stored as
 * JSON, or job hashes kept) fails.
 */
import { afterEach, describe, expect, it } from '@jest/globals';

import { allBatchKeys } from '../../src/store/keys.js';
import { makeTestEnv, phones, type TestEnv } from '../helpers/harness.js';
import { keysUnder } from '../helpers/redis-dump.js';

const WABA = '919000000000';
const CHATS = 2000;
/** Generous: the compact result records measure ~100 bytes per chat (see the report printed by this test). */
const MAX_BATCH_BYTES_PER_CHAT = 400;

let env: TestEnv | undefined;
afterEach(async () => {
  await env?.cleanup();
  env = undefined;
});

async function memoryUsage(env: TestEnv, keys: readonly string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const key of keys) {
    const bytes = (await env.ctx.redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')) as number | null;
    if (bytes !== null) out[key.includes(':batch:') && !/:batch:[^:]+:/.test(key) ? 'batch' : key.slice(key.lastIndexOf(':') + 1)] = bytes;
  }
  return out;
}

async function usedMemory(env: TestEnv): Promise<number> {
  const info = await env.ctx.redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1]);
}

describe('Redis memory after a batch', () => {
  it(`a ${CHATS.toLocaleString('en')}-chat batch leaves no jobs behind and keeps < ${MAX_BATCH_BYTES_PER_CHAT} bytes per chat`, async () => {
    const numbers = phones(CHATS, 40_000);
    const rejected = numbers.filter((_, i) => i % 50 === 0); // 40 failures keep their input row for failed.csv
    env = await makeTestEnv({ api: { faults: { rejectNumbers: rejected } }, config: { rateLimitMax: 0, workerConcurrency: 16 } });
    const prefix = env.config.queuePrefix;
    const before = await usedMemory(env);
    const batch = await env.ingestCsv(
      env.csv('big.csv', `phone,waba,notes\n${numbers.map((n, i) => `+${n},${WABA},customer ${i}`).join('\n')}\nnot a phone,${WABA},x\n`),
    );
    env.worker();
    env.worker();
    const done = await env.waitFor(batch.id, ['finished'], 45_000);
    expect(done.counts).toMatchObject({ valid: CHATS, succeeded: CHATS - rejected.length, failed: rejected.length, rejected: 1 });
    await env.ctx.redis.call('MEMORY', 'PURGE').catch(() => undefined); // jemalloc only; best effort
    const after = await usedMemory(env);

    // No pile-up: BullMQ's completed/failed sets are empty and no job hash of this batch remains.
    const counts = await env.ctx.queue.getJobCounts('completed', 'failed', 'waiting', 'active', 'delayed', 'prioritized');
    expect(counts).toEqual({ completed: 0, failed: 0, waiting: 0, active: 0, delayed: 0, prioritized: 0 });
    const all = await keysUnder(env.ctx.redis, prefix);
    const queueKeys = all.filter((k) => k.startsWith(`{${prefix}}:unassign:`));
    expect(queueKeys.filter((k) => k.includes(batch.id))).toEqual([]);
    // What is left of the queue is its fixed bookkeeping, not one key per job.
    expect(queueKeys.length).toBeLessThan(15);

    // Bytes per finished chat: everything the batch keeps until RESULTS_TTL_DAYS runs out.
    const batchBytes = await memoryUsage(env, allBatchKeys(env.ctx.keys.batch(batch.id)));
    const perChat = Object.values(batchBytes).reduce((a, b) => a + b, 0) / CHATS;
    const queueBytes = await memoryUsage(env, queueKeys);
    const eventsLength = await env.ctx.redis.xlen(`{${prefix}}:unassign:events`);
    process.stdout.write(
      `memory after ${CHATS} chats: batch keys ${JSON.stringify(batchBytes)} = ${perChat.toFixed(1)} B/chat; ` +
        `queue keys ${JSON.stringify(queueBytes)} (events stream ${eventsLength} entries, capped by BullMQ); ` +
        `INFO used_memory delta ${after - before} B (shared Redis: indicative only)\n`,
    );
    expect(perChat).toBeGreaterThan(20); // measured something
    expect(perChat).toBeLessThan(MAX_BATCH_BYTES_PER_CHAT);
    // Succeeded chats drop their input row; only the failures keep theirs (for failed.csv).
    expect(await env.ctx.redis.hlen(env.ctx.keys.batch(batch.id).chats)).toBe(rejected.length);
    expect(await env.ctx.redis.hlen(env.ctx.keys.batch(batch.id).results)).toBe(CHATS);
  });
});
