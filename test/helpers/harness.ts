/**
 * Test harness: a context on a unique key prefix, a stand-in API, a temp reports dir — and cleanup of all three.
 * Real Redis, real HTTP, real BullMQ; nothing mocked.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Redis } from 'ioredis';

import type { BatchRecord } from '../../src/store/batch-store.js';
import { type RunnerOptions, resolveConfig, type ResolvedConfig } from '../../src/config/config.js';
import { type Context, makeContext } from '../../src/runtime/context.js';
import { openCsvSource } from '../../src/ingest/csv-source.js';
import { ingest, type IngestOptions } from '../../src/ingest/enqueue.js';
import { type Logger, silentLogger } from '../../src/config/logger.js';
import { type MockApi, type MockApiOptions, startMockApi } from '../../src/devtools/mock-api.js';
import { type RunningWorker, startWorker } from '../../src/execution/worker.js';
import { jobTable } from '../../jobs/index.js';
import { eventually } from './eventually.js';

export const TEST_KEY = 'key_test_0123456789abcdef';

export function redisUrl(): string {
  return process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
}

export function uniquePrefix(label = 't'): string {
  return `test-${label}-${randomBytes(4).toString('hex')}`;
}

/** Deletes every key under a prefix (SCAN, never KEYS, so a shared Redis is not blocked). */
export async function deletePrefix(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `{${prefix}}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

export interface TestEnv {
  readonly api: MockApi;
  readonly config: ResolvedConfig;
  readonly ctx: Context;
  readonly dir: string;
  /** Writes a CSV into the temp dir and returns its path. */
  csv(name: string, text: string): string;
  /** Ingests a CSV file as a batch (not waiting for it). */
  ingestCsv(file: string, opts?: Partial<IngestOptions> & { waba?: string }): Promise<BatchRecord>;
  /** Starts an in-process worker (closed by cleanup). */
  worker(): RunningWorker;
  /** Polls until the batch is in one of `statuses`. */
  waitFor(batchId: string, statuses?: readonly string[], timeoutMs?: number): Promise<BatchRecord>;
  cleanup(): Promise<void>;
}

export interface TestEnvOptions {
  readonly api?: Partial<MockApiOptions>;
  readonly config?: RunnerOptions;
  /** Logger of the context (and so of its workers). @default silent */
  readonly logger?: Logger;
}

/** `make()`'s value; if it throws, the server is closed before the error goes on. */
async function closedOnError<T>(server: { close(): Promise<void> }, make: () => T): Promise<T> {
  try {
    return make();
  } catch (error) {
    await server.close();
    throw error;
  }
}

export async function makeTestEnv(opts: TestEnvOptions = {}): Promise<TestEnv> {
  const api = await startMockApi({ apiKey: TEST_KEY, ...opts.api });
  const dir = mkdtempSync(join(tmpdir(), 'bulk-unassign-test-'));
  const prefix = uniquePrefix();
  // A configuration the checks refuse fails the test without leaving the stand-in server listening (jest would
  // then not exit).
  const config = await closedOnError(api, () =>
    resolveConfig(
      {
        apiKey: TEST_KEY,
        baseUrl: api.url,
        redisUrl: redisUrl(),
        queuePrefix: prefix,
        rateLimitMax: 0,
        workerConcurrency: 8,
        maxAttempts: 3,
        requestTimeoutMs: 1000,
        reportsDir: join(dir, 'reports'),
        ...opts.config,
      },
      {},
    ),
  );
  const ctx = makeContext(config, opts.logger ?? silentLogger());
  const workers: RunningWorker[] = [];
  const env: TestEnv = {
    api,
    config,
    ctx,
    dir,
    csv(name, text) {
      const file = join(dir, name);
      writeFileSync(file, text);
      return file;
    },
    async ingestCsv(file, o = {}) {
      const source = await openCsvSource({
        file,
        maxFileBytes: 64 * 1024 * 1024,
        maxRecordBytes: 1024 * 1024,
        maxColumns: 1000,
        ...(o.waba ? { defaultWaba: o.waba } : {}),
      });
      return ingest(ctx, source, { batch: { kind: 'csv', source: file }, duplicateWindowHours: 0, ...o });
    },
    worker() {
      const w = startWorker(ctx, jobTable, { sweepIntervalMs: 1000 });
      workers.push(w);
      return w;
    },
    async waitFor(batchId, statuses = ['finished', 'cancelled', 'stopped'], timeoutMs = 60_000) {
      let last: BatchRecord | undefined;
      return eventually(
        async () => {
          last = await ctx.batches.require(batchId);
          return statuses.includes(last.status) && last;
        },
        {
          timeoutMs,
          intervalMs: 100,
          message: () => `batch ${batchId} to be ${statuses.join(' or ')} (still ${last?.status}, done ${last?.done}/${last?.counts.valid})`,
        },
      );
    },
    async cleanup() {
      await Promise.all(workers.map((w) => w.close(true)));
      await ctx.close();
      await api.close();
      await deletePrefix(config.redisUrl, prefix);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return env;
}

/** n distinct valid Indian mobile numbers, digits only. */
export function phones(n: number, start = 0): string[] {
  return Array.from({ length: n }, (_, i) => `9198${String(10_000_000 + start + i).slice(-8)}`);
}

/** Waits until no job of the env's queue is waiting or running (the chats of a stopped batch are parked, not queued). */
export async function waitForQuiet(env: TestEnv): Promise<void> {
  let counts: Record<string, number> = {};
  await eventually(
    async () => {
      counts = await env.ctx.queue.getJobCounts('active', 'waiting', 'prioritized', 'delayed');
      return Object.values(counts).every((n) => n === 0);
    },
    { timeoutMs: 20_000, message: () => `the queue to be quiet (still ${JSON.stringify(counts)})` },
  );
}
