/**
 * The sides of the benchmark, each run in its own process by `runSide` (support.ts) so its CPU time and peak
 * RSS are its own: `node build/bench/sides.js <side> '<json params>'` prints one JSON result line on stdout.
 *
 *   ingest-ours   openCsvSource + ingest() of the messy CSV (our whole ingest path)
 *   ingest-raw    BullMQ addBulk of the same jobs (same ids, data and options), chunks of 1000
 *   work-ours     ingest, then startWorker until the batch is finished (optionally measuring Redis memory)
 *   work-bare     a bare BullMQ Worker doing the same got call for the same jobs
 *   work-plimit   the same got calls in a p-limit loop, no queue at all
 */
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import type { Queue } from 'bullmq';
import { Redis } from 'ioredis';

import { newBatchId } from '../src/store/batch-store.js';
import { allBatchKeys, makeKeys, QUEUE_NAME } from '../src/store/keys.js';
import { JOB_UNASSIGN, unassignJobOptions } from '../src/store/queue.js';
import { chatFromKey } from '../src/domain/chat.js';
import { benchConfig, BENCH_KEY, waitUntil } from './support.js';

// Everything else is imported inside the side that needs it: a side's peak RSS should not include modules only
// another side uses (got and the worker are not part of ingest, csv-parse and libphonenumber not of raw addBulk).

/** Same as src/runtime/context.ts BACKOFF_DELAY_MS; job options must equal ours byte for byte. */
const POLICY = { maxAttempts: 3, backoffDelayMs: 1000 };
/** Raw baseline: chunks of 1000, a few in flight so Redis never waits for the client. */
const RAW_CHUNK = 1000;
const RAW_IN_FLIGHT = 4;

interface Common {
  readonly redisUrl: string;
  readonly prefix: string;
}
interface IngestParams extends Common {
  readonly csv: string;
  readonly keysFile: string;
}
interface WorkParams extends Common {
  readonly apiUrl: string;
  readonly csv: string;
  readonly keysFile: string;
  readonly concurrency: number;
  readonly rateLimitMax?: number;
  readonly measureMemory?: boolean;
}

/**
 * A full garbage collection, right before a side starts its CPU clock: what the set-up left behind (our side's
 * ingest of the file, the bare side's addBulk) is collected before the clock starts, not charged to the work.
 */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

/** CPU time (user + system) this process spent since `since`, in ms. */
function cpuMsSince(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
}

function peakRssMb(): number {
  return process.resourceUsage().maxRSS / 1024; // maxRSS is in KiB
}

async function* lines(file: string): AsyncIterable<string> {
  for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) if (line !== '') yield line;
}

/** Chunks of `size` from an async iterable (only one chunk in memory at a time). */
async function* chunks<T>(items: AsyncIterable<T>, size: number): AsyncIterable<T[]> {
  let chunk: T[] = [];
  for await (const item of items) {
    chunk.push(item);
    if (chunk.length === size) {
      yield chunk;
      chunk = [];
    }
  }
  if (chunk.length > 0) yield chunk;
}

function connect(url: string): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: null });
  redis.on('error', () => undefined);
  return redis;
}

/** The raw baseline's enqueue: the same job ids, data and options as ours, RAW_IN_FLIGHT addBulk calls at a time. */
async function addBulkRaw(queue: Queue, batchId: string, keysFile: string): Promise<number> {
  const inFlight = new Set<Promise<unknown>>();
  let position = 0;
  for await (const chunk of chunks(lines(keysFile), RAW_CHUNK)) {
    const start = position;
    position += chunk.length;
    const p = queue.addBulk(chunk.map((k, i) => ({ name: JOB_UNASSIGN, data: { b: batchId, k }, opts: unassignJobOptions(batchId, k, start + i, POLICY) })));
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
    if (inFlight.size >= RAW_IN_FLIGHT) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  return position;
}

async function ingestOurs(p: IngestParams): Promise<object> {
  const [{ makeContext }, { openCsvSource }, { ingest }, { silentLogger }] = await Promise.all([
    import('../src/runtime/context.js'),
    import('../src/ingest/csv-source.js'),
    import('../src/ingest/enqueue.js'),
    import('../src/config/logger.js'),
  ]);
  const ctx = makeContext(benchConfig(p.redisUrl, p.prefix, 'http://127.0.0.1:9'), silentLogger());
  try {
    const started = performance.now();
    let enqueueStarted = 0;
    let stagePeakRssMb = 0;
    const source = await openCsvSource({ file: p.csv, maxFileBytes: 4 * 1024 ** 3, maxRecordBytes: 1024 * 1024, maxColumns: 1000 });
    const batch = await ingest(ctx, source, {
      batch: { kind: 'csv', source: 'bench.csv' },
      duplicateWindowHours: 0,
      onProgress: (pr) => {
        if (pr.phase === 'enqueueing' && enqueueStarted === 0) [enqueueStarted, stagePeakRssMb] = [performance.now(), peakRssMb()];
      },
    });
    const ms = performance.now() - started;
    const jobs = await ctx.queue.getJobCountByTypes('prioritized', 'waiting');
    return { ms, stageMs: enqueueStarted - started, counts: batch.counts, jobs, peakRssMb: peakRssMb(), stagePeakRssMb };
  } finally {
    await ctx.close();
  }
}

async function ingestRaw(p: IngestParams): Promise<object> {
  const { Queue } = await import('bullmq');
  const connection = connect(p.redisUrl);
  const queue = new Queue(QUEUE_NAME, { connection, prefix: makeKeys(p.prefix).bullPrefix });
  try {
    const started = performance.now();
    const jobs = await addBulkRaw(queue, newBatchId(), p.keysFile);
    const ms = performance.now() - started;
    return { ms, jobs, queued: await queue.getJobCountByTypes('prioritized', 'waiting'), peakRssMb: peakRssMb() };
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

/** Sum of MEMORY USAGE over every key under the prefix, and the batch's own keys. */
async function memoryUsage(redis: Redis, prefix: string, batchId: string): Promise<{ allKeys: number; batchKeys: number; keys: number }> {
  const batchKeys = new Set(allBatchKeys(makeKeys(prefix).batch(batchId)));
  let cursor = '0';
  let all = 0;
  let own = 0;
  let keys = 0;
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `{${prefix}}:*`, 'COUNT', 1000);
    cursor = next;
    for (const key of found) {
      const bytes = Number((await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')) ?? 0);
      all += bytes;
      keys += 1;
      if (batchKeys.has(key)) own += bytes;
    }
  } while (cursor !== '0');
  return { allKeys: all, batchKeys: own, keys };
}

async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? NaN);
}

async function workOurs(p: WorkParams): Promise<object> {
  const [{ makeContext }, { openCsvSource }, { ingest }, { silentLogger }, { startWorker }, { jobTable }] = await Promise.all([
    import('../src/runtime/context.js'),
    import('../src/ingest/csv-source.js'),
    import('../src/ingest/enqueue.js'),
    import('../src/config/logger.js'),
    import('../src/execution/worker.js'),
    import('../jobs/index.js'),
  ]);
  const reportsDir = mkdtempSync(join(tmpdir(), 'bulk-unassign-bench-'));
  const config = benchConfig(p.redisUrl, p.prefix, p.apiUrl, { workerConcurrency: p.concurrency, rateLimitMax: p.rateLimitMax ?? 0, reportsDir });
  const ctx = makeContext(config, silentLogger());
  const probe = connect(p.redisUrl);
  try {
    await ctx.redis.ping();
    const memoryBefore = p.measureMemory ? await usedMemory(probe) : 0;
    const source = await openCsvSource({ file: p.csv, maxFileBytes: 4 * 1024 ** 3, maxRecordBytes: 1024 * 1024, maxColumns: 1000 });
    const batch = await ingest(ctx, source, { batch: { kind: 'csv', source: 'bench.csv' }, duplicateWindowHours: 0 });
    const started = Date.now();
    collectGarbage();
    const cpu = process.cpuUsage();
    const running = startWorker(ctx, jobTable);
    const done = await waitUntil(
      async () => {
        const b = await ctx.batches.require(batch.id);
        return b.status === 'finished' || b.status === 'stopped' || b.status === 'cancelled' ? b : undefined;
      },
      15 * 60_000,
      `batch ${batch.id}`,
    );
    const cpuMs = cpuMsSince(cpu);
    await running.close();
    const ms = (done.finishedAt ?? Date.now()) - started;
    const memory = p.measureMemory ? { before: memoryBefore, after: await usedMemory(probe), ...(await memoryUsage(probe, p.prefix, batch.id)) } : undefined;
    return {
      ms,
      cpuMsPerChat: cpuMs / done.counts.valid,
      status: done.status,
      counts: done.counts,
      attempts: done.attempts,
      rateLimited: done.rateLimited,
      memory,
      peakRssMb: peakRssMb(),
    };
  } finally {
    await ctx.close();
    probe.disconnect();
    rmSync(reportsDir, { recursive: true, force: true });
  }
}

/** The got call every side makes: same endpoint, body, headers, keep-alive and timeout as src/execution/api-client.ts. */
async function bareClient(apiUrl: string, concurrency: number) {
  const [{ default: got }, { unassignBody }] = await Promise.all([import('got'), import('../src/execution/api-client.js')]);
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency * 2 });
  const client = got.extend({
    prefixUrl: apiUrl,
    headers: { authorization: BENCH_KEY, 'user-agent': 'bulk-unassign-bench' },
    timeout: { request: 10_000 },
    retry: { limit: 0 },
    throwHttpErrors: false,
    agent: { http: agent },
  });
  return {
    unassign: async (chatKey: string): Promise<number> => (await client.post('team-member/unassign', { json: unassignBody(chatFromKey(chatKey)) })).statusCode,
    close: () => agent.destroy(),
  };
}

async function workBare(p: WorkParams): Promise<object> {
  const { Queue, Worker } = await import('bullmq');
  const connection = connect(p.redisUrl);
  const prefix = makeKeys(p.prefix).bullPrefix;
  const queue = new Queue(QUEUE_NAME, { connection, prefix });
  const api = await bareClient(p.apiUrl, p.concurrency);
  try {
    const total = await addBulkRaw(queue, newBatchId(), p.keysFile);
    let completed = 0;
    let failed = 0;
    const started = Date.now();
    collectGarbage();
    const cpu = process.cpuUsage();
    const worker = new Worker(
      QUEUE_NAME,
      async (job) => {
        const status = await api.unassign((job.data as { k: string }).k);
        if (status !== 201) throw new Error(`HTTP ${status}`);
      },
      { connection, prefix, concurrency: p.concurrency },
    );
    worker.on('completed', () => void (completed += 1));
    worker.on('failed', () => void (failed += 1));
    await waitUntil(async () => (completed + failed >= total ? true : undefined), 15 * 60_000, 'bare worker', 10);
    const ms = Date.now() - started;
    const cpuMs = cpuMsSince(cpu);
    await worker.close();
    return { ms, cpuMsPerChat: cpuMs / total, chats: total, completed, failed, peakRssMb: peakRssMb() };
  } finally {
    api.close();
    await queue.close();
    connection.disconnect();
  }
}

async function workPlimit(p: WorkParams): Promise<object> {
  const { default: pLimit } = await import('p-limit');
  const api = await bareClient(p.apiUrl, p.concurrency);
  try {
    const keys: string[] = [];
    for await (const k of lines(p.keysFile)) keys.push(k);
    const limit = pLimit(p.concurrency);
    const started = Date.now();
    collectGarbage();
    const cpu = process.cpuUsage();
    const statuses = await Promise.all(keys.map((k) => limit(() => api.unassign(k))));
    const ms = Date.now() - started;
    return { ms, cpuMsPerChat: cpuMsSince(cpu) / keys.length, chats: keys.length, ok: statuses.filter((s) => s === 201).length, peakRssMb: peakRssMb() };
  } finally {
    api.close();
  }
}

const SIDES: Record<string, (params: never) => Promise<object>> = {
  'ingest-ours': ingestOurs,
  'ingest-raw': ingestRaw,
  'work-ours': workOurs,
  'work-bare': workBare,
  'work-plimit': workPlimit,
};

const [side, json] = process.argv.slice(2);
const run = side ? SIDES[side] : undefined;
if (!run || !json) {
  process.stderr.write(`usage: node build/bench/sides.js <${Object.keys(SIDES).join('|')}> '<json params>'\n`);
  process.exit(2);
}
try {
  const result = await run(JSON.parse(json) as never);
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
} catch (error) {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
}
