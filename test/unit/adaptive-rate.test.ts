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
  HOLD_MAX_WINDOWS,
  HOLD_MIN_WINDOWS,
  hintPauseMs,
  hintRate,
  initialState,
  parseRateLimitHeaders,
  rememberedRate,
  step,
} from '../../src/execution/adaptive-rate.js';
import { admitWindowUs } from '../../src/execution/pacer.js';

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

/**
 * Simulates `seconds` of calls: the pacer spaces calls one admit window / rate apart (plus up to 3 ms of timer
 * lateness); each call reaches the API at once and its answer comes back 15–45 ms later (so calls already sent
 * when a 429 comes back answer too); the API is a token bucket of `limitAt(t)` tokens per second (capacity one
 * second's worth) answering 429 with Retry-After 1 s when empty; a 429 answer pauses every call for that second;
 * each process reports every `reportMs`. `seed` fixes the latencies and lateness.
 */
function simulate(seconds: number, limitAt: (tMs: number) => number, settings = SETTINGS, from?: AdaptiveState, reportMs = 100, seed = 1): SimResult {
  let rnd = seed;
  const random = (): number => {
    rnd = (rnd * 1103515245 + 12345) % 2147483648;
    return rnd / 2147483648;
  };
  let state = from ?? initialState(settings, T0);
  const admitMs = admitWindowUs(settings.windowMs) / 1000;
  let tokens = limitAt(0);
  let last = 0;
  let next = 0;
  let pausedUntil = 0;
  let pending = { ok: 0, limited: 0 };
  let nextReport = reportMs;
  const inFlight: { at: number; ok: boolean }[] = [];
  const okPerSecond: number[] = Array.from({ length: seconds }, () => 0);
  let ok = 0;
  let limited = 0;
  let maxRate = state.rate;
  const reportUntil = (t: number): void => {
    while (nextReport <= t) {
      state = step(state, pending, T0 + nextReport, settings);
      maxRate = Math.max(maxRate, state.rate);
      pending = { ok: 0, limited: 0 };
      nextReport += reportMs;
    }
  };
  const end = seconds * 1000;
  while (next < end) {
    const t = Math.max(next, pausedUntil);
    if (t >= end) break;
    inFlight.sort((a, b) => a.at - b.at);
    while (inFlight.length > 0 && inFlight[0]!.at <= t) {
      const answer = inFlight.shift()!;
      reportUntil(answer.at);
      if (answer.ok) pending.ok += 1;
      else {
        // The processor reports the 429 and pauses everyone for Retry-After at once.
        pending.limited += 1;
        state = step(state, pending, T0 + answer.at, settings);
        pending = { ok: 0, limited: 0 };
        pausedUntil = Math.max(pausedUntil, answer.at + 1000);
      }
    }
    if (t < pausedUntil) {
      next = pausedUntil;
      continue;
    }
    reportUntil(t);
    const limit = limitAt(t);
    tokens = Math.min(limit, tokens + ((t - last) / 1000) * limit);
    last = t;
    const answerAt = t + 15 + random() * 30;
    if (tokens >= 1) {
      tokens -= 1;
      ok += 1;
      okPerSecond[Math.floor(t / 1000)]! += 1;
      inFlight.push({ at: answerAt, ok: true });
    } else {
      limited += 1;
      inFlight.push({ at: answerAt, ok: false });
    }
    next = t + admitMs / state.rate + random() * 3;
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
    expect(s.holdLeft).toBe(HOLD_MIN_WINDOWS);
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

  it('the hold doubles when cuts keep finding the same limit, and shortens when the limit moved', () => {
    let s: AdaptiveState = { ...initialState(SETTINGS, T0), rate: 43, limit: 32, holdLen: 4, phase: 'probe', prevOk: 40 };
    s = step(s, { ok: 0, limited: 1 }, T0 + 100, SETTINGS);
    expect(s.holdLen).toBe(8);
    s = step({ ...s, rate: 80, prevOk: 20, winStart: T0 + 4500 }, { ok: 0, limited: 1 }, T0 + 5000, SETTINGS);
    expect(s.rate).toBe(40);
    expect(s.holdLen).toBe(HOLD_MIN_WINDOWS);
    let same = { ...s, holdLen: HOLD_MAX_WINDOWS, limit: 30, rate: 40, prevOk: 30 };
    same = step(same, { ok: 0, limited: 1 }, T0 + 10_000, SETTINGS);
    expect(same.holdLen).toBe(HOLD_MAX_WINDOWS);
  });

  it('after the hold, probes a tenth of the rate above it, then doubles the step per used window', () => {
    let s: AdaptiveState = { ...initialState(SETTINGS, T0), rate: 30, phase: 'hold', holdLeft: 1, limit: 30 };
    const rates: number[] = [];
    for (let w = 1; w <= 4; w += 1) {
      s = step(s, { ok: s.rate, limited: 0 }, T0 + w * 1000 - 1, SETTINGS);
      s = step(s, { ok: 0, limited: 0 }, T0 + w * 1000, SETTINGS);
      rates.push(s.rate);
    }
    expect(rates).toEqual([30, 33, 39, 51]);
    // At a low rate the first step is 1.
    let low: AdaptiveState = { ...initialState(SETTINGS, T0), rate: 5, phase: 'hold', holdLeft: 1, limit: 5 };
    for (let w = 1; w <= 3; w += 1) {
      low = step(low, { ok: low.rate, limited: 0 }, T0 + w * 1000 - 1, SETTINGS);
      low = step(low, { ok: 0, limited: 0 }, T0 + w * 1000, SETTINGS);
    }
    expect(low.rate).toBe(8);
  });

  it('a probe steps up only after a window that delivered nearly its rate: a process that sends less stays where it is', () => {
    let s: AdaptiveState = { ...initialState(SETTINGS, T0), rate: 40, phase: 'probe', step: 4, limit: 36 };
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
  it('converges near a hidden limit of 40/s with few 429s, and never above the ceiling', () => {
    const run = simulate(150, () => 40);
    if (process.env.SIM_TRACE) console.log(run.okPerSecond.join(' '), run.limited);
    const after20 = mean(run.okPerSecond.slice(20));
    expect(after20).toBeGreaterThanOrEqual(0.9 * 40);
    expect(after20).toBeLessThanOrEqual(40.5);
    expect(run.limited / (run.ok + run.limited)).toBeLessThanOrEqual(0.02);
    expect(run.maxRate).toBeLessThanOrEqual(SETTINGS.ceiling);
  });

  it('a ceiling below the hidden limit is the rate: no 429 at all', () => {
    const run = simulate(60, () => 40, { ...SETTINGS, ceiling: 20 });
    expect(run.limited).toBe(0);
    expect(run.maxRate).toBe(20);
  });

  it('follows a limit changing 40 → 10 → 30 within 10 s of each change, 429s ≤ 5 %', () => {
    const limitAt = (t: number): number => (t < 20_000 ? 40 : t < 40_000 ? 10 : 30);
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
      const run = simulate(60, limitAt, SETTINGS, undefined, 100, seed);
      if (process.env.SIM_TRACE) console.log(seed, run.okPerSecond.join(' '), run.limited);
      expect(mean(run.okPerSecond.slice(10, 20))).toBeGreaterThanOrEqual(0.8 * 40);
      expect(followSeconds(run.okPerSecond, 20, 40, 10)).toBeLessThanOrEqual(10);
      expect(followSeconds(run.okPerSecond, 40, 60, 30)).toBeLessThanOrEqual(10);
      expect(run.limited / (run.ok + run.limited)).toBeLessThanOrEqual(0.05);
    }
  });

  it('the next run starts near what the last one learned', () => {
    const first = simulate(60, () => 40);
    if (process.env.SIM_TRACE) console.log(first.okPerSecond.join(' '), first.limited, JSON.stringify(first.state));
    const next = step(first.state, { ok: 0, limited: 0 }, T0 + 60_000 + HOUR, SETTINGS);
    // The last cut is what was learned. A token bucket lets a burst through on top of its rate (up to its
    // capacity), so a cut measured on such a window can sit up to a quarter above the sustained limit; the next
    // run's first windows find it again.
    expect(next.rate).toBeGreaterThanOrEqual(34);
    expect(next.rate).toBeLessThanOrEqual(50);
  });
});
