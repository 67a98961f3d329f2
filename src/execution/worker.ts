/**
 * A worker process's BullMQ Worker: the global limiter, concurrency, lock and stall settings, and the
 * processors behind one dispatch by job name (`unassign`, `finalize`, and a schedule's `nightly` / `notify`).
 */
import { UnrecoverableError, Worker } from 'bullmq';

import { requireApiKey } from '../config/config.js';
import { toError } from '../domain/errors.js';
import type { ReportSummary } from '../report/report.js';
import type { Context } from '../runtime/context.js';
import { QUEUE_NAME } from '../store/keys.js';
import { enqueueFinalize, isJobName, JOB_NIGHTLY, JOB_UNASSIGN, type QueueJobData, type UnassignJobData } from '../store/queue.js';
import { makeApiClient } from './api-client.js';
import type { JobTable } from './job-table.js';
import { makePacer } from './pacer.js';
import { Status } from '../domain/lifecycle.js';

export interface RunningWorker {
  readonly worker: Worker<QueueJobData>;
  /** Stops taking jobs, waits for the ones in flight (BullMQ `close()`), releases the HTTP agents. */
  close(force?: boolean): Promise<void>;
}

export interface WorkerOptions {
  /** Called after a batch's report is written. */
  readonly onBatchFinished?: (summary: ReportSummary) => Promise<void>;
  /** How often to look for batches whose finalize job was lost (a crash right after the last result). */
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

/** Re-enqueue finalize for batches stuck in `finalizing` (idempotent: the finalize job id is fixed). */
export async function sweepFinalizing(ctx: Context): Promise<number> {
  let found = 0;
  for (const batch of await ctx.batches.list(200)) {
    if (batch.status === Status.finalizing) {
      await enqueueFinalize(ctx.queue, batch.id);
      found += 1;
    }
  }
  return found;
}

export function startWorker(ctx: Context, jobs: JobTable, options: WorkerOptions = {}): RunningWorker {
  const { config, logger } = ctx;
  const api = makeApiClient({ baseUrl: config.baseUrl, apiKey: requireApiKey(config), requestTimeoutMs: config.requestTimeoutMs, maxSockets: config.workerConcurrency * 2 });
  let worker: Worker<QueueJobData> | undefined;
  const pacer = makePacer(ctx.redis, ctx.keys, { max: config.rateLimitMax, durationMs: config.rateLimitDurationMs });
  const rateLimit = async (ms: number): Promise<void> => {
    await pacer.pause(ms);
    await worker?.rateLimit(ms);
  };
  const lockDuration = config.lockDurationMs ?? lockDurationFor(config.requestTimeoutMs);
  const processors = jobs(ctx, {
    api,
    pace: () => pacer.acquire(),
    rateLimit,
    lockDurationMs: lockDuration,
    onBatchFinished: async (summary) => {
      await options.onBatchFinished?.(summary);
    },
  });
  worker = new Worker<QueueJobData>(
    QUEUE_NAME,
    async (job, token) => {
      // A job this version does not know (a newer producer, a typo) must not be run as something else.
      if (!isJobName(job.name)) throw new UnrecoverableError(`unknown job name ${JSON.stringify(job.name)}: no processor for it in this worker`);
      return processors[job.name](job, token);
    },
    {
      connection: ctx.queueRedis,
      prefix: ctx.keys.bullPrefix,
      concurrency: config.workerConcurrency,
      ...(config.rateLimitMax > 0 ? { limiter: { max: config.rateLimitMax, duration: config.rateLimitDurationMs } } : {}),
      lockDuration,
      stalledInterval: stalledIntervalFor(lockDuration),
      // A job whose process died is re-run once its lock expires; twice more is plenty before giving up on it.
      maxStalledCount: 3,
      autorun: true,
    },
  );
  worker.on('error', (error) => logger.warn({ err: toError(error).message }, 'worker connection error'));
  // Safety net: a job that failed for good for an unexpected reason (a bug, not an API answer; or BullMQ's
  // "job stalled more than allowable limit" after repeated worker crashes, which fails it on its first attempt)
  // still gets a terminal result, so the batch can finish and the report shows it. BullMQ sets finishedOn only
  // when it will not retry the job, which covers both last attempts and unrecoverable errors.
  worker.on('failed', (job, error) => {
    if (job?.name === JOB_NIGHTLY) logger.error({ jobId: job.id, err: error.message }, 'scheduled run failed (its sources stay for the next tick)');
    if (!job || job.name !== JOB_UNASSIGN || job.finishedOn === undefined) return;
    const data = job.data as UnassignJobData;
    void ctx.results
      .record(data.b, data.k, { state: 'failed', httpStatus: 0, attempts: job.attemptsMade, finishedAt: Date.now(), latencyMs: 0, failureClass: 'transient', reason: `internal error: ${error.message}` })
      .then((outcome) => (outcome === 'last' ? enqueueFinalize(ctx.queue, data.b) : undefined))
      .catch((e: unknown) => logger.error({ err: String(e) }, 'could not record failed job'));
  });
  const sweep = setInterval(() => void sweepFinalizing(ctx).catch(() => undefined), options.sweepIntervalMs ?? 30_000);
  sweep.unref();
  void sweepFinalizing(ctx).catch(() => undefined);
  return {
    worker,
    close: async (force = false) => {
      clearInterval(sweep);
      await worker?.close(force);
      api.close();
    },
  };
}
