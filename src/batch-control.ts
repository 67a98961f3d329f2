/**
 * Pause, resume, stop and cancel one batch without touching the others. All batches share one queue, so
 * "pausing a batch" means taking its waiting jobs off the queue into the batch's parked set (and the claim
 * step parks any job fetched meanwhile); resume puts them back with the same ids.
 */
import { BatchStateError } from './errors.js';
import type { Context } from './context.js';
import { enqueueFinalize, JOB_UNASSIGN, jobIdFor, unassignJobOptions } from './queue.js';
import type { BatchStatus } from './types.js';

type Ctx = Pick<Context, 'redis' | 'keys' | 'batches' | 'results' | 'queue' | 'policy'>;

/** Chat keys of a batch that have no result yet, in HSCAN pages. */
async function* unfinishedChats(ctx: Ctx, batchId: string): AsyncIterable<string[]> {
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
 * Takes a batch's waiting jobs off the queue into its parked set. Parks first, removes second: a crash in
 * between leaves a chat both parked and queued, which the claim step resolves (no chat is ever lost).
 * Jobs that are running cannot be removed; they finish or park themselves. Returns the number removed.
 */
export async function parkWaiting(ctx: Ctx, batchId: string): Promise<number> {
  const parkedKey = ctx.keys.batch(batchId).parked;
  let removed = 0;
  for await (const chatKeys of unfinishedChats(ctx, batchId)) {
    await ctx.redis.hset(parkedKey, Object.fromEntries(chatKeys.map((c) => [c, 1])));
    for (const chatKey of chatKeys) removed += await ctx.queue.remove(jobIdFor(batchId, chatKey));
  }
  return removed;
}

export async function pauseBatch(ctx: Ctx, batchId: string): Promise<number> {
  const previous = await ctx.batches.transition(batchId, 'paused', ['running', 'queued'], 'paused by operator');
  if (previous === undefined) await refuse(ctx, batchId, 'pause', 'running');
  return parkWaiting(ctx, batchId);
}

/** Puts a paused or stopped batch's parked chats back on the queue (same job ids: no duplicates). */
export async function resumeBatch(ctx: Ctx, batchId: string): Promise<number> {
  const previous = await ctx.batches.transition(batchId, 'running', ['paused', 'stopped'], '');
  if (previous === undefined) await refuse(ctx, batchId, 'resume', 'paused or stopped');
  const parkedKey = ctx.keys.batch(batchId).parked;
  const chatKeys = await ctx.redis.hkeys(parkedKey);
  for (let i = 0; i < chatKeys.length; i += 1000) {
    const slice = chatKeys.slice(i, i + 1000);
    await ctx.queue.addBulk(slice.map((k, j) => ({ name: JOB_UNASSIGN, data: { b: batchId, k }, opts: unassignJobOptions(batchId, k, i + j, ctx.policy) })));
    await ctx.redis.hdel(parkedKey, ...slice);
  }
  return chatKeys.length;
}

/**
 * Cancels a batch: waiting and parked chats are recorded as `cancelled`; chats already in flight finish.
 * Returns how many chats were cancelled by this call.
 */
export async function cancelBatch(ctx: Ctx, batchId: string): Promise<number> {
  const previous = await ctx.batches.transition(batchId, 'cancelling', ['running', 'queued', 'paused', 'stopped'], 'cancelled by operator');
  if (previous === undefined) await refuse(ctx, batchId, 'cancel', 'running, paused or stopped');
  const parked = new Set(await ctx.redis.hkeys(ctx.keys.batch(batchId).parked));
  let cancelled = 0;
  for await (const chatKeys of unfinishedChats(ctx, batchId)) {
    for (const chatKey of chatKeys) {
      const removed = (await ctx.queue.remove(jobIdFor(batchId, chatKey))) === 1;
      if (!removed && !parked.has(chatKey)) continue; // running now: it finishes on its own
      const outcome = await ctx.results.record(batchId, chatKey, { state: 'cancelled', httpStatus: 0, attempts: 0, finishedAt: Date.now(), latencyMs: 0, reason: 'batch cancelled' });
      if (outcome !== 'duplicate') cancelled += 1;
      if (outcome === 'last') await enqueueFinalize(ctx.queue, batchId);
    }
  }
  return cancelled;
}

async function refuse(ctx: Ctx, batchId: string, action: string, needed: string): Promise<never> {
  const batch = await ctx.batches.require(batchId);
  throw new BatchStateError(`cannot ${action} batch ${batchId}: it is ${batch.status as BatchStatus}, and only a ${needed} batch can be`);
}
