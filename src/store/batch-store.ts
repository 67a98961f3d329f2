/**
 * Batch records in Redis: one hash per batch with its meta, status and counters, plus an index for listing.
 */
import { randomBytes } from 'node:crypto';

import { BatchStateError } from '../domain/errors.js';
import { type BatchKind, type BatchRecord, COUNT_FIELDS, decodeBatchHash } from './codecs.js';
import { allBatchKeys, type Keys } from './keys.js';
import { type ScriptedRedis, transitionStatus } from './scripts.js';
import { type BatchStatus, Status, TRANSITIONS, type TransitionName } from '../domain/lifecycle.js';

// The record's shape and decoder live with the other stored values (codecs.ts); importers keep this path.
export type { BatchCounts, BatchKind, BatchRecord } from './codecs.js';

export interface NewBatch {
  readonly name?: string;
  readonly kind: BatchKind;
  readonly source: string;
  readonly parent?: string;
  readonly dryRun?: boolean;
  readonly notes?: readonly string[];
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
  addNote(batchId: string, note: string): Promise<void>;
  /** Batch ids newest first. Ids whose record expired are dropped from the index on the way. */
  list(limit?: number): Promise<BatchRecord[]>;
  /** Sets the retention TTL on every key of a finished batch. */
  expire(batchId: string, ttlSeconds: number): Promise<void>;
  /** Deletes a batch completely (a failed ingest leaves nothing behind). */
  remove(batchId: string): Promise<void>;
}

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
        status: Status.ingesting,
        dryRun: batch.dryRun ? 1 : 0,
        notes: JSON.stringify(batch.notes ?? []),
        ...Object.fromEntries(COUNT_FIELDS.map((f) => [f, 0])),
        done: 0,
        attempts: 0,
        rateLimited: 0,
      };
      if (batch.parent) fields.parent = batch.parent;
      await redis.multi().hset(keys.batch(id).batch, fields).zadd(keys.batchIndex, now, id).exec();
      if (batch.parent) await appendChild(redis, keys, batch.parent, id);
      return (await store.get(id)) as BatchRecord;
    },
    get: async (batchId) => {
      const key = keys.batch(batchId).batch;
      const h = await redis.hgetall(key);
      return Object.keys(h).length === 0 ? undefined : decodeBatchHash(h, key);
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
      const batch = await store.require(batchId);
      await store.update(batchId, { notes: JSON.stringify([...batch.notes, note]) });
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
      await redis.multi().del(...allBatchKeys(keys.batch(batchId))).zrem(keys.batchIndex, batchId).exec();
    },
  };
  return store;
}

async function appendChild(redis: ScriptedRedis, keys: Keys, parentId: string, childId: string): Promise<void> {
  const key = keys.batch(parentId).batch;
  const current = await redis.hget(key, 'children');
  await redis.hset(key, 'children', current ? `${current},${childId}` : childId);
}
