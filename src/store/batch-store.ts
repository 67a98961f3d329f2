/**
 * Batch records in Redis: one hash per batch with its meta, status and counters, plus an index for listing.
 */
import { randomBytes } from 'node:crypto';

import { BatchStateError } from '../domain/errors.js';
import { type BatchAction, type BatchKind, type BatchRecord, COUNT_FIELDS, decodeBatchHash } from './codecs.js';
import { allBatchKeys, type Keys } from './keys.js';
import { appendNote, createChild, releaseClaim, type ScriptedRedis, transitionStatus } from './scripts.js';
import { ACTIVE, type BatchStatus, Status, TRANSITIONS, type TransitionName } from '../domain/lifecycle.js';

// The record's shape and decoder live with the other stored values (codecs.ts); importers keep this path.
export type { BatchCounts, BatchKind, BatchRecord } from './codecs.js';

export interface NewBatch {
  readonly name?: string;
  readonly kind: BatchKind;
  readonly source: string;
  /**
   * The batch this one reruns. Creating it claims the parent's rerun slot in the same atomic step (createChild):
   * refused with a BatchStateError while the parent's previous rerun is not final, so two reruns of one parent
   * can never both be created.
   */
  readonly parent?: string;
  readonly dryRun?: boolean;
  readonly notes?: readonly string[];
  /** Who created it: the audit actor's name. */
  readonly createdBy?: string;
  /** @default 'unassign' */
  readonly action?: BatchAction;
  /** Read each chat's agent right before its unassign call (--capture-assignees). */
  readonly captureAssignees?: boolean;
  /**
   * A restore (kind `restore`, with `parent`) claims the parent's restore slot instead of its rerun slot: refused
   * while any earlier restore of the parent exists, or with this set, while one is not final.
   */
  readonly force?: boolean;
}

/** Batch ids sort by time and never contain ':' (BullMQ custom job ids may not). */
export function newBatchId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

export interface BatchStore {
  create(batch: NewBatch, now?: number): Promise<BatchRecord>;
  get(batchId: string): Promise<BatchRecord | undefined>;
  /** Like `get`, but a missing batch is a BatchStateError naming the id. */
  require(batchId: string): Promise<BatchRecord>;
  update(batchId: string, fields: Record<string, string | number>): Promise<void>;
  /**
   * Applies a lifecycle transition as one compare-and-set: returns the previous status, or undefined if the
   * batch was in none of the statuses the transition moves from (or is missing). `reason` defaults to the
   * transition's own.
   */
  apply(batchId: string, transition: TransitionName, reason?: string): Promise<BatchStatus | undefined>;
  /** Appends a note (atomically: concurrent notes all stay). A missing batch is a BatchStateError. */
  addNote(batchId: string, note: string): Promise<void>;
  /** Batch ids newest first. Ids whose record expired are dropped from the index on the way. */
  list(limit?: number): Promise<BatchRecord[]>;
  /** Sets the retention TTL on every key of a finished batch. */
  expire(batchId: string, ttlSeconds: number): Promise<void>;
  /**
   * Deletes a batch completely (a failed ingest leaves nothing behind). A rerun is also taken off its parent's
   * children, and gives back the parent's rerun slot if it still holds it.
   */
  remove(batchId: string): Promise<void>;
}

/**
 * How often one create may find the parent's rerun slot held by a rerun that is over and try to replace it. Each
 * retry means another rerun replaced it meanwhile; more than a few in a row is not a race but a loop.
 */
const MAX_SLOT_TAKEOVERS = 5;

export function makeBatchStore(redis: ScriptedRedis, keys: Keys): BatchStore {
  const store: BatchStore = {
    create: async (batch, now = Date.now()) => {
      const id = newBatchId(new Date(now));
      const fields: Record<string, string | number> = {
        id,
        name: batch.name ?? id,
        kind: batch.kind,
        source: batch.source,
        createdAt: now,
        createdBy: batch.createdBy ?? '',
        status: Status.ingesting,
        dryRun: batch.dryRun ? 1 : 0,
        ...(batch.action === 'assign' ? { action: 'assign' } : {}),
        ...(batch.captureAssignees ? { capture: 1 } : {}),
        ...Object.fromEntries(COUNT_FIELDS.map((f) => [f, 0])),
        done: 0,
        attempts: 0,
        rateLimited: 0,
      };
      const notes = batch.notes ?? [];
      const k = keys.batch(id);
      if (batch.parent) {
        fields.parent = batch.parent;
        await createRerun(batch.parent, { childId: id, createdAt: now, fields, notes }, batch.kind === 'restore' ? { force: batch.force === true } : undefined);
      } else {
        const tx = redis.multi().hset(k.batch, fields);
        if (notes.length > 0) tx.rpush(k.notes, ...notes);
        await tx.zadd(keys.batchIndex, now, id).exec();
      }
      return (await store.get(id)) as BatchRecord;
    },
    get: async (batchId) => {
      const k = keys.batch(batchId);
      // A pipeline, not a transaction: Redis refuses every command queued in MULTI while it is out of memory, and
      // a batch must stay readable then (watchers show it waiting). Lists are only ever appended to, so reading
      // them a moment after the record at worst shows a newer note or child.
      const replies = (await redis.pipeline().hgetall(k.batch).lrange(k.children, 0, -1).lrange(k.notes, 0, -1).exec()) ?? [];
      const error = replies.find(([e]) => e)?.[0];
      if (error) throw error;
      const [h, children, notes] = replies.map(([, value]) => value) as [Record<string, string>, string[], string[]];
      return Object.keys(h).length === 0 ? undefined : decodeBatchHash(h, k.batch, { children, notes });
    },
    require: async (batchId) => {
      const batch = await store.get(batchId);
      if (!batch) throw new BatchStateError(`no batch with id ${batchId} (see \`bulk-unassign batches\`)`);
      return batch;
    },
    update: async (batchId, fields) => {
      await redis.hset(keys.batch(batchId).batch, fields);
    },
    apply: async (batchId, transition, reason = TRANSITIONS[transition].reason) => {
      const { to, from } = TRANSITIONS[transition];
      return transitionStatus(redis, keys.batch(batchId).batch, { to, reason, from });
    },
    addNote: async (batchId, note) => {
      if (!(await appendNote(redis, keys.batch(batchId), note))) await store.require(batchId);
    },
    list: async (limit = 50) => {
      const ids = await redis.zrevrange(keys.batchIndex, 0, limit - 1);
      const records: BatchRecord[] = [];
      for (const id of ids) {
        const batch = await store.get(id);
        if (batch) records.push(batch);
        else await redis.zrem(keys.batchIndex, id);
      }
      return records;
    },
    expire: async (batchId, ttlSeconds) => {
      const pipeline = redis.pipeline();
      for (const key of allBatchKeys(keys.batch(batchId))) pipeline.expire(key, ttlSeconds);
      await pipeline.exec();
    },
    remove: async (batchId) => {
      const parent = await redis.hget(keys.batch(batchId).batch, 'parent');
      const tx = redis
        .multi()
        .del(...allBatchKeys(keys.batch(batchId)))
        .zrem(keys.batchIndex, batchId);
      if (parent) tx.lrem(keys.batch(parent).children, 0, batchId);
      await tx.exec();
      if (parent) {
        await releaseClaim(redis, keys.batch(parent).rerun, batchId);
        await releaseClaim(redis, keys.batch(parent).restore, batchId);
      }
    },
  };

  /**
   * Creates a rerun and claims its parent's rerun slot in one step. The slot names the parent's latest rerun;
   * when that one is final (or its record is gone), it may be replaced — by exactly one of any reruns that
   * try at once, since each names the rerun it found over and the step replaces only that one.
   * A restore (`restore` given) claims the parent's restore slot by the same step: a restore that exists is
   * replaced only when forced and final, so two restores started together still make exactly one batch.
   */
  async function createRerun(
    parentId: string,
    child: { childId: string; createdAt: number; fields: Record<string, string | number>; notes: readonly string[] },
    restore?: { readonly force: boolean },
  ): Promise<void> {
    let previous = '';
    const slot = restore ? 'restore' : 'rerun';
    for (let attempt = 0; attempt < MAX_SLOT_TAKEOVERS; attempt += 1) {
      const reply = await createChild(
        redis,
        { child: keys.batch(child.childId), parent: keys.batch(parentId), batchIndex: keys.batchIndex },
        { ...child, previous, slot },
      );
      if (reply.claimed) return;
      const holder = await store.get(reply.holder);
      // A record without its id is a partial hash re-created by a late write after expiry: gone, not running.
      const exists = holder?.id === reply.holder;
      if (exists && ACTIVE.has(holder.status)) {
        throw new BatchStateError(`batch ${parentId} already has a ${slot} in progress: ${holder.id} (${holder.status})`);
      }
      // A dry run of a restore restored nothing: it never stands in the way.
      if (exists && restore && !restore.force && holder.status !== Status.dryRun) {
        throw new BatchStateError(
          `batch ${parentId} was already restored by batch ${holder.id} (${holder.status}): restoring again needs --force (\`bulk-unassign restore ${parentId} --force\`)`,
        );
      }
      previous = reply.holder;
    }
    throw new BatchStateError(`batch ${parentId}: other reruns kept replacing its latest rerun while this one was being created; try again`);
  }

  return store;
}
