/**
 * Scenario "scale-out": 1, 2 and 4 worker processes (`node dist/src/main.js worker`, configured by environment
 * only, as an operator would run them) on one batch, limit off; then 4 processes under a 200/s limit, where the
 * global limit must still hold at the server. The queue is paused while the batch is ingested and the workers
 * start, so the clock measures work, not process start-up.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { makeContext } from '../src/runtime/context.js';
import { openCsvSource } from '../src/ingest/csv-source.js';
import { ingest } from '../src/ingest/enqueue.js';
import { silentLogger } from '../src/config/logger.js';
import type { MockApi } from '../src/devtools/mock-api.js';
import type { MessyCsv } from './messy-csv.js';
import { benchConfig, BENCH_KEY, type BenchRedis, deprioritise, type ResultRow, SIZES, uniquePrefix, waitUntil } from './support.js';
import { rateRows, serverView, type ServerView } from './throughput.js';

const CLI = fileURLToPath(new URL('../src/main.js', import.meta.url));

/** Starts `bulk-unassign worker` with the environment an operator would set; resolves once it says it started. */
function startWorkerProcess(env: Record<string, string>, cwd: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'worker'], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      cwd,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    deprioritise(child.pid);
    let err = '';
    const onData = (d: Buffer): void => {
      err += d.toString();
      if (err.includes('worker started')) resolve(child);
    };
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`worker exited ${code} before starting: ${err.slice(-1000)}`)));
  });
}

async function stopWorkerProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  await exited;
  clearTimeout(timer);
}

interface ScaleRun {
  readonly ms: number;
  readonly chats: number;
  readonly succeeded: number;
  readonly status: string;
  readonly server: ServerView;
}

/** One batch through `processes` worker processes. */
export async function runWithProcesses(redis: BenchRedis, api: MockApi, csv: MessyCsv, processes: number, rateLimitMax: number): Promise<ScaleRun> {
  const prefix = uniquePrefix(`scale${processes}`);
  const dir = mkdtempSync(join(tmpdir(), 'bulk-unassign-bench-scale-'));
  const config = benchConfig(redis.url, prefix, api.url, { rateLimitMax, reportsDir: join(dir, 'reports') });
  const ctx = makeContext(config, silentLogger());
  const workers: ChildProcess[] = [];
  api.reset();
  try {
    await ctx.queue.pause();
    const source = await openCsvSource({ file: csv.file, maxFileBytes: 4 * 1024 ** 3, maxRecordBytes: 1024 * 1024, maxColumns: 1000 });
    const batch = await ingest(ctx, source, { batch: { kind: 'csv', source: 'bench.csv' }, duplicateWindowHours: 0 });
    const env = {
      REDIS_URL: redis.url,
      QUEUE_PREFIX: prefix,
      DOUBLETICK_API_KEY: BENCH_KEY,
      DOUBLETICK_BASE_URL: api.url,
      RATE_LIMIT_MAX: String(rateLimitMax),
      RATE_LIMIT_DURATION_MS: '1000',
      WORKER_CONCURRENCY: String(SIZES.concurrency),
      MAX_ATTEMPTS: '3',
      REQUEST_TIMEOUT_MS: '10000',
      REPORTS_DIR: join(dir, 'reports'),
      LOG_LEVEL: 'warn',
    };
    for (let i = 0; i < processes; i += 1) workers.push(await startWorkerProcess(env, dir));
    const started = Date.now();
    await ctx.queue.resume();
    const done = await waitUntil(
      async () => {
        const b = await ctx.batches.require(batch.id);
        return b.status === 'finished' || b.status === 'stopped' || b.status === 'cancelled' ? b : undefined;
      },
      10 * 60_000,
      `batch ${batch.id} with ${processes} worker processes`,
    );
    return {
      ms: (done.finishedAt ?? Date.now()) - started,
      chats: done.counts.valid,
      succeeded: done.counts.succeeded,
      status: done.status,
      server: serverView(api),
    };
  } finally {
    await Promise.all(workers.map(stopWorkerProcess));
    await ctx.close();
    await redis.clean(prefix);
    rmSync(dir, { recursive: true, force: true });
  }
}

function scaleRows(runs: Record<number, ScaleRun>, label: string): ResultRow[] {
  const rate = (r: ScaleRun): number => r.chats / (r.ms / 1000);
  const one = runs[1] as ScaleRun;
  return [1, 2, 4].map((n) => {
    const r = runs[n] as ScaleRun;
    const exact = r.status === 'finished' && r.succeeded === r.chats && r.server.distinct === r.chats && r.server.twice === 0;
    return {
      scenario: `scale-out: ${n} worker process${n > 1 ? 'es' : ''}, limit off${label}`,
      unit: 'chats/s',
      ours: rate(r),
      baseline: rate(one),
      ratio: rate(r) / rate(one),
      target: exact ? 'for reference (vs 1 process)' : 'exact counts',
      pass: exact ? null : false,
      ...(exact ? {} : { note: `status ${r.status}, succeeded ${r.succeeded}, server ${r.server.distinct} (${r.server.twice} twice) of ${r.chats}` }),
    };
  });
}

async function scaleSeries(redis: BenchRedis, api: MockApi, csv: MessyCsv, label: string, log: (s: string) => void): Promise<Record<number, ScaleRun>> {
  api.setRateLimit(null);
  const runs: Record<number, ScaleRun> = {};
  for (const n of [1, 2, 4]) {
    log(`scale-out: ${n} worker process(es), limit off${label}, ${csv.valid} chats…`);
    runs[n] = await runWithProcesses(redis, api, csv, n, 0);
  }
  return runs;
}

/**
 * Limit off against the instant stand-in server (CPU-bound: on a 2-core machine more processes only share the
 * same cores), the same against a server answering in SIZES.apiLatencyMs (latency-bound, like the real API: more
 * processes, more calls in flight), and 4 processes under the global limit.
 */
export async function benchScale(
  redis: BenchRedis,
  api: MockApi,
  slowApi: MockApi,
  csv: MessyCsv,
  slowCsv: MessyCsv,
  rateCsv: MessyCsv,
  log: (s: string) => void,
): Promise<{ rows: ResultRow[]; detail: object }> {
  const runs = await scaleSeries(redis, api, csv, '', log);
  const slowLabel = `, API answering in ${SIZES.apiLatencyMs} ms`;
  const slowRuns = await scaleSeries(redis, slowApi, slowCsv, slowLabel, log);
  const rows = [...scaleRows(runs, ''), ...scaleRows(slowRuns, slowLabel)];
  const limit = SIZES.rateLimit;
  api.setRateLimit({ max: limit, windowMs: 1000 });
  try {
    log(`scale-out: 4 worker processes, limit ${limit}/s, ${rateCsv.valid} chats…`);
    const limited = await runWithProcesses(redis, api, rateCsv, 4, limit);
    rows.push(...rateRows(`rate ${limit}/s, 4 processes`, { ms: limited.ms, counts: { succeeded: limited.succeeded } }, limited.server, limited.chats, limit));
    return { rows, detail: { runs, slowRuns, limited } };
  } finally {
    api.setRateLimit(null);
  }
}
