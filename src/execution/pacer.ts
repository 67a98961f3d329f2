/**
 * The global pacer: spaces API calls evenly across every worker process, one call per
 * RATE_LIMIT_DURATION_MS / RATE_LIMIT_MAX, using a GCRA ("virtual scheduling") slot counter in Redis.
 *
 * Why on top of BullMQ's limiter: BullMQ's limiter is a fixed window (at most `max` jobs start per window).
 * Two windows back to back may start `max` jobs at the end of one and `max` at the start of the next — twice
 * the limit within one second — and a server counting its own window answers that with 429. With the pacer no
 * sliding window of
 * RATE_LIMIT_DURATION_MS holds more than RATE_LIMIT_MAX calls, and the rate is still the full limit because
 * slots are absolute times (timer lateness does not accumulate). BullMQ's limiter stays as the outer cap so
 * workers do not take many more jobs than they can start.
 *
 * Slots are exact only if timers fire on time; a late timer (a busy event loop, a loaded machine) can bunch
 * calls. So a second check runs when the call is about to go: a sliding log of real call times in Redis admits
 * it only while the window holds fewer than RATE_LIMIT_MAX calls. Normally it admits at once (the slots already
 * spaced the calls); under jitter it holds a call for the few ms needed.
 *
 * A 429 pushes the next slot `pauseMs` into the future, so every process pauses, not just the one that saw it.
 * A caller already asleep until a slot it took before the 429, or held by the sliding log, checks the pause when
 * it wakes, and takes a new slot after the pause instead of calling inside it (otherwise every sleeper fires one
 * more 429 at the API).
 * Pauses hold even with pacing off (`max` 0): an API with no known limit can still answer 429, and BullMQ's
 * limiter, which is off then too, would not stop the other workers. Asking Redis before every call would add a
 * round trip to every call, so with pacing off a "not paused" answer is reused for PAUSE_CHECK_MS (see below).
 *
 * With RATE_LIMIT_MAX=auto (`adaptive`) the spacing is not fixed: each slot is spaced by the rate stored in the
 * adaptive limiter's state at the moment it is reserved (pacerReserveRate-2), and the sliding log admits as many
 * calls per window as that rate. Every process follows a change of rate from its next slot on.
 */
import { type Keys, pacerLogKey } from '../store/keys.js';
import { pacerAdmit, pacerPause, pacerPausedFor, pacerReserve, pacerReserveRate, type ScriptedRedis } from '../store/scripts.js';

/** The pacer's two keys: its state and its sliding log (keys.ts `pacer`, `pacerLog`). */
export type PacerKeys = Pick<Keys, 'pacer' | 'pacerLog'>;

export interface Pacer {
  /** Waits for this process's next call slot (with pacing off: only for a pause to end). */
  acquire(): Promise<void>;
  /** Nobody calls the API before now + ms. */
  pause(ms: number): Promise<void>;
}

export interface PacerOptions {
  /** Calls per `durationMs`; 0 = no pacing (benchmarks, unlimited APIs), but 429 pauses still hold. */
  readonly max: number;
  readonly durationMs: number;
  readonly sleep?: (ms: number) => Promise<void>;
  /** RATE_LIMIT_MAX=auto: the rate is read from the adaptive limiter's state (adaptive-limiter.ts); `max` is ignored. */
  readonly adaptive?: AdaptivePacing;
}

/** What the pacer needs of the adaptive limiter. */
export interface AdaptivePacing {
  /** The HASH whose `rate` field spaces the slots. */
  readonly rateKey: string;
  /** The rate while none is stored. */
  readonly startRate: number;
  /** Awaited before this process's first slot: brings the stored state up to date. */
  readonly ready: () => Promise<void>;
}

/**
 * Calls are admitted against a window longer than RATE_LIMIT_DURATION_MS, by the larger of these two margins.
 *
 * The sliding log holds at admission, by Redis's clock; the server counts arrivals. A call reaches the server
 * some time d after its admission (the admit reply's way back, the call's count in Redis, got building the
 * request, the socket, the server reading it), and d differs from call to call: a call held up (a GC pause, a
 * long event-loop turn between its admission and its socket write) arrives late, the calls admitted after it
 * arrive on time. If d varies by up to J ms, a server window of D ms can hold calls admitted within D + J ms,
 * so admitting at most RATE_LIMIT_MAX calls in any D + J ms keeps every server window at RATE_LIMIT_MAX.
 *
 * A margin of 2 % alone (20 ms at D = 1 s) was too small: on a busy 2-core machine a call held up more than
 * 20 ms let the server count 51 calls in one second at a 50/s limit, and answer 429. J is a time, not a share
 * of the window, hence the floor: 50 ms covers such hold-ups. At D = 1 s the window is 1050 ms, 5 % of the
 * rate (47.6 calls/s at a limit of 50); from D = 2.5 s the 2 % is the larger. A 429 costs a pause of about a
 * second for every worker (Retry-After), more than the rate given up.
 */
export const ARRIVAL_JITTER_MARGIN = 0.02;
export const ARRIVAL_JITTER_MIN_MS = 50;

/** The window calls are admitted against: RATE_LIMIT_DURATION_MS plus the arrival margin (above), in µs. */
export function admitWindowUs(durationMs: number): number {
  return Math.ceil(durationMs * 1000 + Math.max(durationMs * 1000 * ARRIVAL_JITTER_MARGIN, ARRIVAL_JITTER_MIN_MS * 1000));
}

/**
 * With pacing off, how long a "not paused" answer from Redis is trusted. A pause this process sets is known at
 * once to every pacer on the key in this process; another process's pause is seen within this many ms, so a few
 * more calls may still meet the API's 429 and pause in turn (a 429 costs no attempt).
 */
export const PAUSE_CHECK_MS = 20;

/**
 * RATE_LIMIT_MAX=auto: slots are handed out at most this far ahead (pacerReserveRate-2), so a change of rate
 * holds within about this long; a caller further back asks again after the wait less this, but not sooner than
 * ADAPTIVE_RETRY_MIN_MS nor later than ADAPTIVE_RETRY_MAX_MS (a Redis call per waiting caller and retry).
 */
export const ADAPTIVE_HORIZON_MS = 500;
export const ADAPTIVE_RETRY_MIN_MS = 25;
export const ADAPTIVE_RETRY_MAX_MS = 250;

/** What this process knows about a pacer key's pause: until when (local ms) and when Redis was last asked. */
interface PauseView {
  pausedUntil: number;
  checkedAt: number;
  asking: Promise<void> | undefined;
}
const pauseViews = new Map<string, PauseView>();

function pauseViewOf(key: string): PauseView {
  let view = pauseViews.get(key);
  if (!view) pauseViews.set(key, (view = { pausedUntil: 0, checkedAt: -Infinity, asking: undefined }));
  return view;
}

/**
 * When the 429 pause on a pacer key ends (ms epoch, by this process's clock), or undefined when none is in
 * force: one Redis call, cheap enough for a status line. `keys` as for `makePacer`.
 */
export async function pausedUntil(redis: ScriptedRedis, keys: PacerKeys | string): Promise<number | undefined> {
  const us = await pacerPausedFor(redis, typeof keys === 'string' ? keys : keys.pacer);
  return us > 0 ? Date.now() + Math.ceil(us / 1000) : undefined;
}

/**
 * `keys` is usually the context's Keys. A bare pacer key is also taken (tests pace on keys of their own); its log
 * is then keys.ts `pacerLogKey` of it.
 */
export function makePacer(redis: ScriptedRedis, keys: PacerKeys | string, opts: PacerOptions): Pacer {
  const { pacer: key, pacerLog: logKey } = typeof keys === 'string' ? { pacer: keys, pacerLog: pacerLogKey(keys) } : keys;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const windowUs = admitWindowUs(opts.durationMs);
  const { adaptive } = opts;
  const intervalUs = adaptive ? 1 : opts.max > 0 ? Math.ceil(windowUs / opts.max) : 0;
  // Unique per process and call: members of the sliding log. (Random suffix: pids repeat across hosts.)
  const instance = Math.random().toString(36).slice(2, 8);
  let sequence = 0;
  const view = pauseViewOf(key);
  /** Pacing off: wait out a pause, asking Redis at most every PAUSE_CHECK_MS (one question for all callers). */
  const waitForPause = async (): Promise<void> => {
    for (;;) {
      const now = Date.now();
      if (view.pausedUntil > now) {
        await sleep(view.pausedUntil - now);
        continue;
      }
      if (now - view.checkedAt < PAUSE_CHECK_MS) return;
      view.asking ??= pacerPausedFor(redis, key)
        .then((us) => {
          view.checkedAt = Date.now();
          view.pausedUntil = Math.max(view.pausedUntil, view.checkedAt + Math.ceil(us / 1000));
        })
        .finally(() => {
          view.asking = undefined;
        });
      await view.asking;
    }
  };
  /** Takes a slot (adaptive: only within ADAPTIVE_HORIZON_MS, else says how long until it may ask again). */
  const reserve = async (): Promise<{ waitUs: number; rate: number; taken: boolean }> =>
    adaptive
      ? pacerReserveRate(redis, { pacer: key, rate: adaptive.rateKey }, { windowUs, fallbackRate: adaptive.startRate, horizonUs: ADAPTIVE_HORIZON_MS * 1000 })
      : { waitUs: await pacerReserve(redis, key, intervalUs), rate: opts.max, taken: true };
  /** Waits for a slot of this process's; returns the calls per window the slot was spaced by. */
  const waitForSlot = async (): Promise<number> => {
    for (;;) {
      const { waitUs, rate, taken } = await reserve();
      if (!taken) {
        await sleep(Math.min(ADAPTIVE_RETRY_MAX_MS, Math.max(ADAPTIVE_RETRY_MIN_MS, Math.ceil(waitUs / 1000) - ADAPTIVE_HORIZON_MS)));
        continue;
      }
      if (waitUs <= 0) return rate;
      await sleep(Math.ceil(waitUs / 1000)); // rounded up: waking early would call inside a pause
      if ((await pacerPausedFor(redis, key)) <= 0) return rate;
      // Paused while we slept: this slot is void. The pause pushed every slot past its end, so take a new one.
    }
  };
  let ready: Promise<void> | undefined;
  return {
    async acquire() {
      if (intervalUs === 0) return waitForPause();
      if (adaptive) await (ready ??= adaptive.ready());
      // A slot, then admission by the sliding log; a pause that begins while the log holds the call voids the slot.
      for (;;) {
        const max = await waitForSlot();
        const member = `${instance}-${process.pid}-${(sequence += 1)}`;
        for (;;) {
          const holdUs = await pacerAdmit(redis, logKey, { windowUs, max, member });
          if (holdUs === 0) return;
          await sleep(Math.ceil(holdUs / 1000));
          if ((await pacerPausedFor(redis, key)) > 0) break;
        }
      }
    },
    async pause(ms) {
      view.pausedUntil = Math.max(view.pausedUntil, Date.now() + Math.ceil(ms));
      await pacerPause(redis, key, Math.ceil(ms * 1000));
    },
  };
}
