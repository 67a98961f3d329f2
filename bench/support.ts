/**
 * What every benchmark scenario shares: sizes (full or BENCH_QUICK=1), the Redis to measure against (a private
 * redis-server, or REDIS_URL with a unique key prefix), config for a side, running a side in its own process
 * (so CPU, heap and peak RSS are that side's alone), and cleanup.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { setPriority } from 'node:os';
import { fileURLToPath } from 'node:url';

import { Redis } from 'ioredis';

import { type ResolvedConfig, resolveConfig, type RunnerOptions } from '../src/config/config.js';
import { type PrivateRedis, startPrivateRedis } from '../src/devtools/redis-server.js';

export const BENCH_KEY = 'key_bench_not_secret';
export const QUICK = process.env.BENCH_QUICK === '1';

/** Problem sizes. Full: the sizes the targets are stated for; quick: a smoke run of the same code in about a minute. */
export const SIZES = {
  ingestRows: QUICK ? 50_000 : 1_000_000,
  throughputRows: QUICK ? 5_000 : 20_000,
  /** Interleaved rounds of the throughput sides; the best of each counts. */
  throughputRounds: QUICK ? 1 : 3,
  rateChats: QUICK ? 600 : 3_000,
  scaleRows: QUICK ? 4_000 : 20_000,
  footprintChats: QUICK ? 10_000 : 100_000,
  /** Chats of the runs against a stand-in server that answers after `apiLatencyMs`, like a real API. */
  latencyRows: QUICK ? 2_000 : 5_000,
  apiLatencyMs: 25,
  /** Jobs one worker process runs at once, on every side of every throughput comparison. */
  concurrency: 16,
  rateLimit: 200,
} as const;

export interface BenchRedis {
  readonly url: string;
  /** True when the benchmark started its own redis-server (then memory figures are ours alone). */
  readonly isPrivate: boolean;
  /** Deletes every key under a prefix. */
  clean(prefix: string): Promise<void>;
  close(): Promise<void>;
}

/** REDIS_URL when set (keys under a unique prefix, deleted afterwards), else a private redis-server without AOF. */
export async function openBenchRedis(): Promise<BenchRedis> {
  const given = process.env.REDIS_URL;
  let server: PrivateRedis | undefined;
  // No AOF: a million jobs would be a multi-GB append-only file, and fsync is not what we are measuring.
  if (!given) server = await startPrivateRedis({ args: ['--appendonly', 'no'] });
  const url = given ?? (server as PrivateRedis).url;
  return {
    url,
    isPrivate: server !== undefined,
    clean: (prefix) => deletePrefix(url, prefix),
    close: async () => {
      await server?.close();
    },
  };
}

/** SCAN + UNLINK of `{prefix}:*` (never KEYS: the Redis may be shared). */
export async function deletePrefix(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 3 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `{${prefix}}:*`, 'COUNT', 5000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

export function uniquePrefix(label: string): string {
  return `bench-${label}-${randomBytes(3).toString('hex')}`;
}

/** Config for one side: the stand-in API, the bench Redis, a prefix of its own, quiet logs. */
export function benchConfig(redisUrl: string, prefix: string, apiUrl: string, extra: RunnerOptions = {}): ResolvedConfig {
  return resolveConfig(
    {
      apiKey: BENCH_KEY,
      baseUrl: apiUrl,
      redisUrl,
      queuePrefix: prefix,
      rateLimitMax: 0,
      workerConcurrency: SIZES.concurrency,
      maxAttempts: 3,
      requestTimeoutMs: 10_000,
      duplicateWindowHours: 0,
      logLevel: 'warn',
      ...extra,
    },
    {},
  );
}

/**
 * Niceness of every worker-side process. The stand-in API (this process) and Redis stand for other machines; on
 * a shared 2-core box a starved server would stamp a backlog of requests as one burst, and its "busiest second"
 * would measure its own lag instead of what the workers sent.
 */
export const WORKER_NICENESS = 5;

/** Lowers a child's priority to WORKER_NICENESS (best effort: a platform may refuse). */
export function deprioritise(pid: number | undefined): void {
  try {
    if (pid !== undefined) setPriority(pid, WORKER_NICENESS);
  } catch {
    /* not fatal: the numbers are just noisier */
  }
}

/** Runs `build/bench/sides.js <side> <params>` and returns the JSON object it prints last on stdout. */
export function runSide<T>(side: string, params: object, timeoutMs = 10 * 60_000): Promise<T> {
  const script = fileURLToPath(new URL('./sides.js', import.meta.url));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, side, JSON.stringify(params)], { stdio: ['ignore', 'pipe', 'pipe'] });
    deprioritise(child.pid);
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const last = out.trim().split('\n').at(-1) ?? '';
      if (code === 0 && last.startsWith('{')) resolve(JSON.parse(last) as T);
      else reject(new Error(`bench side ${side} exited ${code ?? signal}: ${err.trim().slice(-2000)}`));
    });
  });
}

/** Polls until `check` returns a value (not undefined) or the deadline passes. */
export async function waitUntil<T>(check: () => Promise<T | undefined>, timeoutMs: number, what: string, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** One line of the results table. `pass` is null for rows that inform without a target. */
export interface ResultRow {
  readonly scenario: string;
  readonly unit: string;
  readonly ours: number;
  readonly baseline: number | null;
  /** ours / baseline (or the measured figure against its limit), null when there is no baseline. */
  readonly ratio: number | null;
  readonly target: string;
  readonly pass: boolean | null;
  readonly note?: string;
}
