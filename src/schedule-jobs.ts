/**
 * What a worker needs to run schedules: the `nightly` and `notify` processors, and the finalize hook that, for a
 * scheduled batch, enqueues its webhook call and wakes a run waiting for it. Kept here so worker.ts only
 * dispatches.
 */
import type { Job } from 'bullmq';

import { makeNightlyProcessor } from '../jobs/nightly.js';
import { makeNotifyProcessor } from '../jobs/notify.js';
import type { DoubleTickApi } from './api-client.js';
import type { Context } from './context.js';
import { enqueueNotify, type NotifyJobData, type ScheduleJobData } from './queue.js';
import type { ReportSummary } from './report.js';
import { makeScheduleStore } from './schedule-store.js';
import { wakeWaitingRuns } from './scheduled-run.js';

export interface ScheduleJobs {
  readonly nightly: (job: Job<ScheduleJobData>, token?: string) => Promise<string>;
  readonly notify: (job: Job<NotifyJobData>) => Promise<string>;
  /** Finalize hook: only scheduled ('nightly') batches notify and wake waiters. Never throws. */
  readonly onBatchFinished: (summary: ReportSummary) => Promise<void>;
}

export interface ScheduleJobsIo {
  readonly api: Pick<DoubleTickApi, 'listChats'>;
  readonly pace: () => Promise<void>;
  readonly rateLimit: (ms: number) => Promise<void>;
  /** How often a waiting run re-checks without being woken. @default jobs/nightly.ts WAIT_POLL_MS */
  readonly waitPollMs?: number;
}

export function makeScheduleJobs(ctx: Context, io: ScheduleJobsIo): ScheduleJobs {
  const schedules = makeScheduleStore(ctx.redis, ctx.keys, ctx.queue);
  const { config, logger } = ctx;
  return {
    nightly: makeNightlyProcessor({ ...ctx, schedules, ...io }),
    notify: makeNotifyProcessor({ url: config.notifyWebhookUrl, timeoutMs: config.requestTimeoutMs, logger }),
    onBatchFinished: async (summary) => {
      if (summary.kind !== 'nightly') return;
      try {
        // Enqueued, not sent: the receiver's speed or health never holds up this finalize.
        if (config.notifyWebhookUrl) await enqueueNotify(ctx.queue, summary);
        await wakeWaitingRuns({ schedules, queue: ctx.queue });
      } catch (error) {
        logger.warn({ batchId: summary.batchId, err: String(error) }, 'scheduled batch finished, but its webhook or waiting run could not be queued');
      }
    },
  };
}
