/**
 * Watching a batch: its record in Redis is the single source of truth (workers on any host move its counters),
 * so a watcher reads it every `intervalMs` and stops once the lifecycle says there is nothing more to wait
 * for. The CLI's progress line and the console's live stream both watch this way.
 */
import { setTimeout as delay } from 'node:timers/promises';

import { toError } from '../domain/errors.js';
import { WATCH_ENDS } from '../domain/lifecycle.js';
import type { BatchRecord, BatchStore } from '../store/batch-store.js';
import type { ScriptedRedis } from '../store/scripts.js';
import { describeOutage, isRedisOutage } from '../execution/outage.js';

export interface WatchOptions {
  readonly intervalMs: number;
  /** Ends the watch at the next read (the sleep between reads is cut short). */
  readonly signal?: AbortSignal;
  /** A read failed (Redis unreachable, say): the watch goes on at the next interval. @default ignore */
  readonly onReadError?: (error: Error) => void;
}

/**
 * Yields the batch record after each read that succeeded, and `undefined` once if the record is gone.
 * Ends after yielding a record in a status that ends a watch, after `undefined`, or when aborted.
 */
export async function* watchBatch(batches: Pick<BatchStore, 'get'>, batchId: string, options: WatchOptions): AsyncGenerator<BatchRecord | undefined> {
  const { signal } = options;
  while (!signal?.aborted) {
    let batch: BatchRecord | undefined;
    let read = false;
    try {
      batch = await batches.get(batchId);
      read = true;
    } catch (error) {
      options.onReadError?.(toError(error));
    }
    if (read) {
      yield batch;
      if (!batch || WATCH_ENDS.has(batch.status)) return;
    }
    try {
      await delay(options.intervalMs, undefined, signal ? { signal } : {});
    } catch {
      return; // aborted while sleeping
    }
  }
}

/**
 * Whether Redis accepts a write now: undefined when it does, else what is wrong, in words for an operator
 * ("Redis refuses writes: OOM command not allowed ..."). Reads keep working while Redis refuses writes, so a
 * watcher that only reads would show a batch standing still without saying why.
 */
export async function probeRedisWrites(redis: Pick<ScriptedRedis, 'set'>, key: string, timeoutMs = 3000): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`Redis does not answer within ${timeoutMs} ms`), timeoutMs);
  });
  const write = redis.set(key, String(process.pid), 'PX', 60_000).then(
    () => undefined,
    (error: unknown) => (isRedisOutage(error) ? describeOutage(error) : `Redis refused a write: ${toError(error).message}`),
  );
  try {
    return await Promise.race([write, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
