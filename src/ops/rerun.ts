/**
 * Rerun: a new batch made of the failed chats of a finished (or cancelled) batch, linked parent ↔ child.
 * The child keeps each chat's original row (line + cells), so its failed.csv has the source's own columns and
 * uploading the parent's failed.csv gives the same chats.
 *
 * Default selection is what a rerun can fix: transient failures (5xx, 408, timeouts, network errors; a 429 or a
 * rejected key never fails a chat). Permanent refusals
 * (400/404/422) fail again unless someone fixed the data, so they need --include-permanent.
 */
import { ACTIVE, type BatchStatus, GUARDS, Status, TRANSITIONS } from '../domain/lifecycle.js';
import type { BatchRecord } from '../store/batch-store.js';
import type { Context } from '../runtime/context.js';
import type { IngestRow } from '../ingest/csv-source.js';
import { ingest, type RowSource } from '../ingest/enqueue.js';
import { BatchStateError, NoValidRowsError } from '../domain/errors.js';
import { type FailureIndex, indexFailures } from '../store/failure-index.js';
import { writeReport } from '../report/report.js';
import type { ChatResult } from '../store/result-store.js';
import { chatFromKey, type FailureClass } from '../domain/chat.js';
import type { Actor } from '../domain/actor.js';
import { untilSettled } from './settle-advice.js';

export interface RerunOptions {
  /** Also rerun permanent failures (400/404/422). */
  readonly includePermanent?: boolean;
  /** Only failures whose reason contains this text (case-insensitive). */
  readonly onlyReason?: string;
  readonly name?: string;
  readonly dryRun?: boolean;
}

const FIXABLE: ReadonlySet<FailureClass> = new Set(['transient']);

/** Whether one failed chat is selected for the rerun. */
export function selectsFailure(result: ChatResult, opts: RerunOptions): boolean {
  if (result.state !== 'failed') return false;
  if (!opts.includePermanent && !FIXABLE.has(result.failureClass ?? 'transient')) return false;
  if (opts.onlyReason && !result.reason.toLowerCase().includes(opts.onlyReason.toLowerCase())) return false;
  return true;
}

/** Why `parent` cannot be rerun now, as an error that says what to do; undefined when it can. */
export function rerunRefusal(parent: BatchRecord, children: readonly BatchRecord[]): BatchStateError | undefined {
  if (parent.status === Status.stopped) {
    // Its waiting chats are parked, not failed: cancelling would record them as cancelled, which no rerun picks up.
    return new BatchStateError(
      `batch ${parent.id} is stopped (${parent.reason || TRANSITIONS.stop.reason}): its chats are not failed, they are waiting — ` +
        `fix the cause and \`bulk-unassign resume ${parent.id}\` to send them`,
    );
  }
  if (parent.dryRun || parent.status === Status.dryRun) {
    return new BatchStateError(`batch ${parent.id} is a dry run: it sent nothing, so nothing failed and there is nothing to rerun`);
  }
  if (!(GUARDS.rerunFrom as readonly BatchStatus[]).includes(parent.status)) {
    return new BatchStateError(`batch ${parent.id} is still ${parent.status} (${parent.done}/${parent.counts.valid} chats done): ${untilSettled(parent)}`);
  }
  // An early, friendly answer only: the rule itself is enforced atomically when the child is created (see rerunBatch).
  const active = children.find((c) => c.kind !== 'restore' && ACTIVE.has(c.status));
  if (active) return new BatchStateError(`batch ${parent.id} already has a rerun in progress: ${active.id} (${active.status})`);
  return undefined;
}

/** Why a rerun would be empty, with the flag that would change it. */
function nothingToRerun(parent: BatchRecord, opts: RerunOptions): string {
  const failed = parent.counts.failed;
  const why =
    failed === 0
      ? 'it has no failed chats'
      : `none of its ${failed} failed chat(s) match${opts.includePermanent ? '' : ' (permanent failures are left out: add --include-permanent)'}${opts.onlyReason ? ` --only-reason ${JSON.stringify(opts.onlyReason)}` : ''}`;
  return `nothing to rerun in batch ${parent.id}: ${why}`;
}

/** The selected failures as the child's rows: the parent's line and cells, so failed.csv keeps its columns. */
function rowsOf(failures: FailureIndex, header: readonly string[]): RowSource {
  return {
    header,
    sha256: () => '',
    async *rows(): AsyncIterable<IngestRow> {
      for await (const f of failures.inFileOrder())
        yield { kind: 'valid', row: { line: f.input.line, chat: chatFromKey(f.key), key: f.key, cells: f.input.cells } };
    },
  };
}

/**
 * Creates (and unless dry-run enqueues) the rerun batch. One rerun at a time per parent: creating the child
 * claims the parent's rerun slot in the same atomic step (batch store `create` with `parent`, the createChild
 * step), so of two reruns started together (two operators, a double click) exactly one is created and the other
 * gets a BatchStateError naming it. The slot is free again once that child is final, or gone because its ingest
 * failed (removing it gives the slot back).
 */
export async function rerunBatch(ctx: Context, parentId: string, actor: Actor, opts: RerunOptions = {}): Promise<BatchRecord> {
  const parent = await ctx.batches.require(parentId);
  const children = (await Promise.all(parent.children.map((id) => ctx.batches.get(id)))).filter((c): c is BatchRecord => c !== undefined);
  const refusal = rerunRefusal(parent, children);
  if (refusal) throw refusal;
  // The selection streams from a failure index in Redis, in the parent's file order: a rerun of a million
  // failed chats (an outage, a bad key) holds a page of them in memory, not all.
  const failures = await indexFailures(ctx, parent.id, (result) => selectsFailure(result, opts));
  let child: BatchRecord;
  try {
    if (failures.selected === 0) throw new NoValidRowsError(nothingToRerun(parent, opts));
    const filters = [
      opts.includePermanent ? 'including permanent failures' : 'fixable failures only',
      opts.onlyReason ? `reason contains ${JSON.stringify(opts.onlyReason)}` : '',
    ]
      .filter(Boolean)
      .join(', ');
    child = await ingest(ctx, rowsOf(failures, parent.header), {
      batch: {
        kind: 'rerun',
        // A rerun of a restore assigns (each row carries its agent), and a capturing batch's rerun captures too.
        action: parent.action,
        captureAssignees: parent.captureAssignees,
        source: `rerun of ${parent.id} (${parent.source})`,
        parent: parent.id,
        name: opts.name ?? `${parent.name} (rerun)`,
        notes: [`rerun of ${parent.id}: ${failures.selected} of ${parent.counts.failed} failed chat(s), ${filters}`],
        createdBy: actor.name,
      },
      dryRun: opts.dryRun ?? false,
      duplicateWindowHours: 0,
    });
  } finally {
    await failures.drop();
  }
  // Recorded on the new batch, naming its parent: the audit store finds it under either id.
  await ctx.audit.record({
    actor,
    action: 'rerun',
    batchId: child.id,
    details: {
      parent: parent.id,
      chats: child.counts.valid,
      ...(opts.includePermanent ? { includePermanent: true } : {}),
      ...(opts.onlyReason ? { onlyReason: opts.onlyReason } : {}),
      ...(opts.dryRun ? { dryRun: true } : {}),
    },
  });
  // The parent's report names its reruns: rewrite it now that it has one.
  if (!opts.dryRun) await writeReport(ctx, await ctx.batches.require(parent.id), ctx.config.reportsDir);
  return child;
}
