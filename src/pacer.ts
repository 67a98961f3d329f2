/**
 * The global pacer: spaces API calls evenly across every worker process, one call per
 * RATE_LIMIT_DURATION_MS / RATE_LIMIT_MAX, using a GCRA ("virtual scheduling") slot counter in Redis.
 *
 * Why on top of BullMQ's limiter: BullMQ's limiter is a fixed window (at most `max` jobs start per window).
 * Two windows back to back may start `max` jobs at the end of one and `max` at the start of the next — twice
 * the limit within one second — and a server counting its own window answers that with 429. The demo saw
 * exactly that (61 calls in one second at a 45/s limit). With the pacer no sliding window of
 * RATE_LIMIT_DURATION_MS holds more than RATE_LIMIT_MAX calls, and the rate is still the full limit because
 * slots are absolute times (timer lateness does not accumulate). BullMQ's limiter stays as the outer cap so
 * workers do not take many more jobs than they can start.
 *
 * A 429 pushes the next slot `pauseMs` into the future, so every process pauses, not just the one that saw it.
 */
import type { ScriptedRedis } from './scripts.js';

export interface Pacer {
  /** Waits for this process's next call slot. Resolves immediately when the pacer is off. */
  acquire(): Promise<void>;
  /** Nobody calls the API before now + ms. */
  pause(ms: number): Promise<void>;
}

export interface PacerOptions {
  /** Calls per `durationMs`; 0 = no pacing (benchmarks, unlimited APIs). */
  readonly max: number;
  readonly durationMs: number;
  readonly sleep?: (ms: number) => Promise<void>;
}

export function makePacer(redis: ScriptedRedis, key: string, opts: PacerOptions): Pacer {
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const intervalUs = opts.max > 0 ? Math.ceil((opts.durationMs * 1000) / opts.max) : 0;
  return {
    async acquire() {
      if (intervalUs === 0) return;
      const waitUs = Number(await redis.pacerReserve(key, String(intervalUs)));
      if (waitUs > 0) await sleep(waitUs / 1000);
    },
    async pause(ms) {
      await redis.pacerPause(key, String(Math.ceil(ms * 1000)));
    },
  };
}
