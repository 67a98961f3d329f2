/**
 * Configuration: `RunnerOptions` is what a user may set (all optional), `ResolvedConfig` what the code runs
 * with. `resolveConfig` is the only place that applies defaults and precedence: flag > env > .env file > default.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';

import { ConfigError } from '../domain/errors.js';
import { isCountryCode } from '../domain/phone.js';

export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

/** Hard limits on what a setting may be. Values outside are refused at start-up, not clamped. */
export const LIMITS = {
  rateLimitMax: { min: 0, max: 100_000 },
  rateLimitDurationMs: { min: 10, max: HOUR },
  workerConcurrency: { min: 1, max: 1_000 },
  maxAttempts: { min: 1, max: 50 },
  requestTimeoutMs: { min: 100, max: 5 * MINUTE },
  resultsTtlDays: { min: 1, max: 3_650 },
  duplicateWindowHours: { min: 0, max: 24 * 365 },
  maxFileMb: { min: 1, max: 100_000 },
  lockDurationMs: { min: SECOND, max: 30 * MINUTE },
} as const;

/** What a user may set, from flags, the environment or `.env`. */
export interface RunnerOptions {
  /** DoubleTick API key, sent raw in `Authorization`. Required for anything that calls the API. */
  readonly apiKey?: string;
  /** API base URL. @default 'https://public.doubletick.io' */
  readonly baseUrl?: string;
  /** Redis connection URL. @default 'redis://127.0.0.1:6379' */
  readonly redisUrl?: string;
  /**
   * REDIS_URL is one node of a Redis Cluster (any node: ioredis finds the others; user, password and rediss:
   * apply to all). Every key this tool and BullMQ write carries the `{QUEUE_PREFIX}` hash tag, so the queue and
   * all batch keys live in one slot and the Lua steps stay legal. @default false
   */
  readonly redisCluster?: boolean;
  /** Prefix of every Redis key this tool writes. @default 'bulk-unassign' */
  readonly queuePrefix?: string;
  /**
   * Calls allowed in any window of `rateLimitDurationMs`, across ALL workers (global: BullMQ limiter + pacer in
   * Redis). 0 turns the limit off (benchmarks only).
   * @default 1 — DoubleTick documents no limit for this endpoint; its strictest documented per-organisation
   * limit is 1 req/s, so we start there. Raise it once DoubleTick confirms a higher limit for your account.
   */
  readonly rateLimitMax?: number;
  /** Window of the rate limit, in milliseconds. @default 1000 */
  readonly rateLimitDurationMs?: number;
  /** Jobs one worker process runs at once. @default 4 — enough to keep a 1-5 req/s limit busy with slow answers. */
  readonly workerConcurrency?: number;
  /** HTTP attempts per chat before it is recorded as failed (transient errors only). @default 5 */
  readonly maxAttempts?: number;
  /** Timeout of one HTTP call, in milliseconds. @default 15000 */
  readonly requestTimeoutMs?: number;
  /** Directory reports are written to. @default './reports' */
  readonly reportsDir?: string;
  /** Days batch records stay in Redis after a batch finishes. @default 30 */
  readonly resultsTtlDays?: number;
  /** Uploading the same file content again within this many hours needs --force. 0 disables. @default 24 */
  readonly duplicateWindowHours?: number;
  /** Largest CSV accepted, in MiB. @default 512 */
  readonly maxFileMb?: number;
  /** ISO country for numbers written without a country code (e.g. IN). @default none */
  readonly defaultCountry?: string;
  /** pino log level. @default 'info' */
  readonly logLevel?: string;
  /**
   * How long a worker's lock on a job lasts without renewal, in milliseconds: a worker process that dies
   * (kill -9, lost host) holds its jobs this long, plus up to two stall checks, before another worker re-runs
   * them. Must exceed `requestTimeoutMs` by at least a second (see `lockDurationFor` in worker.ts for why).
   * @default derived from `requestTimeoutMs`: max(30 s, 2 × timeout + 5 s) — lower it only to recover faster.
   */
  readonly lockDurationMs?: number;
  /**
   * Shared secret for `bulk-unassign serve` (web console and HTTP API): Bearer token or login form. At least 16
   * characters. @default none — `serve` refuses to start without one unless `--demo` on loopback.
   */
  readonly consoleToken?: string;
  /**
   * Where a scheduled batch's summary JSON is POSTed when it finishes (http or https). Retried with backoff for
   * about an hour, never holding up the batch. @default none — no notification.
   */
  readonly notifyWebhookUrl?: string;
}

/** Everything the code needs, validated. */
export interface ResolvedConfig {
  readonly apiKey: string | undefined;
  readonly baseUrl: string;
  readonly redisUrl: string;
  readonly redisCluster: boolean;
  readonly queuePrefix: string;
  readonly rateLimitMax: number;
  readonly rateLimitDurationMs: number;
  readonly workerConcurrency: number;
  readonly maxAttempts: number;
  readonly requestTimeoutMs: number;
  readonly reportsDir: string;
  readonly resultsTtlDays: number;
  readonly duplicateWindowHours: number;
  readonly maxFileMb: number;
  readonly defaultCountry: string | undefined;
  readonly logLevel: string;
  /** undefined = derived from requestTimeoutMs by the worker (`lockDurationFor`). */
  readonly lockDurationMs: number | undefined;
  readonly consoleToken: string | undefined;
  readonly notifyWebhookUrl: string | undefined;
}

export const DEFAULTS = {
  baseUrl: 'https://public.doubletick.io',
  redisUrl: 'redis://127.0.0.1:6379',
  redisCluster: false,
  queuePrefix: 'bulk-unassign',
  rateLimitMax: 1,
  rateLimitDurationMs: 1000,
  workerConcurrency: 4,
  maxAttempts: 5,
  requestTimeoutMs: 15_000,
  reportsDir: './reports',
  resultsTtlDays: 30,
  duplicateWindowHours: 24,
  maxFileMb: 512,
  logLevel: 'info',
} satisfies Partial<Record<keyof ResolvedConfig, string | number | boolean>>;

/** Environment variable for each option (the names are fixed: other tooling depends on them). */
export const ENV_NAMES = {
  apiKey: 'DOUBLETICK_API_KEY',
  baseUrl: 'DOUBLETICK_BASE_URL',
  redisUrl: 'REDIS_URL',
  redisCluster: 'REDIS_CLUSTER',
  queuePrefix: 'QUEUE_PREFIX',
  rateLimitMax: 'RATE_LIMIT_MAX',
  rateLimitDurationMs: 'RATE_LIMIT_DURATION_MS',
  workerConcurrency: 'WORKER_CONCURRENCY',
  maxAttempts: 'MAX_ATTEMPTS',
  requestTimeoutMs: 'REQUEST_TIMEOUT_MS',
  reportsDir: 'REPORTS_DIR',
  resultsTtlDays: 'RESULTS_TTL_DAYS',
  duplicateWindowHours: 'DUPLICATE_WINDOW_HOURS',
  maxFileMb: 'MAX_FILE_MB',
  defaultCountry: 'DEFAULT_COUNTRY',
  logLevel: 'LOG_LEVEL',
  lockDurationMs: 'LOCK_DURATION_MS',
  consoleToken: 'CONSOLE_TOKEN',
  notifyWebhookUrl: 'NOTIFY_WEBHOOK_URL',
} as const satisfies Record<keyof ResolvedConfig, string>;

type Source = Readonly<Record<string, string | undefined>>;
type IntKey = keyof typeof LIMITS;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Reads `.env` in `dir` if there is one (no I/O at import time: called by the CLI). */
export function readDotEnv(dir = process.cwd()): Record<string, string> {
  const path = `${dir}/.env`;
  if (!existsSync(path)) return {};
  return parseEnv(readFileSync(path, 'utf8')) as Record<string, string>;
}

function describe(value: unknown): string {
  return `\`${String(value)}\` (${typeof value})`;
}

function pick(key: keyof ResolvedConfig, flags: RunnerOptions, env: Source, file: Source): unknown {
  const flag = flags[key as keyof RunnerOptions];
  if (flag !== undefined) return flag;
  const name = ENV_NAMES[key];
  const fromEnv = env[name];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  const fromFile = file[name];
  if (fromFile !== undefined && fromFile !== '') return fromFile;
  return undefined;
}

function intSetting(key: IntKey, raw: unknown): number {
  const value = raw ?? DEFAULTS[key as keyof typeof DEFAULTS];
  const n = typeof value === 'number' ? value : Number(String(value).trim());
  const { min, max } = LIMITS[key];
  if (!Number.isInteger(n) || n < min || n > max) {
    const name = `${key}\` (${ENV_NAMES[key as keyof typeof ENV_NAMES]}`;
    throw new ConfigError(`Expected \`${name}) to be an integer from ${min} to ${max}, got ${describe(value)}`);
  }
  return n;
}

function urlSetting(key: 'baseUrl' | 'redisUrl', raw: unknown, protocols: string[]): string {
  const value = String(raw ?? DEFAULTS[key]);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`Expected \`${key}\` (${ENV_NAMES[key]}) to be a URL, got ${describe(value)}`);
  }
  if (!protocols.includes(url.protocol)) {
    throw new ConfigError(
      `Expected \`${key}\` (${ENV_NAMES[key]}) to use ${protocols.join(' or ')}, got ${describe(value)}`,
    );
  }
  return value.replace(/\/+$/, '');
}

function stringSetting(key: 'queuePrefix' | 'reportsDir' | 'logLevel', raw: unknown): string {
  const value = String(raw ?? DEFAULTS[key]).trim();
  if (key === 'queuePrefix' && !/^[A-Za-z0-9_.-]{1,64}$/.test(value)) {
    throw new ConfigError(
      `Expected \`queuePrefix\` (QUEUE_PREFIX) to be 1-64 letters, digits, '_', '.' or '-', got ${describe(value)}`,
    );
  }
  if (key === 'logLevel' && !LOG_LEVELS.includes(value)) {
    throw new ConfigError(`Expected \`logLevel\` (LOG_LEVEL) to be one of ${LOG_LEVELS.join(', ')}, got ${describe(value)}`);
  }
  if (value === '') throw new ConfigError(`Expected \`${key}\` (${ENV_NAMES[key]}) to be non-empty`);
  return value;
}

/** true/false (or 1/0, yes/no, on/off): a typo such as `ture` is refused, not read as false. */
function booleanSetting(key: 'redisCluster', raw: unknown): boolean {
  if (raw === undefined) return DEFAULTS[key];
  if (typeof raw === 'boolean') return raw;
  const value = String(raw).trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(value)) return true;
  if (['false', '0', 'no', 'off'].includes(value)) return false;
  throw new ConfigError(`Expected \`${key}\` (${ENV_NAMES[key]}) to be true or false, got ${describe(raw)}`);
}

function apiKeySetting(raw: unknown): string | undefined {
  if (raw === undefined) return undefined;
  const value = String(raw).trim();
  // A key pasted with a scheme would be sent verbatim and rejected with 401 on every chat: catch it here.
  if (/^(bearer|key)\s/i.test(value)) {
    throw new ConfigError('Expected `apiKey` (DOUBLETICK_API_KEY) to be the raw key (e.g. key_AbC...), without "Bearer"');
  }
  if (/\s/.test(value) || value === '') {
    throw new ConfigError('Expected `apiKey` (DOUBLETICK_API_KEY) to be a single token without spaces');
  }
  return value;
}

function countrySetting(raw: unknown): string | undefined {
  if (raw === undefined) return undefined;
  const value = String(raw).trim().toUpperCase();
  if (!isCountryCode(value)) {
    throw new ConfigError(`Expected \`defaultCountry\` (DEFAULT_COUNTRY) to be an ISO country code like IN, got ${describe(raw)}`);
  }
  return value;
}

/**
 * An explicit lock duration, or undefined for the derived default. A lock no longer than one HTTP call would let
 * a second worker re-run a chat whose first call is still going (two unassigns), so it must outlast the timeout.
 */
function lockDurationSetting(raw: unknown, requestTimeoutMs: number): number | undefined {
  if (raw === undefined) return undefined;
  const n = intSetting('lockDurationMs', raw);
  if (n < requestTimeoutMs + SECOND) {
    throw new ConfigError(
      `Expected \`lockDurationMs\` (LOCK_DURATION_MS) to be at least REQUEST_TIMEOUT_MS + 1000 (${requestTimeoutMs + SECOND}), got ${describe(raw)}`,
    );
  }
  return n;
}

/** A console token short enough to guess, or with spaces (a paste accident), is refused rather than trusted. */
function consoleTokenSetting(raw: unknown): string | undefined {
  if (raw === undefined) return undefined;
  const value = String(raw);
  if (value.length < 16 || /\s/.test(value)) {
    throw new ConfigError('Expected `consoleToken` (CONSOLE_TOKEN) to be at least 16 characters without spaces (e.g. `openssl rand -hex 24`)');
  }
  return value;
}

/** An optional webhook URL: http(s) only, so a typo like `hooks.example.com/x` fails at start-up, not at 2 a.m. */
function webhookUrlSetting(raw: unknown): string | undefined {
  if (raw === undefined) return undefined;
  const value = String(raw).trim();
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    // The URL may carry a token: show only its start.
    throw new ConfigError(`Expected \`notifyWebhookUrl\` (NOTIFY_WEBHOOK_URL) to be an http(s) URL, got \`${value.slice(0, 12)}…\``);
  }
  return value;
}

/**
 * The only place defaults and precedence live: flag > env > `.env` file > default. Validates everything
 * once, so the rest of the code can trust the values. Throws `ConfigError`.
 */
export function resolveConfig(flags: RunnerOptions = {}, env: Source = process.env, file: Source = {}): ResolvedConfig {
  const get = (key: keyof ResolvedConfig): unknown => pick(key, flags, env, file);
  const requestTimeoutMs = intSetting('requestTimeoutMs', get('requestTimeoutMs'));
  return {
    apiKey: apiKeySetting(get('apiKey')),
    baseUrl: urlSetting('baseUrl', get('baseUrl'), ['http:', 'https:']),
    redisUrl: urlSetting('redisUrl', get('redisUrl'), ['redis:', 'rediss:']),
    redisCluster: booleanSetting('redisCluster', get('redisCluster')),
    queuePrefix: stringSetting('queuePrefix', get('queuePrefix')),
    rateLimitMax: intSetting('rateLimitMax', get('rateLimitMax')),
    rateLimitDurationMs: intSetting('rateLimitDurationMs', get('rateLimitDurationMs')),
    workerConcurrency: intSetting('workerConcurrency', get('workerConcurrency')),
    maxAttempts: intSetting('maxAttempts', get('maxAttempts')),
    requestTimeoutMs,
    reportsDir: stringSetting('reportsDir', get('reportsDir')),
    resultsTtlDays: intSetting('resultsTtlDays', get('resultsTtlDays')),
    duplicateWindowHours: intSetting('duplicateWindowHours', get('duplicateWindowHours')),
    maxFileMb: intSetting('maxFileMb', get('maxFileMb')),
    defaultCountry: countrySetting(get('defaultCountry')),
    logLevel: stringSetting('logLevel', get('logLevel')),
    lockDurationMs: lockDurationSetting(get('lockDurationMs'), requestTimeoutMs),
    consoleToken: consoleTokenSetting(get('consoleToken')),
    notifyWebhookUrl: webhookUrlSetting(get('notifyWebhookUrl')),
  };
}

/** The API key, or a ConfigError saying how to set it. For commands that call the API. */
export function requireApiKey(config: ResolvedConfig): string {
  if (config.apiKey === undefined) {
    throw new ConfigError('DOUBLETICK_API_KEY is not set: export DOUBLETICK_API_KEY=key_... (or put it in .env)');
  }
  return config.apiKey;
}
