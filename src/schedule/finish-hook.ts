/**
 * What happens when a scheduled batch finishes: its webhook call is enqueued and a run of its schedule that
 * waits for it (overlap rule `wait`) is woken. Batches of other kinds pass through untouched.
 */
import type { ReportSummary } from '../report/report.js';
import type { Context } from '../runtime/context.js';
import { enqueueNotify } from '../store/queue.js';
import { wakeWaitingRuns } from './run.js';
import type { ScheduleStore } from './store.js';

/** Never throws: the batch has finished whatever happens here, and a failure is logged. */
export function scheduledBatchFinished(ctx: Context, schedules: ScheduleStore): (summary: ReportSummary) => Promise<void> {
  const { config, logger } = ctx;
  return async (summary) => {
    if (summary.kind !== 'nightly') return;
    try {
      // Enqueued, not sent: the receiver's speed or health never holds up this finalize.
      if (config.notifyWebhookUrl) await enqueueNotify(ctx.queue, { ...summary });
      await wakeWaitingRuns({ schedules, queue: ctx.queue });
    } catch (error) {
      logger.warn({ batchId: summary.batchId, err: String(error) }, 'scheduled batch finished, but its webhook or waiting run could not be queued');
    }
  };
}
