/**
 * `demo`: the whole pipeline, end to end, against the bundled stand-in API — no account, and a private Redis
 * when none is running. It then checks the report against what the stand-in server saw, so the demo is also a
 * smoke test. `mock-api`: serve the stand-in on its own, for trying `upload` + `worker` by hand.
 */
import { fileURLToPath } from 'node:url';

import type { Flags } from '../args.js';
import { resolveConfig } from '../../config/config.js';
import { UsageError } from '../../domain/errors.js';
import { type LimitStep, type MockApi, parseLimitSchedule, startMockApi } from '../../devtools/mock-api.js';
import { redisAnswers } from '../../store/redis.js';
import { type PrivateRedis, startPrivateRedis } from '../../devtools/redis-server.js';
import { startWorker } from '../../execution/worker.js';
import { configFrom, ingestFile, type Io, openContext, waitForBatch } from './common.js';
import { cliActor } from '../../config/actor.js';
import { DEMO_FAULTS, DEMO_RATE } from '../../devtools/demo-data.js';
import { serveOptions, serveUntilSignal } from './serve.js';
import { Status } from '../../domain/lifecycle.js';
import { describeBatch } from '../../app/views.js';

const DEMO_KEY = 'key_demo_not_secret';

function demoCsvPath(): string {
  return fileURLToPath(new URL('../../../../fixtures/demo.csv', import.meta.url));
}

async function redisForDemo(url: string, io: Io): Promise<{ url: string; server?: PrivateRedis }> {
  if (await redisAnswers(url)) return { url };
  io.err(`no Redis at ${url}: starting a private redis-server for the demo`);
  const server = await startPrivateRedis();
  return { url: server.url, server };
}

/** The demo's own checks: report counts equal what the server saw, nobody unassigned twice, limit respected. */
export function demoChecks(batch: Awaited<ReturnType<typeof waitForBatch>>, api: MockApi): string[] {
  const stats = api.stats();
  const unassignedTwice = Object.values(stats.unassigned).filter((n) => n > 1).length;
  const distinct = Object.keys(stats.unassigned).length;
  const problems: string[] = [];
  if (batch.status !== Status.finished) problems.push(`batch ended ${batch.status}, expected finished`);
  if (distinct !== batch.counts.succeeded) problems.push(`server unassigned ${distinct} chats, report says ${batch.counts.succeeded}`);
  if (unassignedTwice > 0) problems.push(`${unassignedTwice} chat(s) unassigned twice`);
  if (stats.rateLimited > 0) problems.push(`${stats.rateLimited} request(s) over the rate limit (429)`);
  return problems;
}

export async function cmdDemo(_args: readonly string[], flags: Flags, io: Io): Promise<number> {
  const base = configFrom(flags, io);
  const redis = await redisForDemo(base.redisUrl, io);
  const api = await startMockApi({ apiKey: DEMO_KEY, rateLimit: { max: DEMO_RATE, windowMs: 1000 }, faults: DEMO_FAULTS });
  const config = resolveConfig(
    {
      apiKey: DEMO_KEY,
      baseUrl: api.url,
      redisUrl: redis.url,
      queuePrefix: `bulk-unassign-demo-${Date.now()}`,
      rateLimitMax: Math.floor(DEMO_RATE * 0.9),
      rateLimitDurationMs: 1000,
      workerConcurrency: 8,
      maxAttempts: 4,
      requestTimeoutMs: 2000,
      reportsDir: base.reportsDir,
    },
    {},
  );
  const ctx = await openContext(config);
  try {
    io.err(`demo: stand-in DoubleTick API at ${api.url} (limit ${DEMO_RATE}/s; some numbers fail on purpose), CSV ${demoCsvPath()}`);
    const batch = await ingestFile(ctx, demoCsvPath(), { ...flags, name: 'demo', force: true }, cliActor(io.env));
    const running = startWorker(ctx, io.jobs);
    const done = await waitForBatch(ctx, batch.id, flags);
    await running.close();
    io.out(describeBatch(done));
    io.out(`  report: ${config.reportsDir}/${done.id}/summary.md (failed.csv, rejected.csv beside it)`);
    const problems = demoChecks(done, api);
    const stats = api.stats();
    io.out(
      `  stand-in server saw ${stats.requests} calls: ${Object.entries(stats.byStatus)
        .map(([s, n]) => `${n}×${s}`)
        .join(', ')}; busiest second ${stats.maxPerSecond} calls`,
    );
    io.out(problems.length === 0 ? 'demo OK: report matches the server log; no chat unassigned twice; no 429' : `demo FAILED:\n  ${problems.join('\n  ')}`);
    // --console: keep the demo's Redis, stand-in API and batch, and open the web console on them until Ctrl-C.
    if (flags.console) await serveUntilSignal(ctx, { ...serveOptions(flags), demo: true }, io);
    await ctx.redis.del(...(await ctx.redis.keys(ctx.keys.everything)));
    return problems.length === 0 ? 0 : 1;
  } finally {
    await ctx.close();
    await api.close();
    await redis.server?.close();
  }
}

/** `--limit-schedule 40@0s,10@20s`: the stand-in's hidden limit changing over time. */
function scheduleFlag(text: string | undefined): LimitStep[] | null {
  if (text === undefined) return null;
  try {
    return parseLimitSchedule(text);
  } catch (error) {
    throw new UsageError(`--limit-schedule: ${error instanceof Error ? error.message : String(error)}`);
  }
}

export async function cmdMockApi(_args: readonly string[], flags: Flags, io: Io): Promise<number> {
  const port = flags.port ? Number(flags.port) : 8080;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`Expected \`--port\` to be a port number, got \`${flags.port}\``);
  const rate = flags['rate-max'] ? Number(flags['rate-max']) : undefined;
  const failRate = flags['fail-rate'] ? Number(flags['fail-rate']) : 0;
  const hiddenLimit = flags['hidden-limit'] ? Number(flags['hidden-limit']) : null;
  if (hiddenLimit !== null && !(Number.isInteger(hiddenLimit) && hiddenLimit >= 1)) {
    throw new UsageError(`Expected \`--hidden-limit\` to be a whole number of calls per second ≥ 1, got \`${flags['hidden-limit']}\``);
  }
  const limitSchedule = scheduleFlag(flags['limit-schedule']);
  const latencyMs = flags['latency-ms'] ? Number(flags['latency-ms']) : 0;
  if (!(Number.isInteger(latencyMs) && latencyMs >= 0))
    throw new UsageError(`Expected \`--latency-ms\` to be a whole number of ms ≥ 0, got \`${flags['latency-ms']}\``);
  const api = await startMockApi({
    latencyMs,
    hiddenLimit,
    limitSchedule,
    advertiseLimit: flags['advertise-limit'] === true,
    port,
    apiKey: flags['api-key'] ?? io.env.DOUBLETICK_API_KEY ?? DEMO_KEY,
    rateLimit: rate ? { max: rate, windowMs: 1000 } : null,
    faults: { serverErrorRate: failRate },
    seedChats: flags['seed-chats'] ? Number(flags['seed-chats']) : 200,
    // Group chats whose name matches two groups or none: what a nightly run must reject rather than guess.
    groupConflicts: flags['group-conflicts'] ? Number(flags['group-conflicts']) : 0,
  });
  io.err(`stand-in DoubleTick API on ${api.url} (POST /team-member/unassign, GET /chats, GET /whatsapp/wa-group/list, GET /__admin/stats); Ctrl-C stops it`);
  await new Promise<void>((resolve) => {
    const stop = (): void => void api.close().then(resolve);
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}
