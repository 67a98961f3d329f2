/**
 * Per-chat results in Redis: claim before calling, record exactly once after. One compact string per chat
 * (`S|201|1|1764030000000|84|` …) keeps Redis at ~100 bytes per finished chat; the batch counters move in the
 * same Lua step, so a retried, stalled or re-delivered job can never count twice.
 */
import type { Keys } from './keys.js';
import type { ScriptedRedis } from './scripts.js';
import type { FailureClass, ResultState } from '../domain/chat.js';

/** One chat's terminal result. */
export interface ChatResult {
  readonly state: ResultState;
  /** HTTP status of the last attempt, 0 when there was no answer (timeout, connection error) or no call. */
  readonly httpStatus: number;
  readonly attempts: number;
  readonly finishedAt: number;
  /** Latency of the last attempt in ms, 0 when no call was made. */
  readonly latencyMs: number;
  readonly failureClass?: FailureClass;
  /** Human reason for a failure or cancellation ('' on success). */
  readonly reason: string;
}

export type ClaimOutcome = 'go' | 'done' | 'parked' | 'cancel' | 'gone';

const STATE_CODE: Record<ResultState, string> = { succeeded: 'S', failed: 'F', cancelled: 'C' };
const CODE_STATE: Record<string, ResultState> = { S: 'succeeded', F: 'failed', C: 'cancelled' };
const MAX_REASON_CHARS = 300;

/** Reasons are stored once per chat and grouped by text: keep them bounded and on one line. */
export function cleanReason(reason: string): string {
  return reason.replace(/[\r\n|]+/g, ' ').slice(0, MAX_REASON_CHARS);
}

export function encodeResult(r: ChatResult): string {
  return [STATE_CODE[r.state], r.httpStatus, r.attempts, r.finishedAt, r.latencyMs, r.failureClass ?? '', cleanReason(r.reason)].join('|');
}

export function decodeResult(text: string): ChatResult {
  const [code, http, attempts, at, latency, cls, ...rest] = text.split('|');
  const failureClass = cls ? (cls as FailureClass) : undefined;
  return {
    state: CODE_STATE[code ?? ''] ?? 'failed',
    httpStatus: Number(http),
    attempts: Number(attempts),
    finishedAt: Number(at),
    latencyMs: Number(latency),
    ...(failureClass ? { failureClass } : {}),
    reason: rest.join('|'),
  };
}

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
  /** Records a terminal result. Returns 'duplicate' if the chat already had one, 'last' if it completed the batch. */
  record(batchId: string, chatKey: string, result: ChatResult): Promise<'recorded' | 'duplicate' | 'last'>;
  /** Counts a 429 answer (not terminal: the chat is retried after the pause). */
  count429(batchId: string): Promise<void>;
  /** Parks a chat taken off the queue (batch paused or stopped) so `resume` re-enqueues it. */
  park(batchId: string, chatKey: string): Promise<void>;
  /** Every result of a batch, streamed with HSCAN (a million results never sit in memory at once). */
  scan(batchId: string): AsyncIterable<[chatKey: string, result: ChatResult]>;
  get(batchId: string, chatKey: string): Promise<ChatResult | undefined>;
}

export function makeResultStore(redis: ScriptedRedis, keys: Keys): ResultStore {
  return {
    claim: async (batchId, chatKey) => {
      const k = keys.batch(batchId);
      return (await redis.claimChat(k.batch, k.results, k.parked, chatKey)) as ClaimOutcome;
    },
    record: async (batchId, chatKey, result) => {
      const k = keys.batch(batchId);
      // Only failures are tallied by reason: a cancelled chat did not fail, and its reason stays in its own record.
      const reason = result.state === 'failed' ? cleanReason(result.reason) : '';
      const bucket = result.latencyMs > 0 ? String(latencyBucket(result.latencyMs)) : '';
      const outcome = await redis.recordResult(
        k.batch, k.results, k.chats, k.latency, k.parked,
        chatKey, encodeResult(result), result.state, String(result.attempts), bucket, reason, String(result.finishedAt),
      );
      return outcome === -1 ? 'duplicate' : outcome === 1 ? 'last' : 'recorded';
    },
    count429: async (batchId) => {
      await redis.hincrby(keys.batch(batchId).batch, 'rateLimited', 1);
    },
    park: async (batchId, chatKey) => {
      await redis.hset(keys.batch(batchId).parked, chatKey, 1);
    },
    get: async (batchId, chatKey) => {
      const text = await redis.hget(keys.batch(batchId).results, chatKey);
      return text === null ? undefined : decodeResult(text);
    },
    scan: (batchId) => scanHash(redis, keys.batch(batchId).results, decodeResult),
  };
}

/** HSCAN a hash as an async iterable of [field, decoded value]. */
export async function* scanHash<T>(redis: ScriptedRedis, key: string, decode: (value: string) => T): AsyncIterable<[string, T]> {
  let cursor = '0';
  do {
    const [next, flat] = await redis.hscan(key, cursor, 'COUNT', 1000);
    cursor = next;
    for (let i = 0; i < flat.length; i += 2) yield [flat[i] as string, decode(flat[i + 1] as string)];
  } while (cursor !== '0');
}
