/**
 * A batch's chats against the queue: which have no result yet, and giving a job back (same id) to each of them
 * that has none. Shared by resume (ops/batch-control.ts) and the reconciler (reconcile.ts).
 */
import type { Context } from '../runtime/context.js';
import { enqueueFinalize, JOB_UNASSIGN, jobIdFor, unassignJobOptions } from '../store/queue.js';

export type QueueCtx = Pick<Context, 'redis' | 'keys' | 'batches' | 'results' | 'queue' | 'policy'>;

/** Chat keys of a batch that have no result yet, in HSCAN pages. */
export async function* unfinishedChats(ctx: QueueCtx, batchId: string): AsyncIterable<string[]> {
  const k = ctx.keys.batch(batchId);
  let cursor = '0';
  do {
    const [next, flat] = await ctx.redis.hscan(k.chats, cursor, 'COUNT', 500);
    cursor = next;
    const chatKeys = flat.filter((_, i) => i % 2 === 0);
    if (chatKeys.length === 0) continue;
    const done = await ctx.redis.pipeline(chatKeys.map((c) => ['hexists', k.results, c])).exec();
    yield chatKeys.filter((_, i) => done?.[i]?.[1] !== 1);
  } while (cursor !== '0');
}

/**
 * One pass over a batch's unfinished chats: every chat without a job gets one again (same id), and chats that
 * have a job lose their parked mark. Returns how many jobs it added and which chats were running.
 */
export async function requeueMissing(ctx: QueueCtx, batchId: string): Promise<{ added: number; running: string[] }> {
  const parkedKey = ctx.keys.batch(batchId).parked;
  let added = 0;
  const running: string[] = [];
  for await (const chatKeys of unfinishedChats(ctx, batchId)) {
    const states = await Promise.all(chatKeys.map((c) => ctx.queue.getJobState(jobIdFor(batchId, c))));
    const missing = chatKeys.filter((_, i) => states[i] === 'unknown');
    running.push(...chatKeys.filter((_, i) => states[i] === 'active'));
    if (missing.length > 0) {
      await ctx.queue.addBulk(
        missing.map((c, j) => ({ name: JOB_UNASSIGN, data: { b: batchId, k: c }, opts: unassignJobOptions(batchId, c, added + j, ctx.policy) })),
      );
      added += missing.length;
    }
    const queued = chatKeys.filter((_, i) => states[i] !== 'active');
    if (queued.length > 0) await ctx.redis.hdel(parkedKey, ...queued);
  }
  return { added, running };
}

/** Records a chat of a batch being cancelled as cancelled (enqueuing the report if it was the last); false if it already had a result. */
export async function recordCancelled(ctx: QueueCtx, batchId: string, chatKey: string): Promise<boolean> {
  const outcome = await ctx.results.record(batchId, chatKey, {
    state: 'cancelled',
    httpStatus: 0,
    attempts: 0,
    finishedAt: Date.now(),
    latencyMs: 0,
    reason: 'batch cancelled',
  });
  if (outcome === 'last') await enqueueFinalize(ctx.queue, batchId);
  return outcome !== 'duplicate';
}
