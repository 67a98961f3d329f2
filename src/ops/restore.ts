/**
 * Restore (undo): a new batch, kind `restore`, linked to its parent like a rerun, that assigns every chat the
 * parent unassigned back to the agent it had before. Its calls are POST /team-member/assign with
 * `reassign: false`, so a chat someone assigned since is left with its new agent (recorded `skipped`).
 *
 * The previous agent had to be known before the unassign call: from the source (GET /chats' `assignedUserNumber`,
 * a CSV agent column) or read right before the call (--capture-assignees); it is kept in the parent's agents hash
 * (keys.ts `BatchKeys.agents`), which outlives the succeeded chats' rows. The restore's chats are the parent's
 * succeeded chats with a kept agent; each row carries its agent (`assignedUserNumber`), which ingest keeps in the
 * restore's own agents hash, where its worker reads it — and where a rerun of the restore finds it again.
 *
 * One restore per parent unless forced: creating the batch claims the parent's restore slot in the same atomic
 * step as a rerun claims its rerun slot (the createChild step), so of two restores started together exactly one
 * is created. Restoring a restore (or a rerun of one) is refused: it would unassign the chats again.
 */
import type { Actor } from '../domain/actor.js';
import { chatFromKey } from '../domain/chat.js';
import { BatchStateError, NoValidRowsError } from '../domain/errors.js';
import { type BatchStatus, GUARDS, Status, TRANSITIONS } from '../domain/lifecycle.js';
import type { IngestRow } from '../ingest/csv-source.js';
import { ingest, type RowSource } from '../ingest/enqueue.js';
import { writeReport } from '../report/report.js';
import type { Context } from '../runtime/context.js';
import type { BatchRecord } from '../store/batch-store.js';
import { untilSettled } from './settle-advice.js';

export interface RestoreOptions {
  /** Who asked for it: the audit trail's actor and the batch's `createdBy`. */
  readonly actor: Actor;
  /** Restore again although the parent was restored before (never while that restore runs). */
  readonly force?: boolean;
  readonly name?: string;
  readonly dryRun?: boolean;
}

/** Columns of a restore batch (its failed.csv repeats them): the chat and the agent it goes back to. */
export const RESTORE_HEADER = ['customerPhoneNumber', 'wabaNumber', 'groupId', 'assignedUserNumber'] as const;

/** Why `parent` cannot be restored now, as an error that says what to do; undefined when it can. */
export function restoreRefusal(parent: BatchRecord, children: readonly BatchRecord[], force: boolean): BatchStateError | undefined {
  if (parent.kind === 'restore' || parent.action === 'assign') {
    return new BatchStateError(
      `batch ${parent.id} is a restore (it assigned chats back): restoring it would unassign them again, so it is refused — ` +
        'to unassign those chats, upload them as a new batch',
    );
  }
  if (parent.dryRun || parent.status === Status.dryRun) {
    return new BatchStateError(`batch ${parent.id} is a dry run: it unassigned nothing, there is nothing to restore`);
  }
  if (parent.status === Status.stopped) {
    return new BatchStateError(
      `batch ${parent.id} is stopped (${parent.reason || TRANSITIONS.stop.reason}): its waiting chats are not settled — ` +
        `\`bulk-unassign cancel ${parent.id}\` (or resume it and let it finish), then restore`,
    );
  }
  if (!(GUARDS.restoreFrom as readonly BatchStatus[]).includes(parent.status)) {
    return new BatchStateError(
      `batch ${parent.id} is still ${parent.status} (${parent.done}/${parent.counts.valid} chats done): ${untilSettled(parent, 'then restore')}`,
    );
  }
  // Early, friendly answers only: the rule itself is enforced atomically when the restore is created.
  const restores = children.filter((c) => c.kind === 'restore');
  const running = restores.find((c) => c.status !== Status.dryRun && !(GUARDS.restoreFrom as readonly BatchStatus[]).includes(c.status));
  if (running) return new BatchStateError(`batch ${parent.id} already has a restore in progress: ${running.id} (${running.status})`);
  const earlier = restores.find((c) => c.status !== Status.dryRun);
  if (earlier && !force) {
    return new BatchStateError(
      `batch ${parent.id} was already restored by batch ${earlier.id} (${earlier.status}): restoring again needs --force (\`bulk-unassign restore ${parent.id} --force\`)`,
    );
  }
  return undefined;
}

/** The parent's restorable chats as the restore's rows, with their agent; lines count from 1 in the order read. */
function rowsOf(ctx: Context, parentId: string, counted: { n: number }): RowSource {
  return {
    header: RESTORE_HEADER,
    sha256: () => '',
    async *rows(): AsyncIterable<IngestRow> {
      for await (const page of ctx.results.restorable(parentId)) {
        for (const [key, agent] of page) {
          counted.n += 1;
          const chat = chatFromKey(key);
          const cells =
            chat.kind === 'individual'
              ? { customerPhoneNumber: chat.customerPhoneNumber, wabaNumber: chat.wabaNumber, groupId: '', assignedUserNumber: agent }
              : { customerPhoneNumber: '', wabaNumber: '', groupId: chat.groupId, assignedUserNumber: agent };
          yield { kind: 'valid', row: { line: counted.n, chat, key, cells } };
        }
      }
    },
  };
}

/** Why a restore would be empty, with what would have made it possible. */
function nothingToRestore(parent: BatchRecord): string {
  if (parent.counts.succeeded === 0) return `nothing to restore in batch ${parent.id}: it unassigned no chat`;
  return (
    `nothing to restore in batch ${parent.id}: none of its ${parent.counts.succeeded} unassigned chat(s) has a known previous agent ` +
    '(its source had no agent column, and it ran without --capture-assignees)'
  );
}

/**
 * Creates (and unless dry-run enqueues) the restore batch of `parentId`, and records it in the audit trail.
 * Throws a BatchStateError when the parent cannot be restored now (see `restoreRefusal`; a second restore without
 * `force`, or two at once, are refused atomically by the batch store), a NoValidRowsError when nothing is restorable.
 */
export async function restoreBatch(ctx: Context, parentId: string, opts: RestoreOptions): Promise<BatchRecord> {
  const parent = await ctx.batches.require(parentId);
  const children = (await Promise.all(parent.children.map((id) => ctx.batches.get(id)))).filter((c): c is BatchRecord => c !== undefined);
  const refusal = restoreRefusal(parent, children, opts.force === true);
  if (refusal) throw refusal;
  const counted = { n: 0 };
  let child: BatchRecord;
  try {
    child = await ingest(ctx, rowsOf(ctx, parent.id, counted), {
      batch: {
        kind: 'restore',
        action: 'assign',
        source: `restore of ${parent.id} (${parent.source})`,
        parent: parent.id,
        name: opts.name ?? `${parent.name} (restore)`,
        createdBy: opts.actor.name,
        force: opts.force === true,
        notes: [`restore of ${parent.id}: its unassigned chats back to their previous agent, never taken from an agent assigned since`],
      },
      dryRun: opts.dryRun ?? false,
      duplicateWindowHours: 0,
    });
  } catch (error) {
    if (error instanceof NoValidRowsError && counted.n === 0) throw new NoValidRowsError(nothingToRestore(parent));
    throw error;
  }
  if (!opts.dryRun) {
    await ctx.audit.record({ actor: opts.actor, action: 'restore', batchId: child.id, details: { parent: parent.id, chats: child.counts.valid } });
    // The parent's report names its children: rewrite it now that it has one.
    await writeReport(ctx, await ctx.batches.require(parent.id), ctx.config.reportsDir);
  }
  return child;
}
