/**
 * The `expire-approval` job processor: added, delayed by APPROVAL_TIMEOUT_HOURS, when a batch is held for
 * approval (src/ingest/hold.ts). If the batch still waits then, it is rejected as expired (every chat recorded
 * cancelled, the report written, audited as `expire`); an approval or rejection that came first wins, and the job
 * does nothing.
 */
import type { Job } from 'bullmq';

import type { Logger } from '../src/config/logger.js';
import { type ApprovalCtx, expireApproval } from '../src/ops/approval.js';
import type { ExpireApprovalJobData } from '../src/store/queue.js';

export interface ExpireApprovalDeps {
  readonly ctx: ApprovalCtx;
  readonly logger: Logger;
  /** APPROVAL_TIMEOUT_HOURS, for the reason the batch records. */
  readonly hours: number;
}

export function makeExpireApprovalProcessor(deps: ExpireApprovalDeps): (job: Job<ExpireApprovalJobData>) => Promise<string> {
  return async (job) => {
    const batchId = job.data.b;
    if (!(await expireApproval(deps.ctx, batchId, deps.hours))) return 'not-held';
    deps.logger.warn({ batchId, hours: deps.hours }, 'batch held for approval expired: rejected, every chat recorded cancelled');
    return 'expired';
  };
}
