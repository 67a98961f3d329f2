/**
 * The job table: one processor per job name on the queue, built from a worker's shared services. The entry
 * point (src/main.ts) registers it; tests pass it to `startWorker` the same way.
 */
import type { JobTable } from '../src/execution/job-table.js';
import { parkWaiting } from '../src/ops/batch-control.js';
import { makeScheduleStore } from '../src/schedule/store.js';
import { scheduledBatchFinished } from '../src/schedule/finish-hook.js';
import { enqueueFinalize, JOB_EXPIRE_APPROVAL, JOB_FINALIZE, JOB_NIGHTLY, JOB_NOTIFY, JOB_UNASSIGN } from '../src/store/queue.js';
import { makeExpireApprovalProcessor } from './expire-approval.js';
import { makeFinalizeProcessor } from './finalize.js';
import { makeNightlyProcessor } from './nightly.js';
import { makeNotifyProcessor } from './notify.js';
import { makeUnassignProcessor } from './unassign.js';

export const jobTable: JobTable = (ctx, services) => {
  const { config, logger } = ctx;
  const schedules = makeScheduleStore(ctx.redis, ctx.keys, ctx.queue);
  const onScheduledFinished = scheduledBatchFinished(ctx, schedules);
  return {
    [JOB_UNASSIGN]: makeUnassignProcessor({
      api: services.api,
      results: ctx.results,
      batches: ctx.batches,
      logger,
      rateLimit: services.rateLimit,
      pace: services.pace,
      callSlot: services.callSlot,
      countOnClaim: !config.rateLimitAuto && config.rateLimitMax === 0,
      onBatchComplete: (batchId) => enqueueFinalize(ctx.queue, batchId),
      stillHolds: async (job, token) => token === undefined || (await job.extendLock(token, services.lockDurationMs)) === 1,
      maxRateLimitWaitMs: config.maxRateLimitWaitMinutes * 60_000,
      onBatchStopped: async (batchId) => {
        const parked = await parkWaiting(ctx, batchId);
        logger.warn({ batchId, parked }, 'batch stopped: waiting chats parked until resume');
      },
    }),
    [JOB_FINALIZE]: makeFinalizeProcessor({
      ...ctx,
      reportsDir: config.reportsDir,
      resultsTtlDays: config.resultsTtlDays,
      onFinished: async (summary) => {
        await onScheduledFinished(summary);
        await services.onBatchFinished(summary);
      },
    }),
    [JOB_NIGHTLY]: makeNightlyProcessor({ ...ctx, schedules, api: services.api, pace: services.pace, rateLimit: services.rateLimit }),
    [JOB_NOTIFY]: makeNotifyProcessor({ url: config.notifyWebhookUrl, timeoutMs: config.requestTimeoutMs, logger }),
    [JOB_EXPIRE_APPROVAL]: makeExpireApprovalProcessor({ ctx, logger, hours: config.approvalTimeoutHours }),
  };
};
