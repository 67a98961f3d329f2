/**
 * The one module that names Redis keys. Every key lives under `{<QUEUE_PREFIX>}`: the braces
 * are a Redis Cluster hash tag, so the BullMQ queue and every batch's keys land in one slot and the Lua
 * scripts that touch several of them stay legal on a cluster.
 */

/** BullMQ queue that holds one job per chat (and the per-batch finalize jobs). */
export const QUEUE_NAME = 'unassign';

export interface BatchKeys {
  /** HASH: batch record — meta (id, name, source, sha256, times, status) and counters. */
  readonly batch: string;
  /** HASH: chat key → JSON input row (line + original cells). Succeeded chats are removed to save memory. */
  readonly chats: string;
  /** LIST: chat keys in file order, staged during ingest until they are enqueued, then deleted. */
  readonly order: string;
  /** HASH: chat key → result record (see result-store.ts). Exactly one per terminal chat. */
  readonly results: string;
  /** LIST: JSON rejected rows, in file order. */
  readonly rejected: string;
  /** HASH: chat key → 1 for chats taken off the queue while the batch is paused or stopped. */
  readonly parked: string;
  /** HASH: latency histogram bucket → count, filled as results are recorded. */
  readonly latency: string;
  /**
   * HASH: chat key → API calls made for the chat so far (a 429 is taken back), counted right before each call;
   * its result's `attempts` is this count, and recording the result deletes the field.
   */
  readonly calls: string;
  /** LIST: ids of the batch's reruns, oldest first (appended by the createChild step; batch-store.ts). */
  readonly children: string;
  /** LIST: the batch's notes, oldest first (RPUSH, so concurrent notes never overwrite each other). */
  readonly notes: string;
  /**
   * STRING: id of the batch's latest rerun, claimed atomically with creating it (createChild step): a rerun may
   * only start while that one is final or gone, so two operators can never rerun the same chats at once.
   */
  readonly rerun: string;
  /**
   * HASH: chat key → the agent (digits) the chat had before this batch's call: from the source (a CSV agent
   * column, GET /chats) at ingest, or read by the worker right before the unassign call (--capture-assignees). For
   * a restore batch, the agent each chat is assigned back to. Outlives the chat's entry in `chats`.
   */
  readonly agents: string;
  /**
   * STRING: id of the batch's latest restore, claimed atomically with creating it (createChild step, as `rerun`):
   * a second restore is refused unless forced, and never while that one is not final.
   */
  readonly restore: string;
}

export interface Keys {
  /** BullMQ `prefix` option: the hash-tagged prefix. */
  readonly bullPrefix: string;
  /** ZSET: batch id → created-at ms, for listing newest first. */
  readonly batchIndex: string;
  /** STRING per file hash: batch id of the last batch made from that content (expires with the duplicate window). */
  sourceHash(sha256: string): string;
  /** HASH: schedule definitions (name → JSON). */
  readonly schedules: string;
  /** HASH: `last:<schedule>` → JSON batch ids of its last run, `waiting:<schedule>` → the run waiting to start (schedule/store.ts). */
  readonly scheduleState: string;
  /** LIST per schedule: its latest runs, newest first, JSON (capped). */
  scheduleRuns(name: string): string;
  /** STRING per schedule: owner of the run reading its sources right now (expires if that process dies). */
  scheduleLock(name: string): string;
  /** STRING: the global pacer's `<next free call slot>|<paused until>`, µs since epoch (see pacer.ts, lua/includes/pacerState.lua). */
  readonly pacer: string;
  /** ZSET: the global pacer's sliding log of call times, µs (see pacer.ts, lua/pacerAdmit-1.lua). */
  readonly pacerLog: string;
  /**
   * HASH per API base URL and key fingerprint (a sha256 prefix, never the key): the adaptive rate limit's state
   * and what it learned (execution/adaptive-limiter.ts, RATE_LIMIT_MAX=auto).
   */
  rate(fingerprint: string): string;
  /** HASH: fingerprint → the API base URL it is for, so `status` and the console find every learned rate. */
  readonly rateIndex: string;
  /** STRING: the data layout version the keys under this prefix are written in (layout.ts). */
  readonly layout: string;
  /**
   * ZSET: failed chats of a batch scored by input line (failure-index.ts), built and deleted by one report or
   * rerun (`token` keeps two apart; it expires if its owner dies).
   */
  failureIndex(batchId: string, token: string): string;
  /** STRING per batch: which process is reconciling it right now (expires if that process dies; execution/reconcile.ts). */
  reconcileLock(batchId: string): string;
  /** STREAM: the audit trail, one entry per state-changing action (audit-store.ts). */
  readonly audit: string;
  /**
   * STRING: the random key console session cookies are signed with, made once by the first console (SET NX), so
   * every console of a deployment and every restart accept the same sessions (console/auth.ts).
   */
  readonly consoleSessionKey: string;
  /** STRING: written by watchers to learn whether Redis accepts writes (its value is of no interest). */
  readonly writeProbe: string;
  /** A SCAN/KEYS pattern matching every key under the prefix (the demo deletes its own prefix with it when done). */
  readonly everything: string;
  /** All keys of one batch. */
  batch(batchId: string): BatchKeys;
}

export function makeKeys(queuePrefix: string): Keys {
  const root = `{${queuePrefix}}`;
  return {
    bullPrefix: root,
    batchIndex: `${root}:batches`,
    schedules: `${root}:schedules`,
    scheduleState: `${root}:schedule-state`,
    scheduleRuns: (name) => `${root}:schedule:${name}:runs`,
    scheduleLock: (name) => `${root}:schedule:${name}:lock`,
    pacer: `${root}:pacer`,
    pacerLog: pacerLogKey(`${root}:pacer`),
    rate: (fingerprint) => `${root}:rate:${fingerprint}`,
    rateIndex: `${root}:rates`,
    layout: `${root}:layout`,
    everything: `${root}:*`,
    sourceHash: (sha256) => `${root}:source:${sha256}`,
    failureIndex: (batchId, token) => `${root}:batch:${batchId}:failures:${token}`,
    reconcileLock: (batchId) => `${root}:batch:${batchId}:reconcile`,
    writeProbe: `${root}:write-probe`,
    audit: `${root}:audit`,
    consoleSessionKey: `${root}:console:session-key`,
    batch: (batchId) => {
      const base = `${root}:batch:${batchId}`;
      return {
        batch: base,
        chats: `${base}:chats`,
        order: `${base}:order`,
        results: `${base}:results`,
        rejected: `${base}:rejected`,
        parked: `${base}:parked`,
        latency: `${base}:latency`,
        calls: `${base}:calls`,
        children: `${base}:children`,
        notes: `${base}:notes`,
        rerun: `${base}:rerun`,
        agents: `${base}:agents`,
        restore: `${base}:restore`,
      };
    },
  };
}

/**
 * The sliding log that goes with a pacer key. A function of the pacer key, so that a pacer made on any key
 * (tests use keys of their own) keeps its log in the same hash slot.
 */
export function pacerLogKey(pacerKey: string): string {
  return `${pacerKey}:log`;
}

/** Every key of a batch, for expiry and deletion. */
export function allBatchKeys(keys: BatchKeys): string[] {
  // Through a mapped type: Object.values types an interface's values as any.
  const byName: Readonly<Record<keyof BatchKeys, string>> = keys;
  return Object.values(byName);
}
