/**
 * Outcomes over time for one batch, for the throughput chart: every result carries its finish time, so one
 * HSCAN of the batch's results gives chats finished per time bucket, by outcome. Counted per second first
 * (a Map, small even for long batches: a 100k-chat batch at 1/s is 100k seconds), then merged into at most
 * MAX_POINTS buckets of a round width. A finished batch never changes, so its timeline is computed once.
 */
import type { BatchRecord } from '../store/batch-store.js';
import type { Context } from '../runtime/context.js';
import type { ResultState } from '../domain/chat.js';

export interface TimelinePoint {
  /** Bucket start, epoch ms. */
  readonly t: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly cancelled: number;
}

export interface Timeline {
  readonly batchId: string;
  /** Width of each bucket, ms. */
  readonly bucketMs: number;
  readonly points: readonly TimelinePoint[];
}

export const MAX_POINTS = 120;
const SECOND = 1000;
/** Bucket widths the chart may use: round numbers people read easily on an axis. */
const WIDTHS_S = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400];
/** How long a running batch's timeline is reused before it is scanned again. */
const RUNNING_CACHE_MS = 3 * SECOND;
const CACHED_BATCHES = 50;

type Counts = [succeeded: number, failed: number, cancelled: number];
/** A skipped chat (left alone on purpose: no call changed it) is charted with the cancelled ones. */
const INDEX: Record<ResultState, 0 | 1 | 2> = { succeeded: 0, failed: 1, cancelled: 2, skipped: 2 };

/** Merges per-second counts into at most MAX_POINTS buckets, with empty buckets filled in (a gap is a stall). */
export function bucketise(batchId: string, perSecond: ReadonlyMap<number, Counts>, startMs?: number): Timeline {
  if (perSecond.size === 0) return { batchId, bucketMs: SECOND, points: [] };
  // A loop, not Math.min(...keys): a long batch has more seconds than a call can take arguments.
  let first = startMs === undefined ? Infinity : Math.floor(startMs / SECOND);
  let last = -Infinity;
  for (const second of perSecond.keys()) {
    if (second < first) first = second;
    if (second > last) last = second;
  }
  const span = last - first + 1;
  const width = WIDTHS_S.find((w) => Math.ceil(span / w) <= MAX_POINTS) ?? Math.ceil(span / MAX_POINTS);
  const origin = Math.floor(first / width) * width;
  const buckets: Counts[] = Array.from({ length: Math.floor((last - origin) / width) + 1 }, () => [0, 0, 0]);
  for (const [second, counts] of perSecond) {
    const bucket = buckets[Math.floor((second - origin) / width)] as Counts;
    for (let i = 0; i < 3; i += 1) bucket[i] = (bucket[i] ?? 0) + (counts[i] ?? 0);
  }
  return {
    batchId,
    bucketMs: width * SECOND,
    points: buckets.map(([succeeded, failed, cancelled], i) => ({ t: (origin + i * width) * SECOND, succeeded, failed, cancelled })),
  };
}

async function computeTimeline(ctx: Pick<Context, 'results'>, batchId: string, startedAt?: number): Promise<Timeline> {
  const perSecond = new Map<number, Counts>();
  for await (const [, result] of ctx.results.scan(batchId)) {
    const second = Math.floor(result.finishedAt / SECOND);
    let counts = perSecond.get(second);
    if (!counts) perSecond.set(second, (counts = [0, 0, 0]));
    counts[INDEX[result.state]] += 1;
  }
  return bucketise(batchId, perSecond, startedAt);
}

export interface TimelineCache {
  get(batch: Pick<BatchRecord, 'id' | 'status' | 'done' | 'startedAt'>): Promise<Timeline>;
}

/**
 * Timelines by batch. Reused while the batch's status and done count are unchanged (no new result), and for
 * at most a few seconds while results keep coming; a status change (running → finished) always recomputes,
 * so the final chart has every result.
 */
export function makeTimelineCache(ctx: Pick<Context, 'results'>, now: () => number = Date.now): TimelineCache {
  const cache = new Map<string, { at: number; status: string; done: number; value: Promise<Timeline> }>();
  return {
    get: (batch) => {
      const hit = cache.get(batch.id);
      if (hit && hit.status === batch.status && (hit.done === batch.done || now() - hit.at < RUNNING_CACHE_MS)) return hit.value;
      const value = computeTimeline(ctx, batch.id, batch.startedAt);
      cache.delete(batch.id);
      cache.set(batch.id, { at: now(), status: batch.status, done: batch.done, value });
      value.catch(() => cache.delete(batch.id));
      // Oldest entries out first (Map keeps insertion order).
      while (cache.size > CACHED_BATCHES) cache.delete(cache.keys().next().value as string);
      return value;
    },
  };
}
