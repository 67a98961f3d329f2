/**
 * Configuration: `RunnerOptions` is what a user may set (all optional), `ResolvedConfig` what the code runs
 * with. `resolveConfig` is the only place that applies defaults and precedence: flag > env > .env file > default.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import { isIP } from 'node:net';
import { parseEnv } from 'node:util';

import { ConfigError } from '../domain/errors.js';
import { isCountryCode } from '../domain/phone.js';
import { readConsoleUsers } from './console-users.js';

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
  auditRetentionDays: { min: 1, max: 3_650 },
  maxBatchChats: { min: 0, max: 100_000_000 },
  approvalTimeoutHours: { min: 1, max: 24 * 365 },
  rateLimitStart: { min: 1, max: 100_000 },
  rateLimitCeiling: { min: 1, max: 100_000 },
} as const;

/** RATE_LIMIT_MEMORY_HOURS may be fractional (0.001 = 3.6 s, for tests); up to a year. */
export const RATE_LIMIT_MEMORY_LIMITS = { min: 0.0001, max: 24 * 365 } as const;

/** MAX_RATE_LIMIT_WAIT_MINUTES may be fractional (0.05 = 3 s, for tests); up to a week. */
export const MAX_RATE_LIMIT_WAIT_LIMITS = { min: 0, max: 7 * 24 * 60 } as const;

/** What a user may set, from flags, the environment or `.env`. */
export interface RunnerOptions {
  /** DoubleTick API key, sent raw in `Authorization`. Required for anything that calls the API. */
  readonly apiKey?: string;
  /**
   * A file holding the API key instead (a Docker or Kubernetes secret, e.g. /run/secrets/doubletick_api_key),
   * read once at start-up; a trailing newline is dropped. Setting both a key and a key file is refused.
   */
  readonly apiKeyFile?: string;
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
   * `'auto'`: the adaptive limit (execution/adaptive-rate.ts) finds the API's real limit, from RATE_LIMIT_START
   * up to RATE_LIMIT_CEILING, and remembers it per API base URL and key.
   */
  readonly rateLimitMax?: number | 'auto';
  /** RATE_LIMIT_MAX=auto: calls per window a key with nothing learned starts at. @default 1 */
  readonly rateLimitStart?: number;
  /** RATE_LIMIT_MAX=auto: the adaptive limit never goes above this many calls per window. @default 100 */
  readonly rateLimitCeiling?: number;
  /**
   * RATE_LIMIT_MAX=auto: hours what was learned is kept without calls; after that the part above the start
   * halves every further period. Fractions allowed. @default 24
   */
  readonly rateLimitMemoryHours?: number;
  /** Window of the rate limit, in milliseconds. @default 1000 */
  readonly rateLimitDurationMs?: number;
  /** Jobs one worker process runs at once. @default 4 — enough to keep a 1-5 req/s limit busy with slow answers. */
  readonly workerConcurrency?: number;
  /** HTTP attempts per chat before it is recorded as failed (transient errors only). @default 5 */
  readonly maxAttempts?: number;
  /** Timeout of one HTTP call, in milliseconds. @default 15000 */
  readonly requestTimeoutMs?: number;
  /**
   * A batch whose calls the API has answered with nothing but 429 for this many minutes (from the first 429 with
   * no success since) is stopped, resumable, instead of waiting in silence. Fractions are allowed (0.05 = 3 s,
   * which the tests use). 0 = wait for ever. @default 60
   */
  readonly maxRateLimitWaitMinutes?: number;
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
   * A file holding the console token instead (a Docker or Kubernetes secret, e.g. /run/secrets/console_token),
   * read once at start-up; a trailing newline is dropped. Setting both a token and a token file is refused.
   */
  readonly consoleTokenFile?: string;
  /**
   * Named console operators: a file of `name:sha256-of-token` lines (`bulk-unassign console-user add <name>`
   * writes them). Each operator logs in with their own token and is named in the audit trail; deleting a line
   * revokes one. Works with or without `consoleToken` (whose operator is called `console`). Checked at start-up
   * (an unreadable file or a malformed line is refused) and re-read by the console when it changes.
   */
  readonly consoleUsersFile?: string;
  /**
   * Proxies in front of `serve` whose X-Forwarded-For / X-Forwarded-Proto the console believes (Fastify's
   * `trustProxy`): `true` (every proxy), a number of proxy hops, or proxy addresses/CIDRs (`10.0.0.0/8,::1`,
   * also `loopback`, `linklocal`, `uniquelocal`). The console then throttles failed logins per client address,
   * not per proxy, and marks its cookie Secure when the proxy speaks https. @default false (no proxy trusted)
   */
  readonly trustProxy?: TrustProxy | string;
  /**
   * Where a scheduled batch's summary JSON is POSTed when it finishes (http or https). Retried with backoff for
   * up to about half an hour (12 attempts, RETRY_POLICIES.notify), never holding up the batch. @default none — no notification.
   */
  readonly notifyWebhookUrl?: string;
  /** Days audit entries are kept (the stream is trimmed as entries are added). @default 365 */
  readonly auditRetentionDays?: number;
  /**
   * A batch of more chats than this is held in `awaiting approval` (nothing is called) until an operator
   * approves it; `--approve` on an upload or run skips the hold for that batch. 0 = no hold. @default 10000
   */
  readonly maxBatchChats?: number;
  /** A held batch nobody approved within this many hours is rejected (every chat recorded as cancelled). @default 72 */
  readonly approvalTimeoutHours?: number;
}

/** Everything the code needs, validated. */
/** `trustProxy` as the console uses it: off/on, proxy hops in front of it, or the proxies' addresses/CIDRs. */
export type TrustProxy = boolean | number | readonly string[];

export interface ResolvedConfig {
  readonly apiKey: string | undefined;
  readonly baseUrl: string;
  readonly redisUrl: string;
  readonly redisCluster: boolean;
  readonly queuePrefix: string;
  /** Calls per window; with `rateLimitAuto` the ceiling (the outer cap BullMQ's limiter keeps). */
  readonly rateLimitMax: number;
  /** RATE_LIMIT_MAX=auto: the adaptive limit paces calls (start, ceiling and memory below). */
  readonly rateLimitAuto: boolean;
  readonly rateLimitStart: number;
  readonly rateLimitCeiling: number;
  readonly rateLimitMemoryHours: number;
  readonly rateLimitDurationMs: number;
  readonly workerConcurrency: number;
  readonly maxAttempts: number;
  readonly requestTimeoutMs: number;
  /** 0 = never stop a batch for 429s. */
  readonly maxRateLimitWaitMinutes: number;
  readonly reportsDir: string;
  readonly resultsTtlDays: number;
  readonly duplicateWindowHours: number;
  readonly maxFileMb: number;
  readonly defaultCountry: string | undefined;
  readonly logLevel: string;
  /**
   * LOG_LEVEL (or the logLevel option) was set, as opposed to `logLevel` being the default: the CLI then logs
   * at that level instead of its own quieter default.
   */
  readonly logLevelExplicit: boolean;
  /** undefined = derived from requestTimeoutMs by the worker (`lockDurationFor`). */
  readonly lockDurationMs: number | undefined;
  readonly consoleToken: string | undefined;
  /** Path of the console users file (checked readable and well-formed); undefined = only CONSOLE_TOKEN. */
  readonly consoleUsersFile: string | undefined;
  readonly trustProxy: TrustProxy;
  readonly notifyWebhookUrl: string | undefined;
  readonly auditRetentionDays: number;
  /** 0 = never hold a batch for approval. */
  readonly maxBatchChats: number;
  readonly approvalTimeoutHours: number;
}

export const DEFAULTS = {
  baseUrl: 'https://public.doubletick.io',
  redisUrl: 'redis://127.0.0.1:6379',
  redisCluster: false,
  queuePrefix: 'bulk-unassign',
  rateLimitMax: 1,
  rateLimitAuto: false,
  rateLimitStart: 1,
  rateLimitCeiling: 100,
  rateLimitMemoryHours: 24,
  rateLimitDurationMs: 1000,
  workerConcurrency: 4,
  maxAttempts: 5,
  requestTimeoutMs: 15_000,
  maxRateLimitWaitMinutes: 60,
  reportsDir: './reports',
  resultsTtlDays: 30,
  duplicateWindowHours: 24,
  maxFileMb: 512,
  logLevel: 'info',
  auditRetentionDays: 365,
  maxBatchChats: 10_000,
  approvalTimeoutHours: 72,
} satisfies Partial<Record<keyof ResolvedConfig, string | number | boolean>>;

/** Settings read from flags, the environment or `.env`: ResolvedConfig's, bar what is derived, plus the secret files. */
type SettingKey = Exclude<keyof ResolvedConfig, 'logLevelExplicit' | 'rateLimitAuto'> | 'apiKeyFile' | 'consoleTokenFile';

/** Environment variable for each option (the names are fixed: other tooling depends on them). */
export const ENV_NAMES = {
  apiKey: 'DOUBLETICK_API_KEY',
  /** The `_FILE` convention of Docker secrets. */
  apiKeyFile: 'DOUBLETICK_API_KEY_FILE',
  baseUrl: 'DOUBLETICK_BASE_URL',
  redisUrl: 'REDIS_URL',
  redisCluster: 'REDIS_CLUSTER',
  queuePrefix: 'QUEUE_PREFIX',
  rateLimitMax: 'RATE_LIMIT_MAX',
  rateLimitStart: 'RATE_LIMIT_START',
  rateLimitCeiling: 'RATE_LIMIT_CEILING',
  rateLimitMemoryHours: 'RATE_LIMIT_MEMORY_HOURS',
  rateLimitDurationMs: 'RATE_LIMIT_DURATION_MS',
  workerConcurrency: 'WORKER_CONCURRENCY',
  maxAttempts: 'MAX_ATTEMPTS',
  requestTimeoutMs: 'REQUEST_TIMEOUT_MS',
  maxRateLimitWaitMinutes: 'MAX_RATE_LIMIT_WAIT_MINUTES',
  reportsDir: 'REPORTS_DIR',
  resultsTtlDays: 'RESULTS_TTL_DAYS',
  duplicateWindowHours: 'DUPLICATE_WINDOW_HOURS',
  maxFileMb: 'MAX_FILE_MB',
  defaultCountry: 'DEFAULT_COUNTRY',
  logLevel: 'LOG_LEVEL',
  lockDurationMs: 'LOCK_DURATION_MS',
  consoleToken: 'CONSOLE_TOKEN',
  consoleTokenFile: 'CONSOLE_TOKEN_FILE',
  consoleUsersFile: 'CONSOLE_USERS_FILE',
  trustProxy: 'TRUST_PROXY',
  notifyWebhookUrl: 'NOTIFY_WEBHOOK_URL',
  auditRetentionDays: 'AUDIT_RETENTION_DAYS',
  maxBatchChats: 'MAX_BATCH_CHATS',
  approvalTimeoutHours: 'APPROVAL_TIMEOUT_HOURS',
} as const satisfies Record<SettingKey, string>;

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
  return `\`${settingText(value)}\` (${typeof value})`;
}

/** A setting's value and where it came from. */
interface Found {
  readonly value: unknown;
  readonly from: 'flag' | 'env' | 'file';
}

function locate(key: SettingKey, flags: RunnerOptions, env: Source, file: Source): Found | undefined {
  const flag = flags[key as keyof RunnerOptions];
  if (flag !== undefined) return { value: flag, from: 'flag' };
  const name = ENV_NAMES[key];
  const fromEnv = env[name];
  if (fromEnv !== undefined && fromEnv !== '') return { value: fromEnv, from: 'env' };
  const fromFile = file[name];
  if (fromFile !== undefined && fromFile !== '') return { value: fromFile, from: 'file' };
  return undefined;
}

/** CLI flags that messages about the API key name. The key itself has no flag: a command line shows in `ps` and shell history. */
const FLAG_NAMES: Partial<Record<SettingKey, string>> = { apiKeyFile: '--api-key-file' };

/** Where a setting came from, in words a user can act on: `--api-key-file`, `DOUBLETICK_API_KEY in .env` … */
function sourceOf(key: SettingKey, found: Found): string {
  if (found.from === 'flag') return FLAG_NAMES[key] ?? `the \`${key}\` option`;
  return found.from === 'env' ? `${ENV_NAMES[key]} (environment)` : `${ENV_NAMES[key]} in .env`;
}

/** A setting's raw value as text: flags and .env give strings, defaults and callers may give numbers or booleans. */
function settingText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  return value === undefined || value === null ? '' : JSON.stringify(value);
}

function intSetting(key: IntKey, raw: unknown): number {
  const value = raw ?? DEFAULTS[key as keyof typeof DEFAULTS];
  const n = typeof value === 'number' ? value : Number(settingText(value).trim());
  const { min, max } = LIMITS[key];
  if (!Number.isInteger(n) || n < min || n > max) {
    const name = `${key}\` (${ENV_NAMES[key as keyof typeof ENV_NAMES]}`;
    throw new ConfigError(`Expected \`${name}) to be an integer from ${min} to ${max}, got ${describe(value)}`);
  }
  return n;
}

/** MAX_RATE_LIMIT_WAIT_MINUTES: a number of minutes, fractions allowed. */
function rateLimitWaitSetting(raw: unknown): number {
  const value = raw ?? DEFAULTS.maxRateLimitWaitMinutes;
  const text = typeof value === 'number' ? '' : settingText(value).trim();
  const n = typeof value === 'number' ? value : text === '' ? Number.NaN : Number(text);
  const { min, max } = MAX_RATE_LIMIT_WAIT_LIMITS;
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new ConfigError(
      `Expected \`maxRateLimitWaitMinutes\` (MAX_RATE_LIMIT_WAIT_MINUTES) to be a number of minutes from ${min} to ${max} (0 = never stop), got ${describe(value)}`,
    );
  }
  return n;
}

/** RATE_LIMIT_MEMORY_HOURS: a number of hours, fractions allowed. */
function rateMemorySetting(raw: unknown): number {
  const value = raw ?? DEFAULTS.rateLimitMemoryHours;
  const text = typeof value === 'number' ? '' : settingText(value).trim();
  const n = typeof value === 'number' ? value : text === '' ? Number.NaN : Number(text);
  const { min, max } = RATE_LIMIT_MEMORY_LIMITS;
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new ConfigError(`Expected \`rateLimitMemoryHours\` (RATE_LIMIT_MEMORY_HOURS) to be a number of hours from ${min} to ${max}, got ${describe(value)}`);
  }
  return n;
}

/**
 * RATE_LIMIT_MAX and the adaptive settings: a number keeps the fixed limit; `auto` turns the adaptive limit on,
 * with the ceiling as the outer cap (rateLimitMax). A start above the ceiling is refused, not clamped.
 */
function rateSettings(
  get: (key: SettingKey) => unknown,
): Pick<ResolvedConfig, 'rateLimitMax' | 'rateLimitAuto' | 'rateLimitStart' | 'rateLimitCeiling' | 'rateLimitMemoryHours'> {
  const raw = get('rateLimitMax');
  const auto = typeof raw === 'string' && raw.trim().toLowerCase() === 'auto';
  const rateLimitStart = intSetting('rateLimitStart', get('rateLimitStart'));
  const rateLimitCeiling = intSetting('rateLimitCeiling', get('rateLimitCeiling'));
  if (rateLimitStart > rateLimitCeiling) {
    throw new ConfigError(`RATE_LIMIT_START (${rateLimitStart}) is above RATE_LIMIT_CEILING (${rateLimitCeiling}): lower the start or raise the ceiling`);
  }
  const rateLimitMemoryHours = rateMemorySetting(get('rateLimitMemoryHours'));
  if (auto) return { rateLimitMax: rateLimitCeiling, rateLimitAuto: true, rateLimitStart, rateLimitCeiling, rateLimitMemoryHours };
  try {
    return { rateLimitMax: intSetting('rateLimitMax', raw), rateLimitAuto: false, rateLimitStart, rateLimitCeiling, rateLimitMemoryHours };
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    throw new ConfigError(`${error.message.replace(/, got /, ", or `auto` (find the API's limit, see RATE_LIMIT_CEILING), got ")}`);
  }
}

function urlSetting(key: 'baseUrl' | 'redisUrl', raw: unknown, protocols: string[]): string {
  const value = settingText(raw ?? DEFAULTS[key]);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`Expected \`${key}\` (${ENV_NAMES[key]}) to be a URL, got ${describe(value)}`);
  }
  if (!protocols.includes(url.protocol)) {
    throw new ConfigError(`Expected \`${key}\` (${ENV_NAMES[key]}) to use ${protocols.join(' or ')}, got ${describe(value)}`);
  }
  return value.replace(/\/+$/, '');
}

function stringSetting(key: 'queuePrefix' | 'reportsDir' | 'logLevel', raw: unknown): string {
  const value = settingText(raw ?? DEFAULTS[key]).trim();
  if (key === 'queuePrefix' && !/^[A-Za-z0-9_.-]{1,64}$/.test(value)) {
    throw new ConfigError(`Expected \`queuePrefix\` (QUEUE_PREFIX) to be 1-64 letters, digits, '_', '.' or '-', got ${describe(value)}`);
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
  const value = settingText(raw).trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(value)) return true;
  if (['false', '0', 'no', 'off'].includes(value)) return false;
  throw new ConfigError(`Expected \`${key}\` (${ENV_NAMES[key]}) to be true or false, got ${describe(raw)}`);
}

/** Messages name `what` (the setting, or the key file) and never the value: it is a secret. */
function apiKeySetting(raw: unknown, what = '`apiKey` (DOUBLETICK_API_KEY)'): string | undefined {
  if (raw === undefined) return undefined;
  const value = settingText(raw).trim();
  // A key pasted with a scheme would be sent verbatim and rejected with 401 on every chat: catch it here.
  if (/^(bearer|key)\s/i.test(value)) {
    throw new ConfigError(`Expected ${what} to be the raw key (e.g. key_AbC...), without "Bearer"`);
  }
  if (value === '') throw new ConfigError(`Expected ${what} to hold the key, got nothing`);
  if (/\s/.test(value)) throw new ConfigError(`Expected ${what} to be a single token without spaces`);
  return value;
}

/** An API key is a few dozen bytes: a bigger "key file" is the wrong path, and is not read whole into memory. */
const API_KEY_FILE_MAX_BYTES = 4096;

/**
 * The file's text, at most API_KEY_FILE_MAX_BYTES of it (the console token file has the same bound: a token is as
 * short). Errors name `what`, the path and errno code, never the contents.
 */
function readKeyFile(path: string, source: string, what = 'the API key file'): string {
  const fail = (why: string): ConfigError => new ConfigError(`Cannot read ${what} \`${path}\` (${source}): ${why}`);
  const buffer = Buffer.alloc(API_KEY_FILE_MAX_BYTES + 1);
  let length = 0;
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    while (length < buffer.length) {
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
    }
  } catch (error) {
    throw fail((error as NodeJS.ErrnoException).code ?? 'read error');
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  if (length > API_KEY_FILE_MAX_BYTES) throw fail(`larger than ${API_KEY_FILE_MAX_BYTES} bytes, not a key`);
  return buffer.toString('utf8', 0, length).replace(/\r?\n$/, '');
}

/**
 * The API key, from DOUBLETICK_API_KEY or from the file DOUBLETICK_API_KEY_FILE / --api-key-file names. Both set
 * is an error rather than a precedence rule: two sources that may disagree are a deployment mistake, and which
 * key a run used should never be a surprise.
 */
function resolveApiKey(key: Found | undefined, keyFile: Found | undefined): string | undefined {
  if (key !== undefined && keyFile !== undefined) {
    throw new ConfigError(
      `The API key is set twice, by ${sourceOf('apiKey', key)} and by ${sourceOf('apiKeyFile', keyFile)}: set one of DOUBLETICK_API_KEY or DOUBLETICK_API_KEY_FILE (--api-key-file)`,
    );
  }
  if (keyFile === undefined) return apiKeySetting(key?.value);
  const path = String(keyFile.value);
  const source = sourceOf('apiKeyFile', keyFile);
  return apiKeySetting(readKeyFile(path, source), `the API key file \`${path}\` (${source})`);
}

function countrySetting(raw: unknown): string | undefined {
  if (raw === undefined) return undefined;
  const value = settingText(raw).trim().toUpperCase();
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
function consoleTokenSetting(raw: unknown, what = '`consoleToken` (CONSOLE_TOKEN)'): string | undefined {
  if (raw === undefined) return undefined;
  const value = settingText(raw);
  if (value.length < 16 || /\s/.test(value)) {
    throw new ConfigError(`Expected ${what} to be at least 16 characters without spaces (e.g. \`openssl rand -hex 24\`)`);
  }
  return value;
}

/**
 * The console token, from CONSOLE_TOKEN or from the file CONSOLE_TOKEN_FILE names (a Docker secret). Both set is
 * an error, for the reason resolveApiKey gives: which token a console accepts should never be a surprise.
 */
function resolveConsoleToken(token: Found | undefined, tokenFile: Found | undefined): string | undefined {
  if (token !== undefined && tokenFile !== undefined) {
    throw new ConfigError(
      `The console token is set twice, by ${sourceOf('consoleToken', token)} and by ${sourceOf('consoleTokenFile', tokenFile)}: set one of CONSOLE_TOKEN or CONSOLE_TOKEN_FILE`,
    );
  }
  if (tokenFile === undefined) return consoleTokenSetting(token?.value);
  const path = settingText(tokenFile.value);
  const source = sourceOf('consoleTokenFile', tokenFile);
  return consoleTokenSetting(readKeyFile(path, source, 'the console token file'), `the console token file \`${path}\` (${source})`);
}

/** CONSOLE_USERS_FILE: the path, once the file was read and every line of it is well-formed. */
function consoleUsersFileSetting(found: Found | undefined): string | undefined {
  if (found === undefined) return undefined;
  const path = settingText(found.value).trim();
  readConsoleUsers(path, sourceOf('consoleUsersFile', found));
  return path;
}

/** Named ranges Fastify's proxy-address matching (@fastify/proxy-addr) understands besides addresses and CIDRs. */
const PROXY_RANGE_NAMES = ['loopback', 'linklocal', 'uniquelocal'];
/** Proxy hops beyond this are a typo, not a deployment. */
const MAX_PROXY_HOPS = 10;

/** One entry of a TRUST_PROXY list: a range name, an address, `address/prefix` or `IPv4/netmask`. */
function proxyAddressValid(entry: string): boolean {
  if (PROXY_RANGE_NAMES.includes(entry)) return true;
  const [address = '', mask, ...rest] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (mask === undefined) return true;
  if (/^\d{1,3}$/.test(mask)) return Number(mask) <= (family === 4 ? 32 : 128);
  return family === 4 && isIP(mask) === 4;
}

/**
 * TRUST_PROXY: unset, `false`, `off`, `no` or `0` trust no proxy; `true`, `on`, `yes` trust every proxy; another
 * whole number is how many proxy hops stand in front of the console; anything else is a comma-separated list of
 * proxy addresses/CIDRs. A value that is none of these is refused: a typo must not silently trust everyone.
 */
function trustProxySetting(raw: unknown): TrustProxy {
  if (raw === undefined || typeof raw === 'boolean') return raw ?? false;
  const fail = (): ConfigError =>
    new ConfigError(
      `Expected \`trustProxy\` (TRUST_PROXY) to be true, false, a number of proxy hops (0-${MAX_PROXY_HOPS}) or proxy addresses/CIDRs separated by commas, got ${describe(raw)}`,
    );
  const text = Array.isArray(raw) ? raw.map(String).join(',') : settingText(raw).trim();
  const word = text.toLowerCase();
  if (['false', 'off', 'no'].includes(word)) return false;
  if (['true', 'on', 'yes'].includes(word)) return true;
  if (/^\d+$/.test(text)) {
    const hops = Number(text);
    if (hops > MAX_PROXY_HOPS) throw fail();
    return hops === 0 ? false : hops;
  }
  const list = text
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  if (list.length === 0 || !list.every(proxyAddressValid)) throw fail();
  return list;
}

/** An optional webhook URL: http(s) only, so a typo like `hooks.example.com/x` fails at start-up, not at 2 a.m. */
function webhookUrlSetting(raw: unknown): string | undefined {
  if (raw === undefined) return undefined;
  const value = settingText(raw).trim();
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
  const find = (key: SettingKey): Found | undefined => locate(key, flags, env, file);
  const get = (key: SettingKey): unknown => find(key)?.value;
  const requestTimeoutMs = intSetting('requestTimeoutMs', get('requestTimeoutMs'));
  return {
    apiKey: resolveApiKey(find('apiKey'), find('apiKeyFile')),
    baseUrl: urlSetting('baseUrl', get('baseUrl'), ['http:', 'https:']),
    redisUrl: urlSetting('redisUrl', get('redisUrl'), ['redis:', 'rediss:']),
    redisCluster: booleanSetting('redisCluster', get('redisCluster')),
    queuePrefix: stringSetting('queuePrefix', get('queuePrefix')),
    ...rateSettings(get),
    rateLimitDurationMs: intSetting('rateLimitDurationMs', get('rateLimitDurationMs')),
    workerConcurrency: intSetting('workerConcurrency', get('workerConcurrency')),
    maxAttempts: intSetting('maxAttempts', get('maxAttempts')),
    requestTimeoutMs,
    maxRateLimitWaitMinutes: rateLimitWaitSetting(get('maxRateLimitWaitMinutes')),
    reportsDir: stringSetting('reportsDir', get('reportsDir')),
    resultsTtlDays: intSetting('resultsTtlDays', get('resultsTtlDays')),
    duplicateWindowHours: intSetting('duplicateWindowHours', get('duplicateWindowHours')),
    maxFileMb: intSetting('maxFileMb', get('maxFileMb')),
    defaultCountry: countrySetting(get('defaultCountry')),
    logLevel: stringSetting('logLevel', get('logLevel')),
    logLevelExplicit: get('logLevel') !== undefined,
    lockDurationMs: lockDurationSetting(get('lockDurationMs'), requestTimeoutMs),
    consoleToken: resolveConsoleToken(find('consoleToken'), find('consoleTokenFile')),
    consoleUsersFile: consoleUsersFileSetting(find('consoleUsersFile')),
    trustProxy: trustProxySetting(get('trustProxy')),
    notifyWebhookUrl: webhookUrlSetting(get('notifyWebhookUrl')),
    auditRetentionDays: intSetting('auditRetentionDays', get('auditRetentionDays')),
    maxBatchChats: intSetting('maxBatchChats', get('maxBatchChats')),
    approvalTimeoutHours: intSetting('approvalTimeoutHours', get('approvalTimeoutHours')),
  };
}

/** The API key, or a ConfigError saying how to set it. For commands that call the API. */
export function requireApiKey(config: ResolvedConfig): string {
  if (config.apiKey === undefined) {
    throw new ConfigError(
      'DOUBLETICK_API_KEY is not set: export DOUBLETICK_API_KEY=key_... (or put it in .env), or point DOUBLETICK_API_KEY_FILE / --api-key-file at a file holding it',
    );
  }
  return config.apiKey;
}
