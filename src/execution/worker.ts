/**
 * A worker process's BullMQ Worker: the global limiter, concurrency, lock and stall settings, and the
 * processors behind one dispatch by job name (`unassign`, `finalize`, and a schedule's `nightly` / `notify`).
 */
import { Worker } from 'bullmq';

import { requireApiKey } from '../config/config.js';
import { toError } from '../domain/errors.js';
import type { ReportSummary } from '../report/report.js';
import type { Context } from '../runtime/context.js';
import { QUEUE_NAME } from '../store/keys.js';
import { decodeJobData, enqueueFinalize, finalizeJobId, JOB_NIGHTLY, JOB_UNASSIGN, type QueueJobData, type UnassignJobData } from '../store/queue.js';
import { jobsHeldFor, makeCallSlots } from './call-slots.js';
import { dispatch, type JobTable } from './job-table.js';
import { makePacedApi } from './paced-api.js';
import { reconcileBatch } from './reconcile.js';
import { untilRedisServes } from './outage.js';
import { Status } from '../domain/lifecycle.js';

export interface RunningWorker {
  readonly worker: Worker<QueueJobData>;
  /** Stops taking jobs, waits for the ones in flight (BullMQ `close()`), releases the HTTP agents. */
  close(force?: boolean): Promise<void>;
}

export interface WorkerOptions {
  /** Called after a batch's report is written. */
  readonly onBatchFinished?: (summary: ReportSummary) => Promise<void>;
  /**
   * How often the safety net runs: batches whose report job was lost get it again, and a batch that has not
   * moved for two intervals is reconciled (see `sweepBatches`). @default 30000
   */
  readonly sweepIntervalMs?: number;
}

/**
 * Lock longer than any one job can legitimately take: a job is one HTTP call of at most REQUEST_TIMEOUT_MS
 * plus a few Redis round trips. BullMQ renews the lock every lockDuration/2, so even a slow call is never
 * mistaken for a stalled job; only a dead process (no renewals) is. Longer than the timeout matters because
 * renewals can be missed (a Redis blip, a busy event loop): if the lock could lapse while a call is still in
 * flight, another worker would re-run that chat and DoubleTick would get a second unassign for it. With
 * lock > timeout, a live job's call has always ended before anyone else may take the job.
 * LOCK_DURATION_MS overrides it (config.ts checks it stays ≥ timeout + 1 s).
 */
export function lockDurationFor(requestTimeoutMs: number): number {
  return Math.max(30_000, requestTimeoutMs * 2 + 5_000);
}

/**
 * How often each worker looks for jobs of dead workers. BullMQ needs two checks to move one (the first marks
 * active jobs, the next moves those whose lock is gone), so a crashed worker's jobs run again within about
 * lockDuration + 2 × this. Checks only move jobs whose lock expired, so a short interval cannot steal live jobs.
 */
export function stalledIntervalFor(lockDurationMs: number): number {
  return Math.min(30_000, Math.max(500, Math.round(lockDurationMs / 2)));
}

/** What one worker process remembers between sweeps: each batch's done count and since when it has not moved. */
export type SweepMemory = Map<string, { readonly done: number; readonly since: number }>;

export interface SweepOutcome {
  /** Batches whose report job was enqueued again. */
  readonly finalized: number;
  /** Chats that got a job back or a `cancelled` result from the reconciler. */
  readonly repaired: number;
}

/**
 * The worker's safety net, run every sweep interval:
 * - a batch in `finalizing` gets its report job again. A finalize job that failed for good is kept by BullMQ
 *   and would make the new one a no-op (same id), so it is removed first.
 * - a batch that is running or being cancelled and has not moved for `stuckAfterMs` is reconciled: any chat
 *   with neither a job nor a result gets one (see reconcile.ts).
 */
export async function sweepBatches(ctx: Context, memory: SweepMemory, stuckAfterMs: number, now = Date.now()): Promise<SweepOutcome> {
  let finalized = 0;
  let repaired = 0;
  const seen = new Set<string>();
  for (const batch of await ctx.batches.list(200)) {
    seen.add(batch.id);
    if (batch.status === Status.finalizing) {
      const stale = await ctx.queue.getJob(finalizeJobId(batch.id));
      if (stale && (await stale.isFailed())) await stale.remove();
      await enqueueFinalize(ctx.queue, batch.id);
      finalized += 1;
      continue;
    }
    if (batch.status !== Status.running && batch.status !== Status.cancelling) continue;
    const last = memory.get(batch.id);
    if (!last || last.done !== batch.done) {
      memory.set(batch.id, { done: batch.done, since: now });
      continue;
    }
    if (now - last.since < stuckAfterMs) continue;
    const outcome = await reconcileBatch(ctx, batch.id);
    memory.set(batch.id, { done: batch.done, since: now });
    if (!outcome) continue;
    const fixed = outcome.requeued + outcome.cancelled;
    repaired += fixed;
    if (fixed > 0) ctx.logger.warn({ batchId: batch.id, ...outcome }, 'reconciler: chats that had neither a job nor a result were given one');
  }
  for (const id of memory.keys()) if (!seen.has(id)) memory.delete(id);
  return { finalized, repaired };
}

export function startWorker(ctx: Context, jobs: JobTable, options: WorkerOptions = {}): RunningWorker {
  const { config, logger } = ctx;
  // With RATE_LIMIT_MAX=auto BullMQ's limiter stays at the ceiling (rateLimitMax) as the outer cap; the pacer
  // spaces calls by the adaptive rate (paced-api.ts).
  const {
    api,
    pacer,
    close: closeApi,
  } = makePacedApi(ctx.redis, ctx.keys, config, logger, {
    apiKey: requireApiKey(config),
    maxSockets: config.workerConcurrency * 2,
  });
  const rateLimit = async (ms: number): Promise<void> => {
    await pacer.pause(ms);
    await worker.rateLimit(ms);
  };
  const lockDuration = config.lockDurationMs ?? lockDurationFor(config.requestTimeoutMs);
  const callSlots = makeCallSlots(config.workerConcurrency);
  const processors = jobs(ctx, {
    api,
    callSlot: callSlots.take,
    pace: () => pacer.acquire(),
    rateLimit,
    lockDurationMs: lockDuration,
    onBatchFinished: async (summary) => {
      await options.onBatchFinished?.(summary);
    },
  });
  const worker = new Worker<QueueJobData>(QUEUE_NAME, dispatch(processors), {
    connection: ctx.queueRedis,
    prefix: ctx.keys.bullPrefix,
    concurrency: jobsHeldFor(config.workerConcurrency),
    ...(config.rateLimitMax > 0 ? { limiter: { max: config.rateLimitMax, duration: config.rateLimitDurationMs } } : {}),
    lockDuration,
    stalledInterval: stalledIntervalFor(lockDuration),
    // A job whose process died is re-run once its lock expires; twice more is plenty before giving up on it.
    maxStalledCount: 3,
    autorun: true,
  });
  worker.on('error', (error) => logger.warn({ err: toError(error).message }, 'worker connection error'));
  // Safety net: a job that failed for good for an unexpected reason (a bug, not an API answer; or BullMQ's
  // "job stalled more than allowable limit" after repeated worker crashes, which fails it on its first attempt)
  // still gets a terminal result, so the batch can finish and the report shows it. BullMQ sets finishedOn only
  // when it will not retry the job, which covers both last attempts and unrecoverable errors.
  const closing = new AbortController();
  worker.on('failed', (job, error) => {
    if (job?.name === JOB_NIGHTLY) logger.error({ jobId: job.id, err: error.message }, 'scheduled run failed (its sources stay for the next tick)');
    if (!job || job.name !== JOB_UNASSIGN || job.finishedOn === undefined) return;
    let data: UnassignJobData;
    try {
      data = decodeJobData(JOB_UNASSIGN, job.data, `job ${job.id ?? '?'} (${job.name}) data`);
    } catch {
      // Not a chat of this build's layout (dispatch refused it): there is no chat to record a result for.
      logger.error({ jobId: job.id, err: error.message }, 'job failed for good and names no chat of this data layout: nothing recorded');
      return;
    }
    const result = {
      state: 'failed',
      httpStatus: 0,
      attempts: job.attemptsMade,
      finishedAt: Date.now(),
      latencyMs: 0,
      failureClass: 'transient',
      reason: `internal error: ${error.message}`,
    } as const;
    // Held until Redis takes it (an outage is waited out); if this process ends first, the reconciler gives the
    // chat its job back.
    void untilRedisServes('record a failed job', () => ctx.results.record(data.b, data.k, result), { logger, signal: closing.signal })
      .then(({ value }) => (value === 'last' ? enqueueFinalize(ctx.queue, data.b) : undefined))
      .catch((e: unknown) => logger.error({ err: String(e) }, 'could not record failed job: the reconciler will requeue it'));
  });
  const sweepIntervalMs = options.sweepIntervalMs ?? 30_000;
  const memory: SweepMemory = new Map();
  const runSweep = (): void =>
    void sweepBatches(ctx, memory, 2 * sweepIntervalMs).catch((error: unknown) =>
      logger.warn({ err: toError(error).message }, 'sweep failed: trying again next interval'),
    );
  const sweep = setInterval(runSweep, sweepIntervalMs);
  sweep.unref();
  runSweep();
  return {
    worker,
    close: async (force = false) => {
      clearInterval(sweep);
      closing.abort();
      const closed = worker.close(force);
      // Jobs still waiting for a call slot go back to the queue untouched; the calls in flight finish.
      callSlots.withdrawWaiting();
      await closed;
      await closeApi();
    },
  };
}
