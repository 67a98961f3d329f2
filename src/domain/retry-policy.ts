/**
 * How long to wait before retrying something that failed: one formula (`delayMs`) and one table of policies
 * (`RETRY_POLICIES`). Every retry in the tool takes its waits from here: BullMQ job retries through
 * `jobRetryOptions` (BullMQ's built-in exponential backoff then computes exactly what `delayMs` computes), and
 * the in-process waits (a 429 without Retry-After, a failed page of GET /chats).
 *
 * A retry wait is `baseMs × 2^(retry-1)`, capped at `capMs`, times a jitter factor drawn from [from, to),
 * rounded down to whole milliseconds.
 *
 * Pure data and arithmetic, importing nothing: the store and runtime layers build job options from it.
 */

export interface RetryPolicy {
  /** Tries in all, the first one included: after this many failures the caller gives up. */
  readonly attempts: number;
  /** Nominal wait before the first retry; it doubles for each further retry. */
  readonly baseMs: number;
  /** Largest nominal wait (jitter applies after the cap). Absent: no cap. */
  readonly capMs?: number;
  /**
   * The wait is the nominal one times a factor drawn uniformly from [from, to), so that callers which failed
   * together do not come back in lockstep. `{ from: 1, to: 1 }` is no jitter.
   */
  readonly jitter: { readonly from: number; readonly to: number };
}

export type RetryPolicyName = 'unassign' | 'rateLimited' | 'finalize' | 'notify' | 'chatPage';

/** MAX_ATTEMPTS's default (DEFAULTS.maxAttempts in config.ts; test/unit/retry-policy.test.ts keeps the two equal). */
const DEFAULT_MAX_ATTEMPTS = 5;

/**
 * Every retry the tool makes. `unassign` and `chatPage` are defaults: MAX_ATTEMPTS sets their `attempts`, and
 * callers may pass another base (the runtime context's JobPolicy); only their shape is fixed here.
 */
export const RETRY_POLICIES: Readonly<Record<RetryPolicyName, RetryPolicy>> = {
  /** An unassign job after a 5xx, 408, timeout or network error: 0.5-1 s, 1-2 s, 2-4 s … (a BullMQ job retry). */
  unassign: { attempts: DEFAULT_MAX_ATTEMPTS, baseMs: 1000, jitter: { from: 0.5, to: 1 } },
  /**
   * A 429 without a usable Retry-After (every worker pauses this long): 1 s, 2 s, 4 s … capped at 60 s, ±25 %.
   * `attempts` bounds the 429s one GET /chats page accepts (20 waits, then the listing gives up); an unassign
   * job has no such bound, since a 429 never uses up one of its attempts.
   */
  rateLimited: { attempts: 21, baseMs: 1000, capMs: 60_000, jitter: { from: 0.75, to: 1.25 } },
  /** A finalize job (the batch's report): 1 s, 2 s, 4 s, 8 s, no jitter (one per batch, nothing to spread). */
  finalize: { attempts: 5, baseMs: 1000, jitter: { from: 1, to: 1 } },
  /** A notify job (NOTIFY_WEBHOOK_URL): 0.5-1 s, 1-2 s … 8.5-17 min; 11 retries, 17-34 min in all. */
  notify: { attempts: 12, baseMs: 1000, jitter: { from: 0.5, to: 1 } },
  /** A page of GET /chats after a 5xx, 408, timeout or network error: 1 s, 2 s, 4 s … ±25 % (in-process). */
  chatPage: { attempts: DEFAULT_MAX_ATTEMPTS, baseMs: 1000, jitter: { from: 0.75, to: 1.25 } },
};

/**
 * The wait before retry number `retry` (1 = the first retry, after the first failure; BullMQ's `attemptsMade`
 * when it computes a backoff). Values below 1 count as 1. `random` returns a number in [0, 1), injected for tests.
 */
export function delayMs(policy: RetryPolicy, retry: number, random: () => number = Math.random): number {
  const nominal = Math.round(2 ** (Math.max(1, retry) - 1) * policy.baseMs);
  const capped = policy.capMs === undefined ? nominal : Math.min(policy.capMs, nominal);
  const span = policy.jitter.to - policy.jitter.from;
  // With `to` = 1 these are BullMQ's operations in BullMQ's order (`random * max * jitter + max * (1 - jitter)`,
  // floored, with jitter = 1 - from as jobRetryOptions passes it): a job's retry waits exactly what this returns
  // for the same random number, not merely about as long.
  return Math.floor(random() * capped * span + capped * (policy.jitter.to - span));
}

/** The `attempts` and `backoff` job options that make BullMQ wait `delayMs(policy, attemptsMade)` between tries. */
export interface JobRetryOptions {
  readonly attempts: number;
  readonly backoff: { readonly type: 'exponential'; readonly delay: number; readonly jitter?: number };
}

/**
 * A policy as BullMQ job options, for its built-in exponential backoff (no custom strategy on the Worker, so jobs
 * already in Redis and any worker version read them the same way). That backoff has no cap and jitters only
 * downwards, so a policy with `capMs` or with `jitter.to` other than 1 is refused rather than approximated.
 * Without jitter the `jitter` key is left out, as BullMQ then ignores it.
 */
export function jobRetryOptions(policy: RetryPolicy): JobRetryOptions {
  if (policy.capMs !== undefined || policy.jitter.to !== 1) {
    throw new Error('a retry policy with a cap or with upward jitter cannot run as BullMQ exponential backoff');
  }
  const jitter = 1 - policy.jitter.from;
  return {
    attempts: policy.attempts,
    backoff: jitter > 0 ? { type: 'exponential', delay: policy.baseMs, jitter } : { type: 'exponential', delay: policy.baseMs },
  };
}
