/**
 * Pause, resume, stop and cancel one batch without touching the others. All batches share one queue, so
 * "pausing a batch" means taking its waiting jobs off the queue into the batch's parked set (and the claim
 * step parks any job fetched meanwhile); resume puts them back with the same ids.
 */
import { BatchStateError } from '../domain/errors.js';
import { jobIdFor } from '../store/queue.js';
import { type QueueCtx, recordCancelled, requeueMissing, unfinishedChats } from '../execution/requeue.js';
import { describeStatuses, GUARDS, Status, TRANSITIONS, type TransitionName } from '../domain/lifecycle.js';
import type { Actor } from '../domain/actor.js';
import type { Context } from '../runtime/context.js';

type Ctx = QueueCtx & Pick<Context, 'audit'>;

/** Chats parked, then taken off the queue, per status check in `parkWaiting`. */
const PARK_CHUNK = 100;
/** How long resume waits for jobs that were parking themselves when it began (they take milliseconds). */
const RESUME_SETTLE_MS = 30_000;
/** Time for a `parkWaiting` that began before a resume to notice the resume and stop (one chunk). */
const PARKER_GRACE_MS = 300;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Takes a batch's waiting jobs off the queue into its parked set. Parks first, removes second: a crash in
 * between leaves a chat both parked and queued, which the claim step resolves (no chat is ever lost).
 * Jobs that are running cannot be removed; they finish or park themselves. Returns the number removed.
 * Stops as soon as the batch runs again: a resume is putting chats back, and removing them now would strand them.
 */
export async function parkWaiting(ctx: Ctx, batchId: string): Promise<number> {
  const k = ctx.keys.batch(batchId);
  let removed = 0;
  for await (const page of unfinishedChats(ctx, batchId)) {
    for (let i = 0; i < page.length; i += PARK_CHUNK) {
      const status = await ctx.redis.hget(k.batch, 'status');
      if (!(GUARDS.parkChats as readonly (string | null)[]).includes(status)) return removed;
      const chatKeys = page.slice(i, i + PARK_CHUNK);
      await ctx.redis.hset(k.parked, Object.fromEntries(chatKeys.map((c) => [c, 1])));
      // BullMQ's remove answers 1 for a job that does not exist too: count the jobs that were there to take off.
      const states = await Promise.all(chatKeys.map((c) => ctx.queue.getJobState(jobIdFor(batchId, c))));
      const removable = chatKeys.filter((_, i) => states[i] !== 'unknown' && states[i] !== 'active');
      await Promise.all(removable.map((c) => ctx.queue.remove(jobIdFor(batchId, c))));
      removed += removable.length;
    }
  }
  return removed;
}

/**
 * Applies the transition (one compare-and-set) and, only when this call made it, records it in the audit trail:
 * a refused action records nothing, and of two operators clicking at once exactly one is recorded.
 */
async function transition(ctx: Ctx, batchId: string, action: 'pause' | 'resume' | 'cancel', actor: Actor): Promise<void> {
  const previous = await ctx.batches.apply(batchId, action);
  if (previous === undefined) return refuse(ctx, batchId, action);
  await ctx.audit.record({ actor, action, batchId, details: { from: previous } });
}

export async function pauseBatch(ctx: Ctx, batchId: string, actor: Actor): Promise<number> {
  await transition(ctx, batchId, 'pause', actor);
  return parkWaiting(ctx, batchId);
}

/**
 * Puts a paused or stopped batch's chats back on the queue (same job ids: no duplicates). Returns how many.
 *
 * Not just "re-add the parked set": right after a stop, jobs may still be parking themselves (claimed before the
 * resume) and the stopper may still be taking jobs off the queue. A parked chat whose job still existed when it
 * was re-added (BullMQ ignores a duplicate id) would be stranded once that job completed — the batch would hang.
 * So resume re-adds every unfinished chat that has no job, waits for the jobs that were running to settle, and
 * looks once more.
 */
export async function resumeBatch(ctx: Ctx, batchId: string, actor: Actor): Promise<number> {
  await transition(ctx, batchId, 'resume', actor);
  const first = await requeueMissing(ctx, batchId);
  let running = first.running;
  for (const deadline = Date.now() + RESUME_SETTLE_MS; running.length > 0 && Date.now() < deadline;) {
    await sleep(50);
    const states = await Promise.all(running.map((c) => ctx.queue.getJobState(jobIdFor(batchId, c))));
    running = running.filter((_, i) => states[i] === 'active');
  }
  await sleep(PARKER_GRACE_MS);
  // Stopped again meanwhile (a 401 answered before the key was fixed): the stopper parks; the next resume re-adds.
  if ((await ctx.redis.hget(ctx.keys.batch(batchId).batch, 'status')) !== Status.running) return first.added;
  return first.added + (await requeueMissing(ctx, batchId)).added;
}

/**
 * Cancels a batch: waiting and parked chats are recorded as `cancelled`; chats already in flight finish.
 * Returns how many chats were cancelled by this call.
 */
export async function cancelBatch(ctx: Ctx, batchId: string, actor: Actor): Promise<number> {
  await transition(ctx, batchId, 'cancel', actor);
  const parked = new Set(await ctx.redis.hkeys(ctx.keys.batch(batchId).parked));
  let cancelled = 0;
  for await (const chatKeys of unfinishedChats(ctx, batchId)) {
    for (const chatKey of chatKeys) {
      const removed = (await ctx.queue.remove(jobIdFor(batchId, chatKey))) === 1;
      if (!removed && !parked.has(chatKey)) continue; // running now: it finishes on its own
      if (await recordCancelled(ctx, batchId, chatKey)) cancelled += 1;
    }
  }
  return cancelled;
}

async function refuse(ctx: Ctx, batchId: string, action: TransitionName): Promise<never> {
  const batch = await ctx.batches.require(batchId);
  // A held batch has sent nothing: it is ended by rejecting it (which is audited as such), not by cancelling.
  const hint = batch.status === Status.awaitingApproval ? `; it is held for approval: end it with \`bulk-unassign reject ${batchId}\`` : '';
  throw new BatchStateError(
    `cannot ${action} batch ${batchId}: it is ${batch.status}, and only a ${describeStatuses(TRANSITIONS[action].from)} batch can be${hint}`,
  );
}
