/**
 * Batch records in Redis: one hash per batch with its meta, status and counters, plus an index for listing.
 */
import { randomBytes } from 'node:crypto';

import { BatchStateError } from '../domain/errors.js';
import { allBatchKeys, type Keys } from './keys.js';
import type { ScriptedRedis } from './scripts.js';
import { type BatchStatus, Status, TRANSITIONS, type TransitionName } from '../domain/lifecycle.js';

/** Counters of a batch. Invariants: rows = valid + rejected + duplicates; when finished, valid = succeeded + failed + cancelled. */
export interface BatchCounts {
  readonly rows: number;
  readonly valid: number;
  readonly rejected: number;
  readonly duplicates: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly cancelled: number;
}

/** How the batch came to be. */
export type BatchKind = 'csv' | 'rerun' | 'nightly';

export interface BatchRecord {
  readonly id: string;
  readonly name: string;
  readonly kind: BatchKind;
  /** Source file name (or a description for non-file sources). */
  readonly source: string;
  readonly sha256: string;
  readonly createdAt: number;
  readonly startedAt?: number;
  readonly finishedAt?: number;
  readonly status: BatchStatus;
  /** Why the batch is stopped, paused or cancelled ('' otherwise). */
  readonly reason: string;
  readonly parent?: string;
  readonly children: readonly string[];
  readonly dryRun: boolean;
  /** The source's header, in order: failed.csv repeats these columns. */
  readonly header: readonly string[];
  readonly counts: BatchCounts;
  /** Terminal chats so far (succeeded + failed + cancelled). */
  readonly done: number;
  /** HTTP attempts made by terminal chats. */
  readonly attempts: number;
  /** 429 answers seen. */
  readonly rateLimited: number;
  /** Failure reason → chats. */
  readonly reasons: Readonly<Record<string, number>>;
  /** Free-form notes (e.g. "previous nightly batch still running: skipped"). */
  readonly notes: readonly string[];
}

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

const COUNT_FIELDS = ['rows', 'valid', 'rejected', 'duplicates', 'succeeded', 'failed', 'cancelled'] as const;

function num(value: string | undefined): number {
  return value === undefined || value === '' ? 0 : Number(value);
}

function optionalNum(value: string | undefined): number | undefined {
  return value === undefined || value === '' ? undefined : Number(value);
}

export function parseBatch(h: Record<string, string>): BatchRecord {
  const reasons: Record<string, number> = {};
  for (const [field, value] of Object.entries(h)) {
    if (field.startsWith('reason:')) reasons[field.slice(7)] = Number(value);
  }
  const counts = Object.fromEntries(COUNT_FIELDS.map((f) => [f, num(h[f])])) as unknown as BatchCounts;
  const startedAt = optionalNum(h.startedAt);
  const finishedAt = optionalNum(h.finishedAt);
  return {
    id: h.id ?? '',
    name: h.name ?? '',
    kind: (h.kind as BatchKind) ?? 'csv',
    source: h.source ?? '',
    sha256: h.sha256 ?? '',
    createdAt: num(h.createdAt),
    ...(startedAt === undefined ? {} : { startedAt }),
    ...(finishedAt === undefined ? {} : { finishedAt }),
    status: (h.status as BatchStatus) ?? Status.ingesting,
    reason: h.reason ?? '',
    ...(h.parent ? { parent: h.parent } : {}),
    children: h.children ? h.children.split(',') : [],
    dryRun: h.dryRun === '1',
    header: h.header ? (JSON.parse(h.header) as string[]) : [],
    counts,
    done: num(h.done),
    attempts: num(h.attempts),
    rateLimited: num(h.rateLimited),
    reasons,
    notes: h.notes ? (JSON.parse(h.notes) as string[]) : [],
  };
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
      const h = await redis.hgetall(keys.batch(batchId).batch);
      return Object.keys(h).length === 0 ? undefined : parseBatch(h);
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
      const previous = await redis.transitionStatus(keys.batch(batchId).batch, to, reason, ...from);
      return previous === null ? undefined : (previous as BatchStatus);
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
