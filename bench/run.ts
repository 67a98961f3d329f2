/**
 * `npm run bench`: every scenario side by side with its baseline, in one run, on this machine. Prints the
 * table, writes bench/results.json and, after a full run of every scenario, the table in BENCHMARKS.md.
 *
 *   BENCH_QUICK=1             small sizes (a smoke run of the same code; numbers are not comparable)
 *   BENCH_ONLY=ingest,rate    run only these scenarios (ingest, throughput, rate, scale, footprint, adaptive)
 *   REDIS_URL=redis://…       measure against that Redis (unique key prefixes, deleted after); default: a private
 *                             redis-server on a free port, so no other client moves the memory figures
 *
 * Exit code: 0 when every row with a target passes, 1 otherwise.
 */
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Redis } from 'ioredis';

import { startMockApi } from '../src/devtools/mock-api.js';
import { benchAdaptive } from './adaptive.js';
import { benchFootprint } from './footprint.js';
import { benchIngest } from './ingest.js';
import { type MessyCsv, writeMessyCsv } from './messy-csv.js';
import { benchScale } from './scale.js';
import { BENCH_KEY, type BenchRedis, openBenchRedis, QUICK, type ResultRow, SIZES } from './support.js';
import { markdownTable, textTable } from './table.js';
import { benchRate, benchThroughput, benchThroughputWithLatency } from './throughput.js';

const SCENARIOS = ['ingest', 'throughput', 'rate', 'scale', 'footprint', 'adaptive'] as const;
type Scenario = (typeof SCENARIOS)[number];

const BENCH_DIR = fileURLToPath(new URL('../../bench/', import.meta.url));
const RESULTS_JSON = join(BENCH_DIR, 'results.json');
const BENCHMARKS_MD = fileURLToPath(new URL('../../BENCHMARKS.md', import.meta.url));
const TABLE_START = '<!-- bench:table:start -->';
const TABLE_END = '<!-- bench:table:end -->';

function selected(): Scenario[] {
  const only = process.env.BENCH_ONLY?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (!only) return [...SCENARIOS];
  const unknown = only.filter((s) => !(SCENARIOS as readonly string[]).includes(s));
  if (unknown.length) throw new Error(`BENCH_ONLY: unknown scenario(s) ${unknown.join(', ')}; known: ${SCENARIOS.join(', ')}`);
  return only as Scenario[];
}

async function redisVersion(url: string): Promise<string> {
  const redis = new Redis(url);
  try {
    return /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? 'unknown';
  } finally {
    redis.disconnect();
  }
}

/** Replaces the table between the markers in BENCHMARKS.md (left alone if the markers are missing). */
function updateBenchmarksMd(table: string, when: string): boolean {
  let text: string;
  try {
    text = readFileSync(BENCHMARKS_MD, 'utf8');
  } catch {
    return false;
  }
  const start = text.indexOf(TABLE_START);
  const end = text.indexOf(TABLE_END);
  if (start < 0 || end < start) return false;
  const block = `${TABLE_START}\n_Last full run: ${when}._\n\n${table}\n${TABLE_END}`;
  writeFileSync(BENCHMARKS_MD, text.slice(0, start) + block + text.slice(end + TABLE_END.length));
  return true;
}

async function main(): Promise<number> {
  const scenarios = selected();
  const log = (s: string): void => void process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${s}\n`);
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'bulk-unassign-bench-'));
  const csvs = new Map<string, MessyCsv>();
  const csv = async (name: string, rows: number): Promise<MessyCsv> => {
    const known = csvs.get(name);
    if (known) return known;
    const made = await writeMessyCsv(join(dir, `${name}.csv`), join(dir, `${name}.keys`), rows);
    csvs.set(name, made);
    return made;
  };
  let redis: BenchRedis | undefined;
  const api = await startMockApi({ apiKey: BENCH_KEY });
  const slowApi = await startMockApi({ apiKey: BENCH_KEY, latencyMs: SIZES.apiLatencyMs });
  const rows: ResultRow[] = [];
  const details: Record<string, unknown> = {};
  try {
    redis = await openBenchRedis();
    log(
      `bench${QUICK ? ' (BENCH_QUICK)' : ''}: ${scenarios.join(', ')}; Redis ${redis.isPrivate ? 'private' : 'REDIS_URL'} ${redis.url}; stand-in API ${api.url}`,
    );
    const run: Record<Scenario, () => Promise<{ rows: ResultRow[]; detail: object }>> = {
      ingest: async () => benchIngest(redis as BenchRedis, await csv('ingest', SIZES.ingestRows), log),
      throughput: async () => {
        const fast = await benchThroughput(redis as BenchRedis, api, await csv('throughput', SIZES.throughputRows), log);
        const slow = await benchThroughputWithLatency(redis as BenchRedis, slowApi, await csv('latency', SIZES.latencyRows), log);
        return { rows: [...fast.rows, ...slow.rows], detail: { ...fast.detail, withLatency: slow.detail } };
      },
      rate: async () => benchRate(redis as BenchRedis, api, await csv('rate', SIZES.rateChats), log),
      scale: async () =>
        benchScale(
          redis as BenchRedis,
          api,
          slowApi,
          await csv('scale', SIZES.scaleRows),
          await csv('latency', SIZES.latencyRows),
          await csv('rate', SIZES.rateChats),
          log,
        ),
      footprint: async () => benchFootprint(redis as BenchRedis, api, await csv('footprint', SIZES.footprintChats), log),
      adaptive: async () => benchAdaptive(redis as BenchRedis, log),
    };
    for (const scenario of scenarios) {
      const t0 = Date.now();
      try {
        const result = await run[scenario]();
        rows.push(...result.rows);
        details[scenario] = { seconds: (Date.now() - t0) / 1000, ...result.detail };
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        log(`${scenario} FAILED: ${message}`);
        rows.push({ scenario, unit: '', ours: NaN, baseline: null, ratio: null, target: 'runs', pass: false, note: message.slice(0, 300) });
        details[scenario] = { error: message };
      }
    }
    const when = new Date().toISOString();
    const environment = {
      when,
      quick: QUICK,
      seconds: (Date.now() - started) / 1000,
      node: process.version,
      cpus: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}`,
      redis: `${await redisVersion(redis.url)} (${redis.isPrivate ? 'private, no AOF' : 'REDIS_URL'})`,
      sizes: SIZES,
    };
    process.stdout.write(`\n${textTable(rows)}\n\n`);
    writeFileSync(`${RESULTS_JSON}.tmp`, `${JSON.stringify({ environment, rows, details }, null, 2)}\n`);
    renameSync(`${RESULTS_JSON}.tmp`, RESULTS_JSON);
    log(`results: ${RESULTS_JSON} (${environment.seconds.toFixed(0)} s)`);
    if (!QUICK && scenarios.length === SCENARIOS.length) {
      const md = `${markdownTable(rows)}\n\nNode ${environment.node}, ${environment.cpus}, Redis ${environment.redis}; whole run ${environment.seconds.toFixed(0)} s.`;
      if (updateBenchmarksMd(md, when)) log(`table written to ${BENCHMARKS_MD}`);
    }
    return rows.every((r) => r.pass !== false) ? 0 : 1;
  } finally {
    await api.close();
    await slowApi.close();
    await redis?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

process.exitCode = await main();
