/**
 * Per-chat results in Redis: claim before calling, record exactly once after. One compact string per chat
 * (`S|201|1|1764030000000|84|` …) keeps Redis at ~100 bytes per finished chat; the batch counters move in the
 * same Lua step, so a retried, stalled or re-delivered job can never count twice.
 */
import { type ChatResult, cleanReason, decodeResult, encodeResult, hashField } from './codecs.js';
import type { Keys } from './keys.js';
import {
  claimChat,
  claimChatCounted,
  type ClaimOutcome,
  type RateLimitedCall,
  type RateLimitRun,
  rateLimited,
  recordResult,
  type ScriptedRedis,
} from './scripts.js';
import { Status } from '../domain/lifecycle.js';

// The record's shape and codec live with the other stored values (codecs.ts), the claim outcomes with their
// script (scripts.ts); importers keep this path.
export { type ChatResult, cleanReason, decodeResult, encodeResult } from './codecs.js';
export type { ClaimOutcome, RateLimitRun } from './scripts.js';

/** What the caller says about a 429 (the rest of rateLimited-2's arguments the store fills in). */
export type RateLimitedAnswer = Omit<RateLimitedCall, 'chatKey' | 'runningStatus'>;

/**
 * Latency histogram bucket upper bounds (ms): 1 ms steps to 100, 10 ms to 1 s, 100 ms to 10 s, then 1 s.
 * Percentiles from it are exact to the bucket width, and memory stays a few hundred fields at any volume.
 */
export function latencyBucket(ms: number): number {
  const v = Math.max(0, Math.ceil(ms));
  if (v <= 100) return v;
  if (v <= 1000) return Math.ceil(v / 10) * 10;
  if (v <= 10_000) return Math.ceil(v / 100) * 100;
  return Math.ceil(v / 1000) * 1000;
}

/** p-th percentile (0..100) from a bucket → count map. */
export function percentileOf(histogram: ReadonlyMap<number, number>, p: number): number | null {
  const entries = [...histogram.entries()].sort((a, b) => a[0] - b[0]);
  const total = entries.reduce((sum, [, n]) => sum + n, 0);
  if (total === 0) return null;
  const rank = Math.ceil((p / 100) * total);
  let seen = 0;
  for (const [bucket, n] of entries) {
    seen += n;
    if (seen >= rank) return bucket;
  }
  return entries[entries.length - 1]?.[0] ?? null;
}

export interface ResultStore {
  claim(batchId: string, chatKey: string): Promise<ClaimOutcome>;
  /**
   * `claim` and, on go, `countCall` in one atomic step (one Redis round trip instead of two): the chat's calls so
   * far (a number) means go. For callers that make the call right after the claim (no call slot to wait for).
   */
  claimCall(batchId: string, chatKey: string): Promise<Exclude<ClaimOutcome, 'go'> | number>;
  /**
   * Records a terminal result. Returns 'duplicate' if the chat already had one, 'last' if it completed the batch.
   * The chat's call count (`countCall`), when it has one, is the result's `attempts`, whatever `result` says.
   */
  record(batchId: string, chatKey: string, result: ChatResult): Promise<'recorded' | 'duplicate' | 'last'>;
  /**
   * Counts an API call for a chat, right before it is made (`by` -1 takes one back: the call was not made after
   * all). Returns the chat's calls so far: its attempts, if the call now made is its last.
   */
  countCall(batchId: string, chatKey: string, by?: 1 | -1): Promise<number>;
  /**
   * Counts a 429 answer (not terminal: the chat is retried after the pause, and the call is taken back from its
   * count), records when the pause ends (`apiPauseUntil`) and keeps the batch's run of 429s (`rateLimitedSince`).
   */
  count429(batchId: string, chatKey: string, answer: RateLimitedAnswer): Promise<RateLimitRun>;
  /** Ends the batch's run of 429s (it was stopped for it: a resume starts a new run). */
  endRateLimitRun(batchId: string): Promise<void>;
  /** Parks a chat taken off the queue (batch paused or stopped) so `resume` re-enqueues it. */
  park(batchId: string, chatKey: string): Promise<void>;
  /** Every result of a batch, streamed with HSCAN (a million results never sit in memory at once). */
  scan(batchId: string): AsyncIterable<[chatKey: string, result: ChatResult]>;
  get(batchId: string, chatKey: string): Promise<ChatResult | undefined>;
  /** The agent kept for a chat (keys.ts `BatchKeys.agents`): its previous agent, or in a restore the one to give it back to. */
  agentOf(batchId: string, chatKey: string): Promise<string | undefined>;
  /** Keeps a chat's agent, read right before its unassign call (--capture-assignees). */
  keepAgent(batchId: string, chatKey: string, agent: string): Promise<void>;
  /**
   * The chats a restore would give back: succeeded, with a kept agent. Streamed in pages of the agents hash
   * (HSCAN), each page's results read in one round trip.
   */
  restorable(batchId: string): AsyncIterable<readonly (readonly [chatKey: string, agent: string])[]>;
}

/** Counts a batch's restorable chats (see `ResultStore.restorable`). */
export async function countRestorable(results: Pick<ResultStore, 'restorable'>, batchId: string): Promise<number> {
  let n = 0;
  for await (const page of results.restorable(batchId)) n += page.length;
  return n;
}

export function makeResultStore(redis: ScriptedRedis, keys: Keys): ResultStore {
  return {
    claim: async (batchId, chatKey) => claimChat(redis, keys.batch(batchId), chatKey),
    claimCall: async (batchId, chatKey) => claimChatCounted(redis, keys.batch(batchId), chatKey),
    record: async (batchId, chatKey, result) =>
      recordResult(redis, keys.batch(batchId), {
        chatKey,
        record: encodeResult(result),
        counter: result.state,
        attempts: result.attempts,
        latencyBucket: result.latencyMs > 0 ? latencyBucket(result.latencyMs) : undefined,
        // Only failures are tallied by reason: a cancelled chat did not fail, and its reason stays in its own record.
        failureReason: result.state === 'failed' ? cleanReason(result.reason) : undefined,
        now: result.finishedAt,
      }),
    countCall: async (batchId, chatKey, by = 1) => redis.hincrby(keys.batch(batchId).calls, chatKey, by),
    count429: async (batchId, chatKey, answer) => rateLimited(redis, keys.batch(batchId), { ...answer, chatKey, runningStatus: Status.running }),
    endRateLimitRun: async (batchId) => {
      await redis.hdel(keys.batch(batchId).batch, 'rateLimitedSince');
    },
    park: async (batchId, chatKey) => {
      await redis.hset(keys.batch(batchId).parked, chatKey, 1);
    },
    get: async (batchId, chatKey) => {
      const key = keys.batch(batchId).results;
      const text = await redis.hget(key, chatKey);
      return text === null ? undefined : decodeResult(text, hashField(key, chatKey));
    },
    scan: (batchId) => scanHash(redis, keys.batch(batchId).results, decodeResult),
    agentOf: async (batchId, chatKey) => (await redis.hget(keys.batch(batchId).agents, chatKey)) ?? undefined,
    keepAgent: async (batchId, chatKey, agent) => {
      await redis.hset(keys.batch(batchId).agents, chatKey, agent);
    },
    restorable: (batchId) => restorablePages(redis, keys.batch(batchId)),
  };
}

/** Succeeded chats with a kept agent, a page of the agents hash at a time (a result record of a success starts `S|`). */
async function* restorablePages(redis: ScriptedRedis, k: { agents: string; results: string }): AsyncIterable<(readonly [string, string])[]> {
  let cursor = '0';
  do {
    const [next, flat] = await redis.hscan(k.agents, cursor, 'COUNT', 1000);
    cursor = next;
    const pairs: [string, string][] = [];
    for (let i = 0; i < flat.length; i += 2) pairs.push([flat[i] as string, flat[i + 1] as string]);
    if (pairs.length === 0) continue;
    const records = await redis.hmget(k.results, ...pairs.map(([chatKey]) => chatKey));
    yield pairs.filter((_, i) => records[i]?.startsWith('S|') === true);
  } while (cursor !== '0');
}

/** HSCAN a hash as an async iterable of [field, decoded value]; `decode` gets where the value is, for its errors. */
export async function* scanHash<T>(redis: ScriptedRedis, key: string, decode: (value: string, where: string) => T): AsyncIterable<[string, T]> {
  let cursor = '0';
  do {
    const [next, flat] = await redis.hscan(key, cursor, 'COUNT', 1000);
    cursor = next;
    for (let i = 0; i < flat.length; i += 2) {
      const field = flat[i] as string;
      yield [field, decode(flat[i + 1] as string, hashField(key, field))];
    }
  } while (cursor !== '0');
}
