/**
 * The adaptive rate limit's control law (src/execution/adaptive-rate.ts), without Redis: single steps, the
 * header arithmetic, the memory's decay, and whole runs against a simulated API with a hidden per-second token
 * bucket (the stand-in's --hidden-limit), paced as the pacer paces and paused on every 429 as the processor
 * pauses. Assertions are on counts and bands, on a simulated clock.
 */
import { describe, expect, it } from '@jest/globals';

import {
  type AdaptiveSettings,
  type AdaptiveState,
  HOLD_WINDOWS,
  hintPauseMs,
  hintRate,
  initialState,
  parseRateLimitHeaders,
  rememberedRate,
  step,
} from '../../src/execution/adaptive-rate.js';
import { REPORT_MS } from '../../src/execution/adaptive-limiter.js';
import { ADAPTIVE_HORIZON_MS, ADAPTIVE_RETRY_MAX_MS, ADAPTIVE_RETRY_MIN_MS, admitWindowUs } from '../../src/execution/pacer.js';

const HOUR = 3600_000;
const SETTINGS: AdaptiveSettings = { start: 1, ceiling: 100, windowMs: 1000, memoryMs: 24 * HOUR };
const T0 = 1_000_000;

interface SimResult {
  readonly state: AdaptiveState;
  /** Successful calls per simulated second. */
  readonly okPerSecond: number[];
  readonly ok: number;
  readonly limited: number;
  /** Highest rate the law ever set. */
  readonly maxRate: number;
}

interface WorkerSimOptions {
  readonly seconds: number;
  readonly limitAt: (tMs: number) => number;
  readonly settings?: AdaptiveSettings;
  readonly from?: AdaptiveState;
  readonly seed?: number;
  /** Worker processes sharing the state, the pacer and the queue's pause, and calls in flight in each. */
  readonly processes?: number;
  readonly concurrency?: number;
  /** One way between a worker and the API, ms (min, max). */
  readonly netMs?: readonly [number, number];
  /** A job's own Redis work around its call (claim, record, BullMQ's fetch), ms (min, max). */
  readonly jobMs?: readonly [number, number];
}

/**
 * Simulates worker processes as they run, event by event: each of `concurrency` workers per process takes a job
 * (none while the queue is paused after a 429), reserves a pacer slot (pacerReserveRate-2: spaced by the rate
 * stored now, rescaled when it changed, never more than ADAPTIVE_HORIZON_MS ahead), sleeps until it (a slot that
 * a pause overtook is taken again), is admitted by the sliding log (pacerAdmit-1, at most the slot's rate per
 * admit window), calls, and counts the answer as adaptive-limiter.ts does: successes reported REPORT_MS after the
 * first one, a 429 reported at once, then every worker paused for Retry-After (1 s: the pacer and BullMQ's
 * limiter) and the job back in the queue. The API is a token bucket of `limitAt(t)` per second (capacity one
 * second's worth); the series count what it let through per second of arrival, as the stand-in does.
 */
function simulateWorkers(o: WorkerSimOptions): SimResult {
  const settings = o.settings ?? SETTINGS;
  const processes = o.processes ?? 1;
  const concurrency = o.concurrency ?? 8;
  const [netMin, netMax] = o.netMs ?? [1, 4];
  const [jobMin, jobMax] = o.jobMs ?? [3, 12];
  let rnd = o.seed ?? 1;
  const random = (): number => {
    rnd = (rnd * 1103515245 + 12345) % 2147483648;
    return rnd / 2147483648;
  };
  const between = (min: number, max: number): number => min + random() * (max - min);
  const admitMs = admitWindowUs(settings.windowMs) / 1000;
  const end = o.seconds * 1000;
  let state = o.from ?? initialState(settings, T0);
  let maxRate = state.rate;
  // Shared Redis: the pacer's next slot, its pause, the rate the slots were spaced by, the sliding log; the queue's pause.
  let slot = 0;
  let paused = 0;
  let slotRate = 0;
  const log: number[] = [];
  let queuePaused = 0;
  // The API's bucket.
  let tokens = o.limitAt(0);
  let filled = 0;
  const okPerSecond: number[] = Array.from({ length: o.seconds }, () => 0);
  let ok = 0;
  let limited = 0;
  // Events in time order (ties in the order they were scheduled).
  let now = 0;
  let seq = 0;
  const events: { at: number; seq: number; run: () => void }[] = [];
  const at = (t: number, run: () => void): void => {
    const event = { at: Math.max(t, now), seq: (seq += 1), run };
    let i = events.length;
    while (i > 0 && (events[i - 1]!.at > event.at || (events[i - 1]!.at === event.at && events[i - 1]!.seq > event.seq))) i -= 1;
    events.splice(i, 0, event);
  };
  /** A timer or a Redis round trip: a little late. */
  const soon = (ms: number): number => now + ms + between(0.2, 2);

  for (let p = 0; p < processes; p += 1) {
    const pending = { ok: 0, limited: 0 };
    let timer = false;
    const report = (): void => {
      state = step(state, { ...pending }, T0 + now, settings);
      maxRate = Math.max(maxRate, state.rate);
      pending.ok = 0;
      pending.limited = 0;
    };
    const answered = (passed: boolean): void => {
      if (passed) {
        pending.ok += 1;
        if (!timer) {
          timer = true;
          at(soon(REPORT_MS), () => {
            timer = false;
            report();
          });
        }
        at(now + between(jobMin, jobMax) / 2, fetch);
        return;
      }
      pending.limited += 1;
      report();
      const resume = now + 1000;
      paused = Math.max(paused, resume);
      slot = Math.max(slot, resume);
      queuePaused = Math.max(queuePaused, resume);
      at(soon(1), fetch);
    };
    const call = (): void => {
      at(now + between(netMin, netMax), () => {
        const limit = o.limitAt(now);
        tokens = Math.min(limit, tokens + ((now - filled) / 1000) * limit);
        filled = now;
        const second = Math.floor(now / 1000);
        const passed = tokens >= 1;
        if (passed) {
          tokens -= 1;
          ok += 1;
          if (second < o.seconds) okPerSecond[second]! += 1;
        } else {
          limited += 1;
        }
        at(now + between(netMin, netMax), () => answered(passed));
      });
    };
    const admit = (max: number): void => {
      while (log.length > 0 && log[0]! <= now - admitMs) log.shift();
      if (log.length < max) {
        log.push(now);
        call();
      } else at(soon(log[0]! + admitMs - now), () => admit(max));
    };
    const reserve = (): void => {
      const rate = state.rate;
      const from = Math.max(now, paused);
      if (slotRate > 0 && slotRate !== rate && slot > from) slot = from + ((slot - from) * slotRate) / rate;
      slotRate = rate;
      const mine = Math.max(slot, now, paused);
      if (mine - now > ADAPTIVE_HORIZON_MS) {
        at(soon(Math.min(ADAPTIVE_RETRY_MAX_MS, Math.max(ADAPTIVE_RETRY_MIN_MS, mine - now - ADAPTIVE_HORIZON_MS))), reserve);
        return;
      }
      slot = mine + admitMs / rate;
      if (mine <= now) at(soon(0), () => admit(rate));
      else at(soon(mine - now), () => (paused > now ? reserve() : admit(rate)));
    };
    function fetch(): void {
      if (now >= end) return;
      if (queuePaused > now) at(queuePaused + between(0, 5), fetch);
      else at(now + between(jobMin, jobMax) / 2, reserve);
    }
    for (let w = 0; w < concurrency; w += 1) at(between(0, 5), fetch);
  }
  while (events.length > 0) {
    const event = events.shift()!;
    if (event.at >= end) break;
    now = event.at;
    event.run();
  }
  return { state, okPerSecond, ok, limited, maxRate };
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Seconds after `changeS` until the rate stays within ±20 % of `limit` for 3 s in a row (the benchmark's measure). */
function followSeconds(perSecond: readonly number[], changeS: number, endS: number, limit: number): number {
  for (let t = changeS; t + 3 <= endS; t += 1) {
    if (perSecond.slice(t, t + 3).every((n) => n >= 0.8 * limit && n <= 1.2 * limit)) return t - changeS;
  }
  return Number.POSITIVE_INFINITY;
}

describe('adaptive rate: single steps', () => {
  it('starts at RATE_LIMIT_START and doubles after each used window without a 429 (slow start)', () => {
    let s = step(undefined, { ok: 0, limited: 0 }, T0, SETTINGS);
    expect(s.rate).toBe(1);
    expect(s.phase).toBe('start');
    s = step(s, { ok: 1, limited: 0 }, T0 + 500, SETTINGS);
    s = step(s, { ok: 0, limited: 0 }, T0 + 1000, SETTINGS);
    expect(s.rate).toBe(2);
    s = step(s, { ok: 2, limited: 0 }, T0 + 1500, SETTINGS);
    s = step(s, { ok: 0, limited: 0 }, T0 + 2000, SETTINGS);
    expect(s.rate).toBe(4);
  });

  it('does not grow on a window that did not use the rate (nothing to send is no evidence the API takes more)', () => {
    let s = { ...initialState(SETTINGS, T0), rate: 20 };
    s = step(s, { ok: 3, limited: 0 }, T0 + 500, SETTINGS);
    s = step(s, { ok: 0, limited: 0 }, T0 + 1000, SETTINGS);
    expect(s.rate).toBe(20);
  });

  it('never exceeds the ceiling, whatever the start and however long the calls succeed', () => {
    const settings = { ...SETTINGS, start: 7, ceiling: 25 };
    let s = step(undefined, { ok: 0, limited: 0 }, T0, settings);
    for (let w = 1; w <= 40; w += 1) {
      s = step(s, { ok: s.rate, limited: 0 }, T0 + w * 1000 - 10, settings);
      expect(s.rate).toBeLessThanOrEqual(25);
    }
    expect(s.rate).toBe(25);
    // A stored rate above a lowered ceiling is brought down on the next step.
    expect(step({ ...s, rate: 80 }, { ok: 0, limited: 0 }, T0 + 41_000, settings).rate).toBe(25);
  });

  it('a 429 cuts to what the API let through in the last window when that is well below the rate, once per window, and holds', () => {
    let s: AdaptiveState = { ...initialState(SETTINGS, T0), rate: 64, prevOk: 40, winStart: T0 };
    s = step(s, { ok: 10, limited: 1 }, T0 + 300, SETTINGS);
    expect(s.rate).toBe(40);
    expect(s.phase).toBe('hold');
    expect(s.holdLeft).toBe(HOLD_WINDOWS);
    // In-flight calls answering 429 right after the cut do not cut again.
    s = step(s, { ok: 0, limited: 5 }, T0 + 500, SETTINGS);
    expect(s.rate).toBe(40);
    expect(s.limited).toBe(6);
  });

  it('a cut is multiplicative when nothing was measured, and never below half the rate', () => {
    const unmeasured = step({ ...initialState(SETTINGS, T0), rate: 50 }, { ok: 0, limited: 1 }, T0 + 10, SETTINGS);
    expect(unmeasured.rate).toBe(37);
    const tiny = step({ ...initialState(SETTINGS, T0), rate: 50, prevOk: 2 }, { ok: 0, limited: 1 }, T0 + 10, SETTINGS);
    expect(tiny.rate).toBe(25);
    const one = step({ ...initialState(SETTINGS, T0), rate: 1 }, { ok: 0, limited: 1 }, T0 + 10, SETTINGS);
    expect(one.rate).toBe(1);
  });

  it('a cut that ends a probe goes no higher than the rate two steps back: the last clean window may have been the bucket', () => {
    // Probed 40 → 44 → 52 → 68 (steps 4, 8, 16; the next would be 32); the window at 52 let 50 through.
    const s = step({ ...initialState(SETTINGS, T0), rate: 68, phase: 'probe', learned: 40, step: 32, prevOk: 50 }, { ok: 3, limited: 1 }, T0 + 100, SETTINGS);
    expect(s.rate).toBe(44);
    expect(s.phase).toBe('hold');
    expect(s.holdLeft).toBe(HOLD_WINDOWS);
    // It never raises a cut: one step taken (40 → 44), × 0.75 is below where the probe started.
    expect(
      step({ ...initialState(SETTINGS, T0), rate: 44, phase: 'probe', learned: 40, step: 8, prevOk: 42 }, { ok: 0, limited: 1 }, T0 + 100, SETTINGS).rate,
    ).toBe(33);
    // Not in a probe: the cut is what was measured.
    expect(
      step({ ...initialState(SETTINGS, T0), rate: 68, phase: 'hold', learned: 68, step: 1, prevOk: 50 }, { ok: 3, limited: 1 }, T0 + 100, SETTINGS).rate,
    ).toBe(50);
  });

  it('after the hold, probes a tenth of the rate above it, then doubles the step per used window', () => {
    let s: AdaptiveState = { ...initialState(SETTINGS, T0), rate: 30, phase: 'hold', holdLeft: 1 };
    const rates: number[] = [];
    for (let w = 1; w <= 4; w += 1) {
      s = step(s, { ok: s.rate, limited: 0 }, T0 + w * 1000 - 1, SETTINGS);
      s = step(s, { ok: 0, limited: 0 }, T0 + w * 1000, SETTINGS);
      rates.push(s.rate);
    }
    expect(rates).toEqual([30, 33, 39, 51]);
    // At a low rate the first step is 1.
    let low: AdaptiveState = { ...initialState(SETTINGS, T0), rate: 5, phase: 'hold', holdLeft: 1 };
    for (let w = 1; w <= 3; w += 1) {
      low = step(low, { ok: low.rate, limited: 0 }, T0 + w * 1000 - 1, SETTINGS);
      low = step(low, { ok: 0, limited: 0 }, T0 + w * 1000, SETTINGS);
    }
    expect(low.rate).toBe(8);
  });

  it('a probe steps up only after a window that delivered nearly its rate: a process that sends less stays where it is', () => {
    let s: AdaptiveState = { ...initialState(SETTINGS, T0), rate: 40, phase: 'probe', step: 4 };
    // The window delivered 30 of 40 (a process that cannot send faster): used, but no step up.
    s = step(s, { ok: 30, limited: 0 }, T0 + 999, SETTINGS);
    s = step(s, { ok: 0, limited: 0 }, T0 + 1000, SETTINGS);
    expect(s.rate).toBe(40);
    expect(s.phase).toBe('probe');
    // 38 of 40: steps up.
    s = step(s, { ok: 38, limited: 0 }, T0 + 1999, SETTINGS);
    s = step(s, { ok: 0, limited: 0 }, T0 + 2000, SETTINGS);
    expect(s.rate).toBe(44);
  });

  it('rate-limit headers set the rate directly and stop the probing; a 429 then does not cut', () => {
    let s = step(undefined, { ok: 1, limited: 0, hint: { limit: 40, windowMs: 1000, remaining: 39 } }, T0, SETTINGS);
    expect(s.rate).toBe(40);
    expect(s.phase).toBe('headers');
    for (let w = 1; w <= 5; w += 1) s = step(s, { ok: 40, limited: 0 }, T0 + w * 1000, SETTINGS);
    expect(s.rate).toBe(40);
    s = step(s, { ok: 0, limited: 1 }, T0 + 6000, SETTINGS);
    expect(s.rate).toBe(40);
    // Per-minute limits are converted to the window.
    expect(step(undefined, { ok: 1, limited: 0, hint: { limit: 600, windowMs: 60_000 } }, T0, SETTINGS).rate).toBe(10);
  });
});

describe('adaptive rate: what is learned is remembered, then decays', () => {
  it('kept as it is for RATE_LIMIT_MEMORY_HOURS, then the part above the start halves every further period', () => {
    expect(rememberedRate(40, 0, SETTINGS)).toBe(40);
    expect(rememberedRate(40, 24 * HOUR, SETTINGS)).toBe(40);
    expect(rememberedRate(41, 48 * HOUR, SETTINGS)).toBe(21);
    expect(rememberedRate(41, 72 * HOUR, SETTINGS)).toBe(11);
    expect(rememberedRate(41, 2400 * HOUR, SETTINGS)).toBe(1);
    expect(rememberedRate(0, 0, SETTINGS)).toBe(1);
    expect(rememberedRate(500, 0, SETTINGS)).toBe(100);
  });

  it('a run starting after a pause starts from the remembered rate, in hold, not from the start', () => {
    const learned: AdaptiveState = { ...initialState(SETTINGS, T0), rate: 44, learned: 40, phase: 'probe', usedAt: T0 };
    const nextDay = step(learned, { ok: 0, limited: 0 }, T0 + 2 * HOUR, SETTINGS);
    expect(nextDay.rate).toBe(40);
    expect(nextDay.phase).toBe('hold');
    const afterAWeek = step(learned, { ok: 0, limited: 0 }, T0 + 7 * 24 * HOUR, SETTINGS);
    expect(afterAWeek.rate).toBeLessThan(3);
    // A short gap (a few windows) is not a new run: the rate stays where the run had it.
    expect(step(learned, { ok: 0, limited: 0 }, T0 + 5000, SETTINGS).rate).toBe(44);
  });
});

describe('adaptive rate: header arithmetic', () => {
  it('reads the IETF draft headers, the single RateLimit header and X-RateLimit-*', () => {
    expect(parseRateLimitHeaders({ 'ratelimit-limit': '40', 'ratelimit-remaining': '12', 'ratelimit-reset': '1', 'ratelimit-policy': '40;w=1' }, T0)).toEqual({
      limit: 40,
      windowMs: 1000,
      remaining: 12,
      resetMs: 1000,
    });
    expect(parseRateLimitHeaders({ 'ratelimit-limit': '100, 100;w=60' }, T0)).toEqual({ limit: 100, windowMs: 60_000 });
    expect(parseRateLimitHeaders({ ratelimit: 'limit=30, remaining=0, reset=2', 'ratelimit-policy': 'q=30;w=1' }, T0)).toEqual({
      limit: 30,
      windowMs: 1000,
      remaining: 0,
      resetMs: 2000,
    });
    const now = 1_700_000_000_000;
    const epoch = (now + 5000) / 1000;
    expect(parseRateLimitHeaders({ 'x-ratelimit-limit': '50', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(epoch) }, now)).toEqual({
      limit: 50,
      remaining: 0,
      resetMs: 5000,
    });
  });

  it('ignores what cannot be a limit: absent, zero, negative, garbage, huge', () => {
    expect(parseRateLimitHeaders({}, T0)).toBeUndefined();
    expect(parseRateLimitHeaders({ 'ratelimit-limit': '0' }, T0)).toBeUndefined();
    expect(parseRateLimitHeaders({ 'ratelimit-limit': '-5' }, T0)).toBeUndefined();
    expect(parseRateLimitHeaders({ 'x-ratelimit-limit': '<html>' }, T0)).toBeUndefined();
    expect(parseRateLimitHeaders({ 'x-ratelimit-limit': '99999999999999' }, T0)).toBeUndefined();
    expect(parseRateLimitHeaders({ 'x-ratelimit-limit': '10', 'x-ratelimit-reset': 'soon' }, T0)).toEqual({ limit: 10 });
  });

  it('a hint converts to our window and caps at the ceiling; spent calls with a reset ask for a pause', () => {
    expect(hintRate({ limit: 40 }, SETTINGS)).toBe(40);
    expect(hintRate({ limit: 120, windowMs: 60_000 }, SETTINGS)).toBe(2);
    expect(hintRate({ limit: 5000, windowMs: 1000 }, SETTINGS)).toBe(100);
    expect(hintRate({ limit: 1, windowMs: 3600_000 }, SETTINGS)).toBe(1);
    expect(hintPauseMs({ limit: 40, remaining: 0, resetMs: 800 })).toBe(800);
    expect(hintPauseMs({ limit: 40, remaining: 3, resetMs: 800 })).toBe(0);
    expect(hintPauseMs({ limit: 40, remaining: 0 })).toBe(0);
    expect(hintPauseMs(undefined)).toBe(0);
  });
});

describe('adaptive rate: whole runs against a simulated hidden limit', () => {
  it('converges near a hidden limit of 40/s with few 429s, one process or four sharing the state, never above the ceiling', () => {
    for (const processes of [1, 4]) {
      for (const seed of [1, 2, 3]) {
        const run = simulateWorkers({ seconds: 130, limitAt: () => 40, processes, seed });
        if (process.env.SIM_TRACE) console.log(processes, seed, run.okPerSecond.join(' '), run.limited);
        const after20 = mean(run.okPerSecond.slice(20));
        expect(after20).toBeGreaterThanOrEqual(0.9 * 40);
        // A token bucket lets up to its capacity through on top of its rate; over 110 s that is well under 1/s.
        expect(after20).toBeLessThanOrEqual(40.5);
        expect(run.limited / (run.ok + run.limited)).toBeLessThanOrEqual(0.02);
        expect(run.maxRate).toBeLessThanOrEqual(SETTINGS.ceiling);
      }
    }
  });

  it('a ceiling below the hidden limit is the rate: no 429 at all', () => {
    const run = simulateWorkers({ seconds: 60, limitAt: () => 40, settings: { ...SETTINGS, ceiling: 20 } });
    expect(run.limited).toBe(0);
    expect(run.maxRate).toBe(20);
  });

  it('follows a limit changing 40 → 10 → 30 within 10 s of each change, 429s ≤ 5 %', () => {
    const limitAt = (t: number): number => (t < 20_000 ? 40 : t < 40_000 ? 10 : 30);
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]) {
      const run = simulateWorkers({ seconds: 60, limitAt, seed });
      if (process.env.SIM_TRACE)
        console.log(seed, followSeconds(run.okPerSecond, 20, 40, 10), followSeconds(run.okPerSecond, 40, 60, 30), run.okPerSecond.join(' '));
      expect(mean(run.okPerSecond.slice(10, 20))).toBeGreaterThanOrEqual(0.8 * 40);
      expect(followSeconds(run.okPerSecond, 20, 40, 10)).toBeLessThanOrEqual(10);
      expect(followSeconds(run.okPerSecond, 40, 60, 30)).toBeLessThanOrEqual(10);
      expect(run.limited / (run.ok + run.limited)).toBeLessThanOrEqual(0.05);
    }
  });

  it('the next run starts near what the last one learned', () => {
    for (const seconds of [50, 60, 70, 80]) {
      const first = simulateWorkers({ seconds, limitAt: () => 40 });
      const next = step(first.state, { ok: 0, limited: 0 }, T0 + seconds * 1000 + HOUR, SETTINGS);
      // What was learned is the last cut or a rate that then held a whole hold. A token bucket lets a burst through on
      // top of its rate (up to its capacity), and refills during the pause that follows a cut, so either can sit up to
      // about a third above the sustained limit; the next run's first windows find it again.
      expect(next.rate).toBeGreaterThanOrEqual(34);
      expect(next.rate).toBeLessThanOrEqual(54);
    }
  });
});
