/**
 * Scenarios "throughput" (limit off) and "rate accuracy" (limit on): chats/s end to end against the stand-in
 * server, which runs in this process while every side runs in its own. Each side's result is checked against
 * what the server saw, so a fast but wrong run cannot pass.
 */
import type { MockApi } from '../src/mock-api.js';
import type { MessyCsv } from './messy-csv.js';
import { type BenchRedis, type ResultRow, runSide, SIZES, uniquePrefix } from './support.js';

interface OursRun {
  ms: number;
  status: string;
  counts: { valid: number; succeeded: number; failed: number };
  rateLimited: number;
  peakRssMb: number;
}
interface BareRun {
  ms: number;
  chats: number;
  completed?: number;
  ok?: number;
}

export interface ServerView {
  readonly requests: number;
  readonly distinct: number;
  readonly twice: number;
  readonly r429: number;
  readonly maxPerSecond: number;
}

export function serverView(api: MockApi): ServerView {
  const s = api.stats();
  const counts = Object.values(s.unassigned);
  return { requests: s.requests, distinct: counts.length, twice: counts.filter((n) => n > 1).length, r429: s.rateLimited, maxPerSecond: s.maxPerSecond };
}

/** Runs one side on a fresh prefix with fresh server stats; returns its result and what the server saw. */
async function side<T>(redis: BenchRedis, api: MockApi, name: string, params: object): Promise<{ run: T; server: ServerView }> {
  const prefix = uniquePrefix(name);
  api.reset();
  try {
    const run = await runSide<T>(name, { redisUrl: redis.url, prefix, apiUrl: api.url, ...params });
    return { run, server: serverView(api) };
  } finally {
    await redis.clean(prefix);
  }
}

/** Our worker is right only if every chat was unassigned exactly once and the batch says so. */
function oursExact(run: OursRun, server: ServerView, chats: number): string | undefined {
  if (run.status !== 'finished') return `batch ended ${run.status}`;
  if (run.counts.succeeded !== chats || server.distinct !== chats || server.twice !== 0) {
    return `succeeded ${run.counts.succeeded}, server unassigned ${server.distinct} (${server.twice} twice), expected ${chats}`;
  }
  return undefined;
}

export async function benchThroughput(redis: BenchRedis, api: MockApi, csv: MessyCsv, log: (s: string) => void): Promise<{ rows: ResultRow[]; detail: object }> {
  api.setRateLimit(null);
  const params = { csv: csv.file, keysFile: csv.keysFile, concurrency: SIZES.concurrency, rateLimitMax: 0 };
  log(`throughput: ours (${csv.valid} chats, concurrency ${SIZES.concurrency})…`);
  const ours = await side<OursRun>(redis, api, 'work-ours', params);
  log('throughput: bare BullMQ worker…');
  const bare = await side<BareRun>(redis, api, 'work-bare', params);
  log('throughput: p-limit loop, no queue…');
  const plimit = await side<BareRun>(redis, api, 'work-plimit', params);
  const rate = (ms: number): number => csv.valid / (ms / 1000);
  const wrong = oursExact(ours.run, ours.server, csv.valid);
  const bareOk = bare.run.completed === csv.valid && bare.server.distinct === csv.valid;
  const plimitOk = plimit.run.ok === csv.valid && plimit.server.distinct === csv.valid;
  const oursRate = rate(ours.run.ms);
  const rows: ResultRow[] = [
    {
      scenario: `throughput, limit off (${csv.valid.toLocaleString('en')} chats, concurrency ${SIZES.concurrency})`,
      unit: 'chats/s',
      ours: oursRate,
      baseline: rate(bare.run.ms),
      ratio: oursRate / rate(bare.run.ms),
      target: '≥ 0.90 × bare BullMQ worker',
      pass: wrong === undefined && bareOk && oursRate / rate(bare.run.ms) >= 0.9,
      ...(wrong || !bareOk ? { note: wrong ?? 'bare worker did not finish every chat' } : {}),
    },
    {
      scenario: 'throughput vs p-limit loop (no queue, no Redis)',
      unit: 'chats/s',
      ours: oursRate,
      baseline: rate(plimit.run.ms),
      ratio: oursRate / rate(plimit.run.ms),
      target: 'for reference',
      pass: null,
      ...(plimitOk ? {} : { note: 'p-limit loop did not unassign every chat' }),
    },
  ];
  return { rows, detail: { ours, bare, plimit } };
}

export async function benchRate(redis: BenchRedis, api: MockApi, csv: MessyCsv, log: (s: string) => void): Promise<{ rows: ResultRow[]; detail: object }> {
  const limit = SIZES.rateLimit;
  api.setRateLimit({ max: limit, windowMs: 1000 });
  log(`rate accuracy: ${csv.valid} chats at ${limit}/s…`);
  try {
    const ours = await side<OursRun>(redis, api, 'work-ours', { csv: csv.file, keysFile: csv.keysFile, concurrency: SIZES.concurrency, rateLimitMax: limit });
    return { rows: rateRows(`rate ${limit}/s, 1 process`, ours.run, ours.server, csv.valid, limit), detail: { ours } };
  } finally {
    api.setRateLimit(null);
  }
}

/** The three checks of a rate-limited run: achieved rate, no 429, busiest second within the limit. */
export function rateRows(label: string, run: { ms: number; status?: string; counts?: { succeeded: number } }, server: ServerView, chats: number, limit: number): ResultRow[] {
  const achieved = chats / (run.ms / 1000);
  const exact = server.distinct === chats && server.twice === 0 && (run.counts?.succeeded ?? chats) === chats;
  return [
    {
      scenario: `${label}: achieved rate`,
      unit: 'chats/s',
      ours: achieved,
      baseline: limit,
      ratio: achieved / limit,
      target: '≥ 0.97 × limit',
      pass: exact && achieved / limit >= 0.97,
      ...(exact ? {} : { note: `server unassigned ${server.distinct} (${server.twice} twice) of ${chats}` }),
    },
    { scenario: `${label}: 429 answers`, unit: 'count', ours: server.r429, baseline: null, ratio: null, target: '= 0', pass: server.r429 === 0 },
    {
      scenario: `${label}: busiest 1-s window at the server`,
      unit: 'calls',
      ours: server.maxPerSecond,
      baseline: limit,
      ratio: server.maxPerSecond / limit,
      target: '≤ limit',
      pass: server.maxPerSecond <= limit,
    },
  ];
}
