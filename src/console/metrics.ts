/**
 * GET /metrics in Prometheus text format (prom-client).
 *
 * Derived from Redis at scrape time, not hooked into the worker: the batch records already count every
 * outcome, 429 and latency bucket atomically (result-store.ts), for ALL workers on all hosts, so a console
 * started with --no-worker still reports the whole fleet, and the worker hot path stays untouched.
 *
 * Counters must never go down, but batch records expire after RESULTS_TTL_DAYS. So the counters here add the
 * increase of each batch since the previous scrape (first scrape: everything retained) and forget a batch
 * once it is gone, without subtracting it. They restart from the retained totals when the console restarts,
 * which Prometheus reads as at most one counter reset.
 *
 * Schedules are reported as gauges read from their run history (schedule/store.ts keeps each schedule's latest
 * runs): when each outcome last happened. A gauge of Redis state cannot miss or double-count a run across
 * console restarts, and an alert on "a run failed within the last hour" needs nothing more. deploy/ holds the
 * Grafana dashboard and the Prometheus alerts built on these series; test/integration/monitoring.test.ts checks
 * that every series they use is exported here.
 */
import { Counter, Gauge, type Histogram, Registry } from 'prom-client';

import { adaptiveSettingsOf, readAdaptiveViews } from '../execution/adaptive-limiter.js';

import type { BatchRecord } from '../store/batch-store.js';
import type { Context } from '../runtime/context.js';
import { BATCH_STATUSES, FINAL } from '../domain/lifecycle.js';
import { decodeScheduleRun, RUN_HISTORY, type RunOutcome, type ScheduleRun } from '../schedule/store.js';

/** Batches read per scrape, newest first (the index holds every retained batch). */
const MAX_BATCHES_SCANNED = 5000;
/**
 * Latency buckets, seconds. Each is a bound of the finer histogram kept in Redis (1 ms steps to 100 ms, 10 ms to
 * 1 s, 100 ms to 10 s, then 1 s: see `latencyBucket`), so every count lands in exactly the right bucket.
 */
export const LATENCY_BUCKETS_S = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const OUTCOMES = ['succeeded', 'failed', 'cancelled', 'skipped'] as const;
/** Every outcome a schedule run can have (`satisfies`: a new outcome is a compile error here until it is listed). */
const SCHEDULE_OUTCOME_SET = { started: true, empty: true, skipped: true, failed: true, 'dry-run': true } satisfies Record<RunOutcome, true>;
const SCHEDULE_OUTCOMES = Object.keys(SCHEDULE_OUTCOME_SET) as RunOutcome[];

interface Seen {
  readonly final: boolean;
  readonly status: string;
  /** `attempts`: calls made for the chats that have a result (a 429 is not one of them: it is in `rateLimited`). */
  readonly counts: Record<(typeof OUTCOMES)[number] | 'rateLimited' | 'attempts', number>;
  /** Redis latency bucket (ms upper bound) → count. */
  readonly latency: Map<number, number>;
}

/**
 * A histogram fed with whole buckets (prom-client's Histogram only takes one observation at a time, which
 * would mean one call per chat). Registered as a custom metric: prom-client only calls `get()`. The sum uses
 * each Redis bucket's upper bound, so it overstates by at most one Redis bucket width per chat.
 */
function bucketHistogram(name: string, help: string) {
  const cumulative = new Map<number, number>(LATENCY_BUCKETS_S.map((le) => [le, 0]));
  let count = 0;
  let sum = 0;
  const metric = {
    name,
    help,
    type: 'histogram' as const,
    aggregator: 'sum' as const,
    add(latencyMs: number, n: number): void {
      for (const le of LATENCY_BUCKETS_S) if (latencyMs <= le * 1000) cumulative.set(le, (cumulative.get(le) ?? 0) + n);
      count += n;
      sum += (latencyMs / 1000) * n;
    },
    async get() {
      const values = [
        ...LATENCY_BUCKETS_S.map((le) => ({ metricName: `${name}_bucket`, labels: { le: String(le) }, value: cumulative.get(le) ?? 0 })),
        { metricName: `${name}_bucket`, labels: { le: '+Inf' }, value: count },
        { metricName: `${name}_sum`, labels: {}, value: sum },
        { metricName: `${name}_count`, labels: {}, value: count },
      ];
      return { name, help, type: metric.type, aggregator: metric.aggregator, values };
    },
  };
  return metric;
}

/** A run history entry, or undefined when it cannot be read: one bad entry must not take /metrics down (`schedule show` reports it). */
function readableRun(raw: string, where: string): ScheduleRun | undefined {
  try {
    return decodeScheduleRun(raw, where);
  } catch {
    return undefined;
  }
}

export interface ConsoleMetrics {
  readonly contentType: string;
  /** Refreshes everything from Redis and renders the exposition text. */
  render(): Promise<string>;
}

export function makeConsoleMetrics(ctx: Pick<Context, 'config' | 'redis' | 'keys' | 'batches' | 'queue'>): ConsoleMetrics {
  const registry = new Registry();
  const chats = new Counter({
    name: 'bulk_unassign_chats_total',
    help: 'Chats with a result, by outcome (all workers).',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const rateLimited = new Counter({ name: 'bulk_unassign_api_rate_limited_total', help: 'DoubleTick answers with HTTP 429.', registers: [registry] });
  const apiCalls = new Counter({
    name: 'bulk_unassign_api_calls_total',
    help: 'Unassign calls made to DoubleTick: every attempt of the chats that have a result, plus the calls answered 429 (a chat still being retried adds its calls when it gets its result).',
    registers: [registry],
  });
  const rateLimit = new Gauge({
    name: 'bulk_unassign_rate_limit_per_second',
    help: 'The configured global rate limit, RATE_LIMIT_MAX per RATE_LIMIT_DURATION_MS, in calls per second as this console reads its settings (0 = no limit).',
    registers: [registry],
  });
  const adaptiveRate = new Gauge({
    name: 'bulk_unassign_adaptive_rate_per_second',
    help: 'RATE_LIMIT_MAX=auto: the rate calls are paced by now, per API base URL and key fingerprint (`api`), in calls per second.',
    labelNames: ['api'],
    registers: [registry],
  });
  const adaptiveLearned = new Gauge({
    name: 'bulk_unassign_adaptive_learned_rate_per_second',
    help: 'RATE_LIMIT_MAX=auto: what was learned of the API limit (the rate a run starting now starts from), in calls per second.',
    labelNames: ['api'],
    registers: [registry],
  });
  const adaptive429 = new Gauge({
    name: 'bulk_unassign_adaptive_rate_limited_answers',
    help: 'RATE_LIMIT_MAX=auto: 429 answers the adaptive limit has counted for this API and key since it started learning.',
    labelNames: ['api'],
    registers: [registry],
  });
  const scheduleLastRun = new Gauge({
    name: 'bulk_unassign_schedule_last_run_timestamp_seconds',
    help: "When the latest run of each outcome of a schedule ended (Unix seconds; 0 = none in the schedule's retained run history). run-now runs count.",
    labelNames: ['schedule', 'outcome'],
    registers: [registry],
  });
  const latency = bucketHistogram('bulk_unassign_api_latency_seconds', 'Latency of the last API call of each chat.');
  registry.registerMetric(latency as unknown as Histogram);
  const queueJobs = new Gauge({
    name: 'bulk_unassign_queue_jobs',
    help: 'Jobs in the queue by state (waiting = wait + prioritized: chats not started yet).',
    labelNames: ['state'],
    registers: [registry],
  });
  const workers = new Gauge({ name: 'bulk_unassign_workers', help: 'Workers connected to the queue.', registers: [registry] });
  const batches = new Gauge({ name: 'bulk_unassign_batches', help: 'Retained batches by status.', labelNames: ['status'], registers: [registry] });
  for (const outcome of OUTCOMES) chats.inc({ outcome }, 0); // present from the first scrape, even at zero
  rateLimited.inc(0);
  apiCalls.inc(0);
  // Settings are read per process: a console started with other RATE_LIMIT_* than the workers shows its own.
  rateLimit.set(ctx.config.rateLimitMax === 0 ? 0 : (ctx.config.rateLimitMax * 1000) / ctx.config.rateLimitDurationMs);

  const seen = new Map<string, Seen>();

  const absorb = async (batch: BatchRecord): Promise<Seen> => {
    const before = seen.get(batch.id);
    const counts = {
      succeeded: batch.counts.succeeded,
      failed: batch.counts.failed,
      cancelled: batch.counts.cancelled,
      skipped: batch.counts.skipped,
      rateLimited: batch.rateLimited,
      attempts: batch.attempts,
    };
    const increase = (name: keyof Seen['counts']): number => Math.max(0, counts[name] - (before?.counts[name] ?? 0));
    for (const outcome of OUTCOMES) chats.inc({ outcome }, increase(outcome));
    rateLimited.inc(increase('rateLimited'));
    apiCalls.inc(increase('attempts') + increase('rateLimited'));
    const raw = await ctx.redis.hgetall(ctx.keys.batch(batch.id).latency);
    const buckets = new Map(Object.entries(raw).map(([ms, n]) => [Number(ms), Number(n)]));
    for (const [ms, n] of buckets) latency.add(ms, Math.max(0, n - (before?.latency.get(ms) ?? 0)));
    return { final: FINAL.has(batch.status), status: batch.status, counts, latency: buckets };
  };

  /** Few schedules with at most RUN_HISTORY short entries each: cheap enough to read whole on every scrape. */
  const refreshSchedules = async (): Promise<void> => {
    const names = await ctx.redis.hkeys(ctx.keys.schedules);
    scheduleLastRun.reset();
    for (const name of names) {
      const latest = new Map<RunOutcome, number>(SCHEDULE_OUTCOMES.map((outcome) => [outcome, 0]));
      const key = ctx.keys.scheduleRuns(name);
      for (const [i, raw] of (await ctx.redis.lrange(key, 0, RUN_HISTORY - 1)).entries()) {
        const run = readableRun(raw, `${key}[${i}]`);
        if (run) latest.set(run.outcome, Math.max(latest.get(run.outcome) ?? 0, run.endedAt / 1000));
      }
      for (const [outcome, at] of latest) scheduleLastRun.set({ schedule: name, outcome }, at);
    }
  };

  /** Every learned rate under this prefix (one per API base URL and key; usually one). */
  const refreshAdaptive = async (): Promise<void> => {
    const views = await readAdaptiveViews(ctx.redis, ctx.keys, adaptiveSettingsOf(ctx.config));
    for (const gauge of [adaptiveRate, adaptiveLearned, adaptive429]) gauge.reset();
    for (const view of views) {
      adaptiveRate.set({ api: view.fingerprint }, view.currentPerSecond);
      adaptiveLearned.set({ api: view.fingerprint }, view.learnedPerSecond);
      adaptive429.set({ api: view.fingerprint }, view.rateLimited);
    }
  };

  const refresh = async (): Promise<void> => {
    const ids = await ctx.redis.zrevrange(ctx.keys.batchIndex, 0, MAX_BATCHES_SCANNED - 1);
    const byStatus = new Map<string, number>();
    const current = new Set<string>();
    for (const id of ids) {
      let entry = seen.get(id);
      if (!entry?.final) {
        // A finished batch cannot change any more: read it once.
        const batch = await ctx.batches.get(id);
        if (!batch) continue;
        entry = await absorb(batch);
        seen.set(id, entry);
      }
      current.add(id);
      byStatus.set(entry.status, (byStatus.get(entry.status) ?? 0) + 1);
    }
    for (const id of seen.keys()) if (!current.has(id)) seen.delete(id);
    batches.reset();
    // Every status, 0 included: a series that exists at 0 lets an alert or a panel tell "none" from "not scraped".
    for (const status of BATCH_STATUSES) batches.set({ status }, byStatus.get(status) ?? 0);
    const jobs = await ctx.queue.getJobCounts('wait', 'prioritized', 'delayed', 'active');
    queueJobs.reset();
    queueJobs.set({ state: 'waiting' }, (jobs.wait ?? 0) + (jobs.prioritized ?? 0));
    for (const state of ['delayed', 'active'] as const) queueJobs.set({ state }, jobs[state] ?? 0);
    workers.set(await ctx.queue.getWorkersCount().catch(() => Number.NaN));
    await refreshSchedules();
    await refreshAdaptive();
  };

  // Scrapes are serialised: two at once would both add the same increase.
  let last: Promise<void> = Promise.resolve();
  return {
    contentType: registry.contentType,
    render: async () => {
      const run = last.then(refresh, refresh);
      last = run.catch(() => undefined);
      await run;
      return registry.metrics();
    },
  };
}
