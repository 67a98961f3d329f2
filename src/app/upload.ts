/**
 * Uploading a CSV: one file becomes one batch, read with the configured limits and enqueued (or kept as a
 * dry run). The CLI's `run` / `upload` and the console's upload both come here, so
 * a file is accepted, rejected and explained the same way whichever door it came through.
 */
import { basename } from 'node:path';

import { type IngestProgress, ingest } from '../ingest/enqueue.js';
import { openConfiguredCsv } from '../ingest/csv-source.js';
import type { Context } from '../runtime/context.js';
import type { BatchRecord } from '../store/batch-store.js';
import type { Actor } from '../domain/actor.js';
import { configuredBrake } from '../ingest/hold.js';
import { isCountryCode } from '../domain/phone.js';
import { UsageError } from '../domain/errors.js';

export interface UploadRequest {
  /** Who uploads: the batch's creator and the audit entry's actor. */
  readonly actor: Actor;
  /** Path of the CSV to read. */
  readonly file: string;
  /** The file name the operator knows it by (the console stores uploads under a temporary path). @default basename(file) */
  readonly displayName?: string;
  readonly name?: string;
  /** Business number for rows of a file without a wabaNumber column. */
  readonly waba?: string;
  /**
   * Country (ISO, e.g. IN) for this file's numbers written without a country code, instead of DEFAULT_COUNTRY: the
   * console's form field for what the CLI's --default-country sets for one command.
   */
  readonly defaultCountry?: string;
  /** Run content again that already ran within DUPLICATE_WINDOW_HOURS. */
  readonly force?: boolean;
  readonly dryRun?: boolean;
  /** --approve: start even above MAX_BATCH_CHATS (audited as an `approve` that skipped the brake). */
  readonly approve?: boolean;
  /** Read each chat's agent right before its unassign call, so the batch can be restored (doubles the calls). */
  readonly captureAssignees?: boolean;
  readonly onProgress?: (progress: IngestProgress) => void;
}

/** The settings with this upload's country, checked as DEFAULT_COUNTRY is; a blank one keeps the configured one. */
function withCountry(config: Context['config'], raw: string | undefined): Context['config'] {
  const country = raw?.trim().toUpperCase();
  if (!country) return config;
  if (!isCountryCode(country)) throw new UsageError(`Expected the default country to be an ISO country code like IN, got ${JSON.stringify(raw?.slice(0, 20))}`);
  return { ...config, defaultCountry: country };
}

/**
 * Reads a CSV into a new batch: enqueued for the workers, or a dry run (finish it with `completeDryRun`).
 * Once the batch exists, the audit trail gets one `upload` (or `dry-run`) entry: file, content hash, counts, options.
 */
export async function uploadCsv(ctx: Context, request: UploadRequest): Promise<BatchRecord> {
  const source = await openConfiguredCsv(withCountry(ctx.config, request.defaultCountry), request.file, request.waba);
  const file = request.displayName ?? basename(request.file);
  const batch = await ingest(ctx, source, {
    batch: {
      kind: 'csv',
      source: file,
      createdBy: request.actor.name,
      ...(request.name ? { name: request.name } : {}),
      ...(request.captureAssignees ? { captureAssignees: true } : {}),
    },
    dryRun: request.dryRun === true,
    force: request.force === true,
    duplicateWindowHours: ctx.config.duplicateWindowHours,
    ...(request.onProgress ? { onProgress: request.onProgress } : {}),
    // Above MAX_BATCH_CHATS the batch waits for approval, unless the operator approved it up front (--approve).
    brake: configuredBrake(ctx.config, {
      approved: request.approve === true,
      onSkipped: async (batchId, reason) => {
        await ctx.audit.record({ actor: request.actor, action: 'approve', batchId, details: { skippedBrake: true, reason } });
      },
    }),
  });
  const c = batch.counts;
  await ctx.audit.record({
    actor: request.actor,
    action: request.dryRun === true ? 'dry-run' : 'upload',
    batchId: batch.id,
    details: {
      file,
      sha256: batch.sha256,
      rows: c.rows,
      valid: c.valid,
      rejected: c.rejected,
      duplicates: c.duplicates,
      ...(request.name ? { name: request.name } : {}),
      ...(request.waba ? { waba: request.waba } : {}),
      ...(request.defaultCountry?.trim() ? { defaultCountry: request.defaultCountry.trim().toUpperCase() } : {}),
      ...(request.force === true ? { force: true } : {}),
      // Whether this batch can be undone is part of what the operator chose.
      ...(request.captureAssignees === true ? { captureAssignees: true } : {}),
    },
  });
  return batch;
}
