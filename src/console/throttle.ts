/**
 * Slows down a source (a client address) that keeps presenting a wrong console token, by the log-in form or as
 * a Bearer header. It never refuses a correct token: auth.ts checks the token first and asks this module only
 * about failures. So an address shared by many operators (a reverse proxy without TRUST_PROXY, an office NAT)
 * cannot be locked out by someone guessing from it; the guesser only gets 429 with a Retry-After that doubles
 * with each failure.
 *
 * Memory is bounded: at most `maxSources` entries (the source that failed longest ago is dropped first), and an
 * entry is forgotten `forgetAfterMs` after its last failure. The Map is kept in order of last failure (an entry
 * is re-inserted on each failure), so both the eviction and the expiry sweep only ever look at its front.
 */
import { MINUTE, SECOND } from '../config/config.js';

export interface ThrottleOptions {
  /** Failures a source may make before it is slowed down. @default 5 */
  readonly freeFailures?: number;
  /** Wait after the first failure past the free ones; doubles with each further failure. @default 1 s */
  readonly baseDelayMs?: number;
  /** The longest wait. @default 5 min */
  readonly maxDelayMs?: number;
  /** A source with no failure for this long starts afresh. At least `maxDelayMs`. @default 15 min */
  readonly forgetAfterMs?: number;
  /** Sources remembered at once. @default 10 000 */
  readonly maxSources?: number;
}

export interface FailureThrottle {
  /**
   * Records a wrong token from `source`. Returns how long the source should wait before trying again, in ms:
   * 0 while it is within its free failures.
   */
  fail(source: string, now?: number): number;
  /** How long `source` should still wait, in ms (0 if it need not). Does not count anything. */
  waitMs(source: string, now?: number): number;
  /** Sources currently remembered. */
  readonly size: number;
}

interface Entry {
  failures: number;
  lastFailureAt: number;
}

export function makeFailureThrottle(options: ThrottleOptions = {}): FailureThrottle {
  const freeFailures = options.freeFailures ?? 5;
  const baseDelayMs = options.baseDelayMs ?? SECOND;
  const maxDelayMs = options.maxDelayMs ?? 5 * MINUTE;
  const forgetAfterMs = Math.max(options.forgetAfterMs ?? 15 * MINUTE, maxDelayMs);
  const maxSources = Math.max(1, options.maxSources ?? 10_000);
  const entries = new Map<string, Entry>();

  const delayFor = (failures: number): number => {
    const over = failures - freeFailures;
    if (over <= 0) return 0;
    // 2 ** 40 is already far past any sane maxDelayMs: cap the exponent so the number stays finite.
    return Math.min(maxDelayMs, baseDelayMs * 2 ** Math.min(over - 1, 40));
  };
  const expired = (entry: Entry, now: number): boolean => now - entry.lastFailureAt >= forgetAfterMs;
  /** Drops expired entries from the front (the oldest failures), then the oldest beyond the bound. */
  const prune = (now: number): void => {
    for (const [source, entry] of entries) {
      if (!expired(entry, now)) break;
      entries.delete(source);
    }
    while (entries.size > maxSources) entries.delete(entries.keys().next().value as string);
  };
  const current = (source: string, now: number): Entry | undefined => {
    const entry = entries.get(source);
    if (entry && expired(entry, now)) {
      entries.delete(source);
      return undefined;
    }
    return entry;
  };

  return {
    fail: (source, now = Date.now()) => {
      const entry = current(source, now) ?? { failures: 0, lastFailureAt: now };
      entry.failures += 1;
      entry.lastFailureAt = now;
      // Re-inserting moves the source to the back: the Map stays ordered by last failure.
      entries.delete(source);
      entries.set(source, entry);
      prune(now);
      return delayFor(entry.failures);
    },
    waitMs: (source, now = Date.now()) => {
      const entry = current(source, now);
      if (!entry) return 0;
      return Math.max(0, entry.lastFailureAt + delayFor(entry.failures) - now);
    },
    get size() {
      return entries.size;
    },
  };
}
