/**
 * Waiting out an infrastructure outage. When Redis refuses writes (maxmemory with noeviction: "OOM command not
 * allowed"), is loading, read-only, or cannot be reached, nothing is wrong with the chat being worked on: the
 * step is retried until Redis accepts it, and no attempt of the chat is spent. The wait is said loudly, once
 * when it starts, every `reportEveryMs` while it lasts, and when it ends.
 */
import { setTimeout as sleep } from 'node:timers/promises';

import { toError } from '../domain/errors.js';
import type { Logger } from '../config/logger.js';

/** Reply prefixes of Redis errors that say "not now", never "this request is wrong". */
const OUTAGE_REPLIES = ['OOM', 'READONLY', 'LOADING', 'MASTERDOWN', 'CLUSTERDOWN', 'TRYAGAIN', 'BUSY', 'NOREPLICAS', 'MISCONF'];
/** Connection-level errors (ioredis and Node). */
const OUTAGE_MESSAGES = [
  'Connection is closed',
  "Stream isn't writeable",
  'Reached the max retries per request limit',
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
];

/** Whether an error means Redis is (for now) unable to serve us, rather than a bug or a bad request. */
export function isRedisOutage(error: unknown): boolean {
  const e = toError(error);
  const code = (e as NodeJS.ErrnoException).code ?? '';
  return OUTAGE_REPLIES.some((p) => e.message.startsWith(p)) || OUTAGE_MESSAGES.some((m) => e.message.includes(m) || code === m);
}

/** What an outage looks like from outside, for a progress line or a page. */
export function describeOutage(error: unknown): string {
  const message = toError(error).message.split('\n')[0] ?? '';
  return message.startsWith('OOM') ? `Redis refuses writes: ${message}` : `Redis is unavailable: ${message}`;
}

export interface OutageOptions {
  readonly logger: Logger;
  /** Longest wait between two tries. @default 2000 */
  readonly maxDelayMs?: number;
  /** How often a long outage is logged again. @default 30000 */
  readonly reportEveryMs?: number;
  /** Called with every outage error and once with `undefined` when the step went through after one. */
  readonly onOutage?: (error: Error | undefined) => void;
  readonly signal?: AbortSignal;
}

/**
 * Runs `step` until it does not fail with an outage; any other error is thrown at once. Returns the step's
 * value and whether it had to wait (a caller holding a lease on something may need to check it still does).
 */
export async function untilRedisServes<T>(what: string, step: () => Promise<T>, options: OutageOptions): Promise<{ value: T; waited: boolean }> {
  let delay = 50;
  let firstAt = 0;
  let reportedAt = 0;
  for (;;) {
    try {
      const value = await step();
      if (firstAt > 0) {
        options.logger.warn({ step: what, waitedMs: Date.now() - firstAt }, 'Redis serves again: going on');
        options.onOutage?.(undefined);
      }
      return { value, waited: firstAt > 0 };
    } catch (error) {
      if (!isRedisOutage(error) || options.signal?.aborted) throw error;
      const now = Date.now();
      if (firstAt === 0) firstAt = now;
      if (now - reportedAt >= (options.reportEveryMs ?? 30_000)) {
        reportedAt = now;
        options.logger.error(
          { step: what, waitingMs: now - firstAt, err: toError(error).message },
          `${describeOutage(error)}; waiting (no chat attempt is spent)`,
        );
      }
      options.onOutage?.(toError(error));
      await sleep(delay);
      delay = Math.min(options.maxDelayMs ?? 2000, delay * 2);
    }
  }
}
