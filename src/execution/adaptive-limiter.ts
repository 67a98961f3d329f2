/**
 * RATE_LIMIT_MAX=auto: the adaptive rate limit's shared state in Redis, one per API base URL and key
 * fingerprint (a sha256 prefix of both: never the key), stepped by every worker process with the control law of
 * adaptive-rate.ts.
 *
 * Each process counts the answers of its calls (2xx, 429, rate-limit headers) and reports them every
 * REPORT_MS, and at once on a 429, as one control step: read the state (rateRead-1, with Redis's clock), apply
 * `step`, write it back only if no other process wrote meanwhile (rateSwap-1, a compare-and-set on a version);
 * a refused write is computed again on the new state. So the state is one, whatever the number of processes,
 * and no report is counted twice or lost to a race. The pacer reads the rate the last step set whenever it
 * reserves a call slot (pacerReserveRate-2), so every process follows it within one slot.
 *
 * Redis failing a report is not the calls' failure: the counts stay with the process and go with its next
 * report. The state expires after ten RATE_LIMIT_MEMORY_HOURS without a step (the decay has taken it back to
 * the start long before).
 */
import { createHash } from 'node:crypto';

import { toError } from '../domain/errors.js';
import type { Logger } from '../config/logger.js';
import type { Keys } from '../store/keys.js';
import { rateRead, rateSwap, type ScriptedRedis } from '../store/scripts.js';
import {
  ADAPTIVE_PHASES,
  type AdaptivePhase,
  type AdaptiveReport,
  type AdaptiveSettings,
  type AdaptiveState,
  hintPauseMs,
  initialState,
  parseRateLimitHeaders,
  perSecond,
  type RateLimitHint,
  rememberedRate,
  step,
} from './adaptive-rate.js';
import type { ResolvedConfig } from '../config/config.js';
import type { DoubleTickApi } from './api-client.js';
import type { ApiOutcome } from './classify.js';

/** How often a process reports its calls (a 429 is reported at once). */
export const REPORT_MS = 100;
/** Tries of one control step against other processes' writes before the counts wait for the next report. */
const SWAP_TRIES = 20;

/** A short, stable name for an API base URL and key: the first 16 hex digits of sha256(baseUrl, key). */
export function rateFingerprint(baseUrl: string, apiKey: string): string {
  return createHash('sha256')
    .update(`${baseUrl.replace(/\/+$/, '')}\n${apiKey}`)
    .digest('hex')
    .slice(0, 16);
}

const NUMBER_FIELDS = [
  'rate',
  'learned',
  'holdLeft',
  'step',
  'winStart',
  'winOk',
  'win429',
  'prevOk',
  'cutAt',
  'usedAt',
  'restartAt',
  'ok',
  'limited',
] as const satisfies readonly (keyof AdaptiveState)[];

/** The stored fields → a state, or undefined when nothing (or something unreadable) is stored: it starts over. */
export function decodeState(fields: Readonly<Record<string, string>>): AdaptiveState | undefined {
  const phase = fields['phase'];
  if (!ADAPTIVE_PHASES.includes(phase as AdaptivePhase)) return undefined;
  const numbers: Partial<Record<(typeof NUMBER_FIELDS)[number], number>> = {};
  for (const name of NUMBER_FIELDS) {
    const n = Number(fields[name]);
    if (fields[name] === undefined || !Number.isFinite(n)) return undefined;
    numbers[name] = n;
  }
  return { ...(numbers as Record<(typeof NUMBER_FIELDS)[number], number>), phase: phase as AdaptivePhase };
}

export function encodeState(state: AdaptiveState): Record<string, string> {
  const out: Record<string, string> = { phase: state.phase };
  for (const name of NUMBER_FIELDS) out[name] = String(state[name]);
  return out;
}

/** What `status`, the console and /metrics show of one learned rate. Rates in calls per second. */
export interface AdaptiveView {
  readonly fingerprint: string;
  readonly baseUrl: string;
  readonly phase: AdaptivePhase;
  /** The rate calls are paced by now. */
  readonly currentPerSecond: number;
  /** What was learned, as a run starting now would start from it (decayed after RATE_LIMIT_MEMORY_HOURS). */
  readonly learnedPerSecond: number;
  /** 429 answers counted since the state was made. */
  readonly rateLimited: number;
  readonly ok: number;
  /** When a call was last reported (ms), undefined if never. */
  readonly usedAt: number | undefined;
}

function viewOf(fingerprint: string, baseUrl: string, state: AdaptiveState, now: number, settings: AdaptiveSettings): AdaptiveView {
  const idle = state.usedAt > 0 ? now - state.usedAt : 0;
  return {
    fingerprint,
    baseUrl,
    phase: state.phase,
    currentPerSecond: perSecond(state.rate, settings.windowMs),
    learnedPerSecond: perSecond(rememberedRate(state.learned, idle, settings), settings.windowMs),
    rateLimited: state.limited,
    ok: state.ok,
    usedAt: state.usedAt > 0 ? state.usedAt : undefined,
  };
}

/** Every learned rate under this prefix (usually one: one API and key), for views. Two Redis reads per rate. */
export async function readAdaptiveViews(redis: ScriptedRedis, keys: Pick<Keys, 'rate' | 'rateIndex'>, settings: AdaptiveSettings): Promise<AdaptiveView[]> {
  const index = await redis.hgetall(keys.rateIndex);
  const views: AdaptiveView[] = [];
  for (const [fingerprint, baseUrl] of Object.entries(index)) {
    if (!/^[0-9a-f]{16}$/.test(fingerprint)) continue;
    const { now, fields } = await rateRead(redis, keys.rate(fingerprint));
    const state = decodeState(fields);
    if (state) views.push(viewOf(fingerprint, baseUrl, state, now, settings));
  }
  return views;
}

export interface AdaptiveLimiter {
  /** The Redis key of the state the pacer reads. */
  readonly rateKey: string;
  /** The rate (calls per window) to pace by while no state is stored. */
  readonly startRate: number;
  /** Brings the stored state up to date once (a run after a pause starts from what was learned). Idempotent. */
  ready(): Promise<void>;
  /** Counts one API answer; a 429 is reported before this resolves. Never throws. */
  observe(outcome: ApiOutcome): Promise<void>;
  /** Reports what is counted now. Never throws. */
  flush(): Promise<void>;
  /** The state as stored now. */
  view(): Promise<AdaptiveView>;
  /** Reports what is left and stops the report timer. */
  close(): Promise<void>;
}

export interface AdaptiveLimiterOptions {
  readonly keys: Pick<Keys, 'rate' | 'rateIndex'>;
  readonly baseUrl: string;
  readonly apiKey: string;
  readonly settings: AdaptiveSettings;
  readonly logger?: Pick<Logger, 'warn'>;
  /** Nobody calls before now + ms: the headers said the window's calls are spent (the pacer's pause). */
  readonly pause?: (ms: number) => Promise<void>;
}

/** Headers of an outcome as node gives them (lower-case names, first value). */
function headersOf(outcome: ApiOutcome): Readonly<Record<string, string | undefined>> | undefined {
  return outcome.kind === 'response' ? outcome.rateLimitHeaders : undefined;
}

export function makeAdaptiveLimiter(redis: ScriptedRedis, options: AdaptiveLimiterOptions): AdaptiveLimiter {
  const { settings } = options;
  const fingerprint = rateFingerprint(options.baseUrl, options.apiKey);
  const rateKey = options.keys.rate(fingerprint);
  const ttlMs = Math.max(10 * settings.memoryMs, 3600_000);
  let pending: { ok: number; limited: number; hint: RateLimitHint | undefined } = { ok: 0, limited: 0, hint: undefined };
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let readied: Promise<void> | undefined;
  /** Until one step has been stored: a step with no calls still brings the state up to date (see `ready`). */
  let synced = false;
  let indexed = false;

  const stepOnce = async (report: AdaptiveReport): Promise<AdaptiveState | undefined> => {
    for (let i = 0; i < SWAP_TRIES; i += 1) {
      const { now, fields } = await rateRead(redis, rateKey);
      const stored = decodeState(fields);
      const next = step(stored, report, now, settings);
      if (await rateSwap(redis, rateKey, { version: fields['version'] ?? '0', ttlMs, fields: encodeState(next) })) return next;
    }
    return undefined;
  };

  const report = async (): Promise<void> => {
    const taken = pending;
    if (taken.ok + taken.limited === 0 && !taken.hint && synced) return;
    pending = { ok: 0, limited: 0, hint: undefined };
    try {
      if (!indexed) {
        await redis.hset(options.keys.rateIndex, fingerprint, options.baseUrl);
        indexed = true;
      }
      const done = await stepOnce({ ok: taken.ok, limited: taken.limited, ...(taken.hint ? { hint: taken.hint } : {}) });
      if (!done) throw new Error('other processes kept writing the rate state');
      synced = true;
      const pauseMs = hintPauseMs(taken.hint);
      if (pauseMs > 0 && options.pause) await options.pause(pauseMs);
    } catch (error) {
      // Kept for the next report: what the API answered still counts once Redis takes it.
      pending = { ok: pending.ok + taken.ok, limited: pending.limited + taken.limited, hint: pending.hint ?? taken.hint };
      options.logger?.warn({ err: toError(error).message }, 'adaptive rate limit: could not report calls to Redis; trying again with the next report');
    }
  };

  /** One report at a time per process: they step the same state, and each waits for the one before. */
  const flush = (): Promise<void> => {
    running = running.then(report, report);
    return running;
  };

  const schedule = (): void => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      void flush();
    }, REPORT_MS);
    timer.unref();
  };

  return {
    rateKey,
    startRate: initialState(settings, 0).rate,
    ready: () => (readied ??= flush()),
    async observe(outcome) {
      if (outcome.kind !== 'response') return;
      const headers = headersOf(outcome);
      const hint = headers ? parseRateLimitHeaders(headers, Date.now()) : undefined;
      if (hint) pending.hint = hint;
      if (outcome.statusCode === 429) {
        pending.limited += 1;
        await flush();
      } else if (outcome.statusCode >= 200 && outcome.statusCode < 300) {
        pending.ok += 1;
        schedule();
      } else if (hint) schedule();
    },
    flush,
    async view() {
      const { now, fields } = await rateRead(redis, rateKey);
      return viewOf(fingerprint, options.baseUrl, decodeState(fields) ?? initialState(settings, now), now, settings);
    },
    async close() {
      if (timer) clearTimeout(timer);
      timer = undefined;
      await flush();
    },
  };
}

/** The adaptive settings of a resolved configuration. */
export function adaptiveSettingsOf(
  config: Pick<ResolvedConfig, 'rateLimitStart' | 'rateLimitCeiling' | 'rateLimitDurationMs' | 'rateLimitMemoryHours'>,
): AdaptiveSettings {
  return {
    start: config.rateLimitStart,
    ceiling: config.rateLimitCeiling,
    windowMs: config.rateLimitDurationMs,
    memoryMs: config.rateLimitMemoryHours * 3600_000,
  };
}

/** The API client with every answer of its calls counted by the adaptive limiter (the calls themselves unchanged). */
export function observedApi(api: DoubleTickApi, limiter: Pick<AdaptiveLimiter, 'observe'>): DoubleTickApi {
  const watch = async (outcome: Promise<ApiOutcome>): Promise<ApiOutcome> => {
    const answered = await outcome;
    await limiter.observe(answered);
    return answered;
  };
  return {
    ...api,
    unassign: (chat) => watch(api.unassign(chat)),
    assign: (chat, agent, options) => watch(api.assign(chat, agent, options)),
    customerDetails: (chat) => watch(api.customerDetails(chat)),
    listChats: (query) => watch(api.listChats(query)),
    listGroups: (query) => watch(api.listGroups(query)),
  };
}
