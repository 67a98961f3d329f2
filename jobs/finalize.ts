/**
 * The `finalize` job processor: runs once a batch's last chat is recorded. Settles the final status, writes
 * the report, starts the retention clock. Idempotent: a re-delivered finalize rewrites the same report.
 */
import type { Job } from 'bullmq';

import { allows, FINAL, Status, TRANSITIONS } from '../src/domain/lifecycle.js';
import type { BatchStore } from '../src/store/batch-store.js';
import { DAY } from '../src/config/config.js';
import type { Keys } from '../src/store/keys.js';
import type { Logger } from '../src/config/logger.js';
import type { FinalizeJobData } from '../src/store/queue.js';
import { REPORT_NOT_WRITTEN, type ReportSummary, summarise, writeReport } from '../src/report/report.js';
import { asEnvironmentError } from '../src/domain/errors.js';
import type { ResultStore } from '../src/store/result-store.js';
import type { ScriptedRedis } from '../src/store/scripts.js';
import type { AuditStore } from '../src/store/audit-store.js';

export interface FinalizeDeps {
  readonly redis: ScriptedRedis;
  readonly keys: Keys;
  readonly batches: BatchStore;
  readonly results: ResultStore;
  /** The audit trail: the report lists what was done to the batch, and by whom. */
  readonly audit: AuditStore;
  readonly logger: Logger;
  readonly reportsDir: string;
  readonly resultsTtlDays: number;
  /** Called with the summary after the report is written (e.g. the nightly webhook). Errors are logged, not thrown. */
  readonly onFinished?: (summary: ReportSummary) => Promise<void>;
}

export function makeFinalizeProcessor(deps: FinalizeDeps): (job: Job<FinalizeJobData>) => Promise<string> {
  return async (job) => {
    const batchId = job.data.b;
    const before = await deps.batches.get(batchId);
    if (!before) return 'gone';
    // Only a batch whose chats are all settled has a report to write; a retention clock on a live batch would
    // delete it mid-run. (A final batch is finalized again on a re-delivery: the same report, rewritten.)
    if (before.status !== Status.finalizing && !FINAL.has(before.status)) return 'not-complete';
    const transition = before.counts.cancelled > 0 ? 'finishCancelled' : 'finish';
    // Report and retention first, status last: whoever sees `finished` can read the report, and a crash before
    // the status moves leaves the batch `finalizing` (the sweep finalizes it again), never finished without a TTL.
    const batch = { ...before, status: allows(transition, before.status) ? TRANSITIONS[transition].to : before.status };
    const summary = await writeReport(deps, batch, deps.reportsDir).catch(async (error: unknown) => {
      // A disk that refuses the report must not hold the batch: its outcome is in Redis, and `report <id>` can
      // write the files later. Anything else (Redis, a bug) fails the job, and the sweep finalizes it again.
      const environment = asEnvironmentError(error);
      if (!environment) throw error;
      const note = `${REPORT_NOT_WRITTEN}: ${environment.message}; write it with \`bulk-unassign report ${batchId}\` once the folder is writable`;
      deps.logger.error({ batchId, reportsDir: deps.reportsDir, err: environment.message }, 'report could not be written: the batch finishes without it');
      await deps.batches.addNote(batchId, note);
      return summarise({ ...batch, notes: [...batch.notes, note] }, {}, { p50: null, p95: null, p99: null }, {});
    });
    await deps.batches.expire(batchId, Math.round((deps.resultsTtlDays * DAY) / 1000));
    await deps.batches.apply(batchId, transition);
    deps.logger.info({ batchId, status: batch.status, counts: batch.counts, report: summary.files.summaryJson ?? null }, 'batch finished');
    if (deps.onFinished) {
      await deps.onFinished(summary).catch((error: unknown) => deps.logger.warn({ batchId, err: String(error) }, 'finish hook failed'));
    }
    return batch.status;
  };
}
