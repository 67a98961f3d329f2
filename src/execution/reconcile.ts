/**
 * The reconciler: no batch may hold a chat that has neither a job nor a result. Such a chat can only come from
 * an accident (a job failed for good while Redis refused the write of its failure; a process died between
 * marking a batch running and enqueueing its last chats), and nothing else would ever move it: the batch
 * would stay running for ever. The reconciler finds those chats and gives them their job back (same id, so a
 * chat that does have a job is never doubled), or, in a batch being cancelled, their `cancelled` result.
 *
 * It is cheap to call but not free (one look at the queue per unfinished chat), so workers call it only for a
 * batch that has made no progress for a while (`sweepBatches` in worker.ts), one process at a time.
 */
import { randomBytes } from 'node:crypto';

import { Status } from '../domain/lifecycle.js';
import { jobIdFor } from '../store/queue.js';
import { ownedLock } from '../store/scripts.js';
import { type QueueCtx as Ctx, recordCancelled, requeueMissing, unfinishedChats } from './requeue.js';

export interface Reconciled {
  /** Chats that got their job back (running batch). */
  readonly requeued: number;
  /** Chats recorded as cancelled (batch being cancelled). */
  readonly cancelled: number;
}

/** How long one process may hold a batch's reconcile lock before another may take over. */
const LOCK_MS = 5 * 60_000;

/** Reconciles one batch unless another process is doing it now; undefined when it was skipped. */
export async function reconcileBatch(ctx: Ctx, batchId: string): Promise<Reconciled | undefined> {
  const lock = ctx.keys.reconcileLock(batchId);
  const owner = randomBytes(8).toString('hex');
  if (!(await ownedLock(ctx.redis, lock, { action: 'acquire', owner, ttlMs: LOCK_MS }))) return undefined;
  try {
    const batch = await ctx.batches.get(batchId);
    if (batch?.status === Status.running) return { requeued: (await requeueMissing(ctx, batchId)).added, cancelled: 0 };
    if (batch?.status === Status.cancelling) return { requeued: 0, cancelled: await cancelJobless(ctx, batchId) };
    return { requeued: 0, cancelled: 0 };
  } finally {
    // Only our own lock: if this pass outlived it, someone else's must stay.
    await ownedLock(ctx.redis, lock, { action: 'release', owner, ttlMs: LOCK_MS });
  }
}

/** In a batch being cancelled, a chat with no job will never be picked up: record it cancelled now. */
async function cancelJobless(ctx: Ctx, batchId: string): Promise<number> {
  let cancelled = 0;
  for await (const chatKeys of unfinishedChats(ctx, batchId)) {
    const states = await Promise.all(chatKeys.map((c) => ctx.queue.getJobState(jobIdFor(batchId, c))));
    for (const chatKey of chatKeys.filter((_, i) => states[i] === 'unknown')) {
      if (await recordCancelled(ctx, batchId, chatKey)) cancelled += 1;
    }
  }
  return cancelled;
}
