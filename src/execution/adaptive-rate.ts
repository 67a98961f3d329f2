/**
 * The adaptive rate limit's control law (RATE_LIMIT_MAX=auto): pure arithmetic, no I/O, injected clock.
 * adaptive-limiter.ts keeps the state in Redis and applies `step` to it atomically for every worker process.
 *
 * The rate is in calls per RATE_LIMIT_DURATION_MS window, like a fixed RATE_LIMIT_MAX, and is always a whole
 * number from 1 to the ceiling. The pacer spaces calls by it (pacer.ts), so a rate of r gives slightly under r
 * calls per window (the pacer's arrival margin).
 *
 * Phases, decided once per window from what the calls of that window got:
 * - `start`: no 429 seen yet. The rate doubles after every window that used it (at least USED_SHARE of its
 *   calls answered) without a 429, up to the ceiling: 1, 2, 4 … calls per window.
 * - a 429 cuts the rate multiplicatively (CUT_FACTOR), at most once per window: the calls already in flight
 *   when the first 429 came back answer 429 too, and are not news. When the API let clearly fewer calls through
 *   than that (the successes of the last full window or of the current one, whichever is larger: its limit
 *   dropped), the cut goes down to that number, but never below half the rate. Successes are only a bound from
 *   below after a pause: a token bucket refilled meanwhile lets a burst through. A cut that ends a probe goes no
 *   higher than the rate two steps back (or where the probe started): the last clean window may have been
 *   carried by the calls a token bucket had stored, the one before it less likely. The processor pauses every
 *   worker for the 429's Retry-After on top (unchanged).
 * - `hold`: after a cut the rate stays put for HOLD_WINDOWS used windows, then `probe` adds a tenth of the rate
 *   (at least 1) in its first window and doubles that step per window until the next 429. The hold is short and
 *   does not grow when cuts keep finding the same limit: a limit that rose is only found by probing, so a long
 *   hold is how long a rise goes unseen; a probe at a steady limit costs a few 429s and one Retry-After pause,
 *   and a token bucket refills during that pause, so little throughput is lost.
 * - `headers`: the API says its limit (RateLimit-* / X-RateLimit-*): the rate follows what it says and nothing
 *   is probed.
 *
 * What was learned (the last rate that held a used window without a 429 outside a probe, the rate a cut set, or
 * what the headers said) is kept with
 * the time of the last call. A run that starts after a pause of IDLE_RESTART_WINDOWS windows or more starts from
 * it, not from RATE_LIMIT_START; after RATE_LIMIT_MEMORY_HOURS without calls the part above the start halves for
 * every further RATE_LIMIT_MEMORY_HOURS (`rememberedRate`).
 */

export interface AdaptiveSettings {
  /** The rate a key with nothing learned starts at (RATE_LIMIT_START). */
  readonly start: number;
  /** The rate is never above this (RATE_LIMIT_CEILING). */
  readonly ceiling: number;
  /** RATE_LIMIT_DURATION_MS. */
  readonly windowMs: number;
  /** RATE_LIMIT_MEMORY_HOURS in ms: how long what was learned is kept as it is. */
  readonly memoryMs: number;
}

export type AdaptivePhase = 'start' | 'hold' | 'probe' | 'headers';
export const ADAPTIVE_PHASES: readonly AdaptivePhase[] = ['start', 'hold', 'probe', 'headers'];

/** The shared state, one per API base URL and key fingerprint. Times are ms (Redis's clock). */
export interface AdaptiveState {
  /** Calls per window the pacer spaces calls by now. */
  readonly rate: number;
  readonly phase: AdaptivePhase;
  /** Last rate that held a used window without a 429 outside a probe, or a cut set, or the headers said; 0 = none. */
  readonly learned: number;
  /** Used windows left in `hold`, and the next step of `probe`. */
  readonly holdLeft: number;
  readonly step: number;
  /** The current window: its start, its successes and 429s; and the successes of the window before it. */
  readonly winStart: number;
  readonly winOk: number;
  readonly win429: number;
  readonly prevOk: number;
  /** When the last cut was made (one cut per window). */
  readonly cutAt: number;
  /** When a call was last reported, and when the state last restarted after a pause. */
  readonly usedAt: number;
  readonly restartAt: number;
  /** Calls answered 2xx / 429 since the state was made (for /metrics). */
  readonly ok: number;
  readonly limited: number;
}

/** What the API said about its limit in its headers (see `parseRateLimitHeaders`). */
export interface RateLimitHint {
  /** Calls allowed per `windowMs`. */
  readonly limit: number;
  /** The window the limit is for (`w=`), or undefined when the API did not say. */
  readonly windowMs?: number;
  /** Calls left in the current window, if said. */
  readonly remaining?: number;
  /** ms until the window resets, if said. */
  readonly resetMs?: number;
}

/** Calls reported together by one worker process since its last report. */
export interface AdaptiveReport {
  readonly ok: number;
  readonly limited: number;
  /** The latest rate-limit headers among those calls, if the API sent any. */
  readonly hint?: RateLimitHint;
}

/** A window counts as having used the rate when at least this share of it was answered. */
export const USED_SHARE = 0.6;
/**
 * A probe steps up only after a window that delivered nearly its rate (the pacer's margin lets a little under it
 * through). A process that cannot send faster than it does (its concurrency, a busy machine) would otherwise
 * raise the rate far above what it sends, and then, catching up after a stall, burst at that rate into the API.
 */
export const PROBE_USED_SHARE = 0.8;
/**
 * A cut with nothing measured multiplies the rate by this. Deep enough that a limit which dropped is found in one
 * or two cuts (every cut costs every worker a Retry-After pause); shallow enough that a steady limit is lost only
 * briefly (the probe climbs back in a few windows).
 */
export const CUT_FACTOR = 0.75;
/** A cut never goes below this share of the rate (a partial window measures low). */
export const CUT_FLOOR_SHARE = 0.5;
/** Used windows a cut (or a restart) holds the rate before probing again. */
export const HOLD_WINDOWS = 2;
/**
 * A probe's first step, as a share of the rate (at least 1), doubling per used window after it: a limit that rose
 * by a third is reached in about three windows whatever the rate, where steps of 1, 2, 4 … take longer the
 * higher the rate.
 */
export const PROBE_FIRST_SHARE = 0.1;
/** A pause of this many windows without calls ends a run; the next call starts from what was learned. */
export const IDLE_RESTART_WINDOWS = 30;

const whole = (n: number, min: number, max: number): number => Math.min(max, Math.max(min, Math.floor(n)));

/** A window starting now, with nothing counted in it nor in the one before (a start, a restart, a cut). */
const freshWindow = (now: number): Pick<AdaptiveState, 'winStart' | 'winOk' | 'win429' | 'prevOk'> => ({ winStart: now, winOk: 0, win429: 0, prevOk: 0 });

const firstProbeStep = (rate: number): number => Math.max(1, Math.floor(rate * PROBE_FIRST_SHARE));

/** A state for a key with nothing learned. */
export function initialState(settings: AdaptiveSettings, now: number): AdaptiveState {
  return {
    rate: whole(settings.start, 1, settings.ceiling),
    phase: 'start',
    learned: 0,
    holdLeft: 0,
    step: 1,
    ...freshWindow(now),
    cutAt: 0,
    usedAt: 0,
    restartAt: now,
    ok: 0,
    limited: 0,
  };
}

/**
 * The rate remembered after `idleMs` without calls: `learned` as it is for `memoryMs`, then the part above
 * `start` halves every further `memoryMs`. Never below `start`; 0 learned = `start`.
 */
export function rememberedRate(learned: number, idleMs: number, settings: Pick<AdaptiveSettings, 'start' | 'memoryMs' | 'ceiling'>): number {
  const start = whole(settings.start, 1, settings.ceiling);
  if (learned <= start) return start;
  if (idleMs <= settings.memoryMs) return whole(learned, start, settings.ceiling);
  const halvings = (idleMs - settings.memoryMs) / Math.max(1, settings.memoryMs);
  return whole(start + (learned - start) * 0.5 ** halvings, start, settings.ceiling);
}

/** The calls per window a hint allows, in our window (a hint without `w=` is read as per our window). */
export function hintRate(hint: RateLimitHint, settings: Pick<AdaptiveSettings, 'windowMs' | 'ceiling'>): number {
  const per = hint.windowMs !== undefined && hint.windowMs > 0 ? (hint.limit * settings.windowMs) / hint.windowMs : hint.limit;
  return whole(per, 1, settings.ceiling);
}

/** How long every worker should wait before the next call, from a hint: the window's calls are spent. */
export function hintPauseMs(hint: RateLimitHint | undefined): number {
  if (hint?.remaining === undefined || hint.remaining > 0 || hint.resetMs === undefined) return 0;
  return hint.resetMs;
}

/** Starts a run from what was learned, after a pause (see IDLE_RESTART_WINDOWS). */
function restart(s: AdaptiveState, now: number, settings: AdaptiveSettings): AdaptiveState {
  const rate = rememberedRate(s.learned, now - s.usedAt, settings);
  const known = rate > whole(settings.start, 1, settings.ceiling);
  return {
    ...s,
    rate,
    phase: s.phase === 'headers' ? 'headers' : known ? 'hold' : 'start',
    learned: known ? rate : s.learned,
    holdLeft: HOLD_WINDOWS,
    step: 1,
    ...freshWindow(now),
    restartAt: now,
  };
}

/** Closes the windows that ended before `now`: each used window without a 429 moves the rate on. */
function roll(s: AdaptiveState, now: number, settings: AdaptiveSettings): AdaptiveState {
  const { windowMs, ceiling } = settings;
  if (now < s.winStart + windowMs) return s;
  let next = { ...s };
  const used = s.win429 === 0 && s.winOk > 0 && s.winOk >= s.rate * USED_SHARE;
  if (used) {
    // A probe's clean window is no proof: a token bucket lets a short burst above its rate through. What a probe
    // finds is learned from the cut that ends it.
    if (s.phase === 'start' || s.phase === 'hold') next.learned = s.rate;
    if (s.phase === 'start') next.rate = whole(s.rate * 2, 1, ceiling);
    else if (s.phase === 'hold') {
      next.holdLeft = s.holdLeft - 1;
      if (next.holdLeft <= 0) next = { ...next, phase: 'probe', step: firstProbeStep(s.rate) };
    } else if (s.phase === 'probe' && s.winOk >= s.rate * PROBE_USED_SHARE) next = { ...next, rate: whole(s.rate + s.step, 1, ceiling), step: s.step * 2 };
  }
  const windows = Math.floor((now - s.winStart) / windowMs);
  // A skipped window (no report in it) had no successes.
  return { ...next, winStart: s.winStart + windows * windowMs, winOk: 0, win429: 0, prevOk: windows === 1 ? s.winOk : 0 };
}

/** A 429 came back: cut to what the API let through (see the module comment). */
function cut(s: AdaptiveState, now: number, settings: AdaptiveSettings): AdaptiveState {
  const measured = Math.max(s.prevOk, s.winOk);
  const multiplied = Math.floor(s.rate * CUT_FACTOR);
  const target = measured > 0 && measured < multiplied ? Math.max(measured, Math.floor(s.rate * CUT_FLOOR_SHARE)) : multiplied;
  // In a probe `learned` is where it started and `step` the next step: the steps taken were step / 2, step / 4 …
  const twoStepsBack = s.phase === 'probe' ? Math.max(s.learned, s.rate - Math.floor((3 * s.step) / 4)) : target;
  const rate = whole(Math.min(target, twoStepsBack), 1, settings.ceiling);
  return {
    ...s,
    rate,
    phase: 'hold',
    learned: rate,
    holdLeft: HOLD_WINDOWS,
    step: 1,
    cutAt: now,
    ...freshWindow(now),
  };
}

/**
 * One step: a worker process reports the calls answered since its last report (possibly none: a process
 * starting up asks for the state to be brought up to date). `state` undefined = nothing stored yet.
 */
export function step(state: AdaptiveState | undefined, report: AdaptiveReport, now: number, settings: AdaptiveSettings): AdaptiveState {
  let s = state ?? initialState(settings, now);
  if (s.rate > settings.ceiling) s = { ...s, rate: whole(s.rate, 1, settings.ceiling) };
  if (now - Math.max(s.usedAt, s.restartAt) >= IDLE_RESTART_WINDOWS * settings.windowMs) s = restart(s, now, settings);
  s = roll(s, now, settings);
  const calls = report.ok + report.limited;
  s = { ...s, winOk: s.winOk + report.ok, win429: s.win429 + report.limited, ok: s.ok + report.ok, limited: s.limited + report.limited };
  if (calls > 0) s = { ...s, usedAt: now };
  if (report.hint) {
    const rate = hintRate(report.hint, settings);
    return { ...s, rate, phase: 'headers', learned: rate };
  }
  if (report.limited > 0 && s.phase !== 'headers' && now - s.cutAt >= settings.windowMs) s = cut(s, now, settings);
  return s;
}

/** Calls per second for a rate in calls per window. */
export function perSecond(rate: number, windowMs: number): number {
  return Math.round(((rate * 1000) / windowMs) * 100) / 100;
}

const INT = /^\s*(\d{1,12})\s*(?:[,;]|$)/;

/** The first parameter `name=<number>` in a structured header value (`40;w=1`, `limit=40, remaining=3`). */
function param(value: string, name: string): number | undefined {
  const match = new RegExp(`(?:^|[;,\\s])${name}=(\\d{1,9}(?:\\.\\d+)?)`, 'i').exec(value);
  return match ? Number(match[1]) : undefined;
}

function leadingInt(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const match = INT.exec(value);
  return match ? Number(match[1]) : undefined;
}

/** A reset given in seconds from now, or (above a billion: no window is 30 years long) as epoch seconds. */
function resetMsOf(value: number | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const ms = value > 1e9 ? value * 1000 - now : value * 1000;
  return ms > 0 && ms <= 24 * 3600_000 ? Math.ceil(ms) : undefined;
}

/**
 * The rate-limit headers of one answer → a hint, or undefined when they say nothing usable. Reads the IETF
 * draft's `RateLimit-Limit` / `-Remaining` / `-Reset` (with the window from `RateLimit-Policy: 40;w=1` or a
 * `;w=` on the limit), the later draft's single `RateLimit: limit=40, remaining=3, reset=1` with
 * `RateLimit-Policy: q=40;w=1`, and `X-RateLimit-*` (a reset above 10^9 is epoch seconds). Header names are
 * lower-case (as node gives them). A limit of 0 or garbage is ignored: it would stop every call.
 */
export function parseRateLimitHeaders(headers: Readonly<Record<string, string | undefined>>, now: number): RateLimitHint | undefined {
  const combined = headers['ratelimit'];
  const policy = headers['ratelimit-policy'];
  const limitText = headers['ratelimit-limit'] ?? headers['x-ratelimit-limit'];
  let limit = leadingInt(limitText) ?? (combined !== undefined ? param(combined, 'limit') : undefined);
  let windowS = limitText !== undefined ? param(limitText, 'w') : undefined;
  if (policy !== undefined) {
    limit ??= param(policy, 'q') ?? leadingInt(policy);
    windowS ??= param(policy, 'w');
  }
  if (limit === undefined || !Number.isFinite(limit) || limit < 1) return undefined;
  const remaining =
    leadingInt(headers['ratelimit-remaining'] ?? headers['x-ratelimit-remaining']) ?? (combined !== undefined ? param(combined, 'remaining') : undefined);
  const resetMs = resetMsOf(
    leadingInt(headers['ratelimit-reset'] ?? headers['x-ratelimit-reset']) ?? (combined !== undefined ? param(combined, 'reset') : undefined),
    now,
  );
  return {
    limit,
    ...(windowS !== undefined && windowS > 0 ? { windowMs: windowS * 1000 } : {}),
    ...(remaining !== undefined ? { remaining } : {}),
    ...(resetMs !== undefined ? { resetMs } : {}),
  };
}
