/**
 * The `notify` job processor: POSTs a finished scheduled batch's summary (or another event, such as a batch held
 * for approval: `batch.needs_approval`) to NOTIFY_WEBHOOK_URL. A failed call
 * throws, so the job's attempts and exponential backoff (queue.ts enqueueNotify) retry it; the batch itself
 * finished long before and does not wait for any of this.
 */
import type { Job } from 'bullmq';

import type { Logger } from '../src/config/logger.js';
import type { NotifyJobData } from '../src/store/queue.js';
import { postSummary, webhookTarget } from '../src/report/webhook.js';
import { EVENT_BATCH_FINISHED } from '../src/report/webhook-events.js';

export interface NotifyDeps {
  /** undefined: this worker has no webhook configured (the one that enqueued it had): drop it with a warning. */
  readonly url: string | undefined;
  readonly timeoutMs: number;
  readonly logger: Logger;
}

export function makeNotifyProcessor(deps: NotifyDeps): (job: Job<NotifyJobData>) => Promise<string> {
  return async (job) => {
    const { batchId } = job.data.summary;
    if (!deps.url) {
      deps.logger.warn({ batchId }, 'notify job but NOTIFY_WEBHOOK_URL is not set on this worker: dropped');
      return 'no-webhook';
    }
    try {
      await postSummary(deps.url, job.data.summary, deps.timeoutMs, job.data.event);
    } catch (error) {
      const last = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      deps.logger[last ? 'error' : 'warn'](
        { batchId, attempt: job.attemptsMade + 1, target: webhookTarget(deps.url), err: (error as Error).message },
        last ? 'webhook failed: giving up' : 'webhook failed: will retry',
      );
      throw error;
    }
    deps.logger.info({ batchId, event: job.data.event ?? EVENT_BATCH_FINISHED, target: webhookTarget(deps.url) }, 'webhook delivered');
    return 'delivered';
  };
}
