/**
 * Exactness checks for fault tests (crashes, Redis restarts, shutdowns): every chat ends in exactly one terminal
 * result, the batch counters equal the per-chat records, and the stand-in server's log agrees. Plus waiting on
 * a batch's progress and counting BullMQ's `stalled` events (jobs re-run after their worker died).
 */
import { expect } from '@jest/globals';
import { QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';

import type { BatchRecord } from '../../src/store/batch-store.js';
import { QUEUE_NAME } from '../../src/store/keys.js';
import type { ChatResult } from '../../src/store/result-store.js';
import { eventually } from './eventually.js';
import type { TestEnv } from './harness.js';
import { WATCH_ENDS } from '../../src/domain/lifecycle.js';

/** A CSV of `numbers` on one WABA, and the chat keys the batch will have. */
export function simpleCsv(numbers: readonly string[], waba: string): { text: string; chatKeys: string[] } {
  return {
    text: `phone,waba\n${numbers.map((n) => `${n},${waba}`).join('\n')}\n`,
    chatKeys: numbers.map((n) => `p:${n}@${waba}`),
  };
}

/** Waits until at least `done` chats of the batch are terminal (or the batch ended). */
export async function waitForDone(env: TestEnv, batchId: string, done: number, timeoutMs = 30_000): Promise<BatchRecord> {
  let last: BatchRecord | undefined;
  return eventually(
    async () => {
      last = await env.ctx.batches.require(batchId);
      return last.done >= done || WATCH_ENDS.has(last.status) ? last : undefined;
    },
    { timeoutMs, intervalMs: 20, message: () => `batch ${batchId}: only ${last?.done}/${done} chats done after ${timeoutMs} ms` },
  );
}

/** Waits until `check` returns true. */
export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  await eventually(check, { timeoutMs, intervalMs: 20, message: `timed out after ${timeoutMs} ms waiting for ${what}` });
}

export interface Accounting {
  /** 201s beyond one per chat: calls repeated because a worker died after the API answered. */
  readonly extra201s: number;
  readonly results: ReadonlyMap<string, ChatResult>;
}

/**
 * Asserts: the batch finished; the results hash holds exactly one record per expected chat (no more, no less);
 * the counters equal what the records say; every chat the server unassigned is recorded as succeeded and vice
 * versa. Returns how many extra 201s the server gave (the caller bounds them).
 */
export async function expectExactAccounting(env: TestEnv, batchId: string, chatKeys: readonly string[]): Promise<Accounting> {
  const batch = await env.ctx.batches.require(batchId);
  expect(batch.status).toBe('finished');
  const results = new Map<string, ChatResult>();
  for await (const [key, result] of env.ctx.results.scan(batchId)) {
    expect(results.has(key)).toBe(false);
    results.set(key, result);
  }
  expect(await env.ctx.redis.hlen(env.ctx.keys.batch(batchId).results)).toBe(chatKeys.length);
  expect([...results.keys()].sort()).toEqual([...chatKeys].sort());
  const tally = { succeeded: 0, failed: 0, cancelled: 0, skipped: 0 };
  for (const r of results.values()) tally[r.state] += 1;
  expect(batch.counts).toMatchObject({ valid: chatKeys.length, ...tally });
  expect(batch.done).toBe(chatKeys.length);

  const stats = env.api.stats();
  const succeeded = [...results]
    .filter(([, r]) => r.state === 'succeeded')
    .map(([k]) => k)
    .sort();
  expect(Object.keys(stats.unassigned).sort()).toEqual(succeeded);
  const total201 = Object.values(stats.unassigned).reduce((a, b) => a + b, 0);
  expect(stats.byStatus['201'] ?? 0).toBe(total201);
  return { extra201s: total201 - succeeded.length, results };
}

export interface StalledWatch {
  /** Times (Date.now()) at which a job of a dead worker was put back to run again. */
  readonly times: readonly number[];
  close(): Promise<void>;
}

/** Listens for BullMQ `stalled` events on the env's queue. Start it before the workers. */
export async function watchStalled(env: TestEnv): Promise<StalledWatch> {
  const connection = new Redis(env.config.redisUrl, { maxRetriesPerRequest: null });
  connection.on('error', () => undefined);
  const events = new QueueEvents(QUEUE_NAME, { connection, prefix: env.ctx.keys.bullPrefix, autorun: true });
  events.on('error', () => undefined);
  const times: number[] = [];
  events.on('stalled', () => void times.push(Date.now()));
  await events.waitUntilReady();
  return {
    times,
    close: async () => {
      await events.close();
      connection.disconnect();
    },
  };
}
