/**
 * Approving, rejecting and expiring a batch held for approval (the brake: ingest/hold.ts). Each is one
 * compare-and-set on the batch's status (the batch store's `apply`), so of two operators approving at once, or an
 * approval racing the expiry, exactly one moves the batch; the other is refused and told what happened.
 *
 * Approve puts every unfinished chat on the queue the way resume does (requeueMissing works from the batch's chats
 * hash, whatever was or was not enqueued before the hold). Reject and expiry record every chat as cancelled the
 * way cancel does; the last one enqueues the report.
 */
import type { Actor } from '../domain/actor.js';
import { WORKER_ACTOR } from '../domain/actor.js';
import { BatchStateError } from '../domain/errors.js';
import { Status, type TransitionName } from '../domain/lifecycle.js';
import type { Context } from '../runtime/context.js';
import type { BatchRecord } from '../store/batch-store.js';
import { approvalExpiryJobId, jobIdFor } from '../store/queue.js';
import { type QueueCtx, recordCancelled, requeueMissing, unfinishedChats } from '../execution/requeue.js';

export type ApprovalCtx = QueueCtx & Pick<Context, 'audit'>;

/** How long approve waits for jobs that were parking themselves when it began (they take milliseconds). */
const SETTLE_MS = 30_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** What happened to a batch that is no longer held, from the note its decision left (or its status, before that note). */
function decisionOf(batch: BatchRecord): string {
  const note = batch.notes.find((n) => /^(approved by |rejected by |approval expired )/.test(n));
  if (note !== undefined) {
    const what = note.slice(0, note.indexOf(' (') === -1 ? undefined : note.indexOf(' ('));
    return what.startsWith('approval expired') ? `its ${what}` : `it was already ${what}`;
  }
  if (batch.status === Status.running || batch.status === Status.finalizing || batch.status === Status.finished)
    return 'it was already approved (or never held)';
  if (batch.status === Status.cancelling || batch.status === Status.cancelled)
    return `it was already rejected, expired or cancelled${batch.reason ? ` (${batch.reason})` : ''}`;
  return 'only a batch awaiting approval can be';
}

/** The refusal when a batch is not (or no longer) held: says what happened to it and what to do. */
async function notHeld(ctx: ApprovalCtx, batchId: string, action: 'approve' | 'reject'): Promise<never> {
  const batch = await ctx.batches.require(batchId);
  throw new BatchStateError(
    `cannot ${action} batch ${batchId}: it is ${batch.status}, ${decisionOf(batch)}; see \`bulk-unassign status ${batchId}\` and \`bulk-unassign batches --status ${Status.awaitingApproval}\``,
  );
}

/** The expiry job is no longer needed once the batch left the hold (it would find the batch not held anyway). */
async function dropExpiry(ctx: ApprovalCtx, batchId: string): Promise<void> {
  await ctx.queue.remove(approvalExpiryJobId(batchId)).catch(() => undefined);
}

/**
 * Approves a held batch: it runs, and its chats go on the queue (same job ids: a chat never gets two jobs).
 * Returns how many chats were put on the queue. Refused (BatchStateError) unless the batch awaits approval.
 */
export async function approveBatch(ctx: ApprovalCtx, batchId: string, actor: Actor): Promise<number> {
  const before = await ctx.batches.get(batchId);
  if ((await ctx.batches.apply(batchId, 'approve')) === undefined) return notHeld(ctx, batchId, 'approve');
  const heldFor = before?.reason ?? '';
  await ctx.audit.record({ actor, action: 'approve', batchId, details: { chats: before?.counts.valid ?? 0, heldFor } });
  await ctx.batches.addNote(batchId, `approved by ${actor.name}${heldFor ? ` (${heldFor})` : ''}`);
  await dropExpiry(ctx, batchId);
  const first = await requeueMissing(ctx, batchId);
  // A job that existed before the hold may be parking itself right now: once it settles, look again.
  let running = first.running;
  for (const deadline = Date.now() + SETTLE_MS; running.length > 0 && Date.now() < deadline;) {
    await sleep(50);
    const states = await Promise.all(running.map((c) => ctx.queue.getJobState(jobIdFor(batchId, c))));
    running = running.filter((_, i) => states[i] === 'active');
  }
  const again = first.running.length > 0 ? (await requeueMissing(ctx, batchId)).added : 0;
  await ctx.redis.del(ctx.keys.batch(batchId).order);
  return first.added + again;
}

/**
 * Records every unfinished chat of a batch that just left the hold for `cancelling` as cancelled (as cancel
 * does): a job that exists is removed first; one running now is left to record itself (the claim step answers
 * `cancel` from now on). Returns how many this call recorded.
 */
async function cancelHeldChats(ctx: ApprovalCtx, batchId: string): Promise<number> {
  const k = ctx.keys.batch(batchId);
  const parked = new Set(await ctx.redis.hkeys(k.parked));
  let cancelled = 0;
  for await (const chatKeys of unfinishedChats(ctx, batchId)) {
    for (const chatKey of chatKeys) {
      const jobId = jobIdFor(batchId, chatKey);
      const state = await ctx.queue.getJobState(jobId);
      const removed = state !== 'unknown' && (await ctx.queue.remove(jobId)) === 1;
      if (state !== 'unknown' && !removed && !parked.has(chatKey)) continue; // running now: it records itself
      if (await recordCancelled(ctx, batchId, chatKey)) cancelled += 1;
    }
  }
  await ctx.redis.del(k.order);
  return cancelled;
}

async function endHold(ctx: ApprovalCtx, batchId: string, move: Extract<TransitionName, 'reject' | 'expire'>, reason?: string): Promise<boolean> {
  return (await ctx.batches.apply(batchId, move, reason)) !== undefined;
}

/** Rejects a held batch: every chat is recorded as cancelled and the report is written. Returns the chats cancelled. */
export async function rejectBatch(ctx: ApprovalCtx, batchId: string, actor: Actor): Promise<number> {
  const before = await ctx.batches.get(batchId);
  if (!(await endHold(ctx, batchId, 'reject', `rejected by ${actor.name}`))) return notHeld(ctx, batchId, 'reject');
  await ctx.audit.record({ actor, action: 'reject', batchId, details: { chats: before?.counts.valid ?? 0, heldFor: before?.reason ?? '' } });
  // A note, not only the reason: the reason is the status's own and goes when the report is written.
  await ctx.batches.addNote(batchId, `rejected by ${actor.name}${before?.reason ? ` (${before.reason})` : ''}: nothing was sent`);
  await dropExpiry(ctx, batchId);
  return cancelHeldChats(ctx, batchId);
}

/**
 * The expiry job: rejects the batch if it still awaits approval (reason "approval expired after N hours"),
 * audited as `expire` by the worker. Returns false when the batch was approved or rejected first (nothing done).
 */
export async function expireApproval(ctx: ApprovalCtx, batchId: string, hours: number): Promise<boolean> {
  const before = await ctx.batches.get(batchId);
  if (!before) return false;
  if (!(await endHold(ctx, batchId, 'expire', `approval expired after ${hours} hours`))) return false;
  await ctx.audit.record({ actor: WORKER_ACTOR, action: 'expire', batchId, details: { chats: before.counts.valid, heldFor: before.reason, hours } });
  await ctx.batches.addNote(batchId, `approval expired after ${hours} hours (${before.reason}): nothing was sent`);
  await cancelHeldChats(ctx, batchId);
  return true;
}
