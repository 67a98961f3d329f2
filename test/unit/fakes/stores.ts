/**
 * In-memory stand-ins for the Redis-backed stores, for unit tests of job processors (no Redis, no BullMQ
 * connection). They follow the contracts of src/store/batch-store.ts and src/store/result-store.ts and the
 * rules of the Lua steps in src/store/scripts.ts (claimChat / recordResult / transitionStatus), with the
 * lifecycle taken from src/domain/lifecycle.ts — not a second copy of it. Every call is logged in `calls`.
 */
import type { BatchCounts, BatchRecord, BatchStore, NewBatch } from '../../../src/store/batch-store.js';
import type { ChatResult, ClaimOutcome, ResultStore } from '../../../src/store/result-store.js';
import { type BatchStatus, GUARDS, Status, TRANSITIONS, type TransitionName } from '../../../src/domain/lifecycle.js';

export interface Call {
  readonly method: string;
  readonly args: readonly unknown[];
}

const ZERO_COUNTS: BatchCounts = { rows: 0, valid: 0, rejected: 0, duplicates: 0, succeeded: 0, failed: 0, cancelled: 0, skipped: 0 };

/** A batch record with sensible defaults; `valid` chats, status running unless said otherwise. */
export function batchRecord(overrides: Partial<Omit<BatchRecord, 'counts'>> & { counts?: Partial<BatchCounts> } = {}): BatchRecord {
  const { counts, ...rest } = overrides;
  return {
    id: 'b1',
    name: 'b1',
    kind: 'csv',
    source: 'chats.csv',
    sha256: '',
    createdAt: 1_764_000_000_000,
    createdBy: 'alice',
    status: Status.running,
    reason: '',
    children: [],
    dryRun: false,
    action: 'unassign',
    captureAssignees: false,
    header: ['phone', 'waba'],
    done: 0,
    attempts: 0,
    rateLimited: 0,
    reasons: {},
    notes: [],
    sample: [],
    ...rest,
    counts: { ...ZERO_COUNTS, ...counts },
  };
}

export interface FakeBatchStore extends BatchStore {
  readonly calls: Call[];
  /** The records, by id (mutable: tests put and inspect them directly). */
  readonly records: Map<string, BatchRecord>;
  /** TTLs set by `expire`, by batch id. */
  readonly ttls: Map<string, number>;
  put(record: BatchRecord): void;
}

export function fakeBatchStore(initial: readonly BatchRecord[] = []): FakeBatchStore {
  const records = new Map(initial.map((b) => [b.id, b]));
  const ttls = new Map<string, number>();
  const calls: Call[] = [];
  const log = (method: string, ...args: unknown[]): void => void calls.push({ method, args });
  let created = 0;
  const store: FakeBatchStore = {
    calls,
    records,
    ttls,
    put: (record) => void records.set(record.id, record),
    create: async (batch: NewBatch, now = Date.now()) => {
      log('create', batch, now);
      const id = `fake-${(created += 1)}`;
      const record = batchRecord({
        id,
        name: batch.name ?? id,
        kind: batch.kind,
        source: batch.source,
        createdAt: now,
        status: Status.ingesting,
        dryRun: batch.dryRun === true,
        notes: batch.notes ?? [],
        ...(batch.parent ? { parent: batch.parent } : {}),
      });
      records.set(id, record);
      return record;
    },
    get: async (batchId) => {
      log('get', batchId);
      return records.get(batchId);
    },
    require: async (batchId) => {
      log('require', batchId);
      const record = records.get(batchId);
      if (!record) throw new Error(`no batch with id ${batchId}`);
      return record;
    },
    update: async (batchId, fields) => {
      log('update', batchId, fields);
      const record = records.get(batchId);
      if (record) records.set(batchId, { ...record, ...(fields as Partial<BatchRecord>) });
    },
    // The compare-and-set of transitionStatus-1: move only from the transition's own statuses.
    apply: async (batchId: string, transition: TransitionName, reason: string = TRANSITIONS[transition].reason) => {
      log('apply', batchId, transition, reason);
      const record = records.get(batchId);
      const { from, to } = TRANSITIONS[transition];
      if (!record || !(from as readonly BatchStatus[]).includes(record.status)) return undefined;
      records.set(batchId, { ...record, status: to, reason });
      return record.status;
    },
    addNote: async (batchId, note) => {
      log('addNote', batchId, note);
      const record = records.get(batchId);
      if (record) records.set(batchId, { ...record, notes: [...record.notes, note] });
    },
    list: async (limit = 50) => {
      log('list', limit);
      return [...records.values()].sort((a, b) => b.createdAt - a.createdAt).slice(0, limit);
    },
    expire: async (batchId, ttlSeconds) => {
      log('expire', batchId, ttlSeconds);
      ttls.set(batchId, ttlSeconds);
    },
    remove: async (batchId) => {
      log('remove', batchId);
      records.delete(batchId);
    },
  };
  return store;
}

export interface FakeResultStore extends ResultStore {
  readonly calls: Call[];
  /** Results by batch id, then chat key. */
  readonly results: Map<string, Map<string, ChatResult>>;
  /** Parked chat keys by batch id. */
  readonly parked: Map<string, Set<string>>;
  /** 429s counted, by batch id. */
  readonly rateLimited: Map<string, number>;
  /** API calls counted and not yet recorded (keys.ts `BatchKeys.calls`), by batch id, then chat key. */
  readonly apiCalls: Map<string, Map<string, number>>;
  /** Kept agents (keys.ts `BatchKeys.agents`), by batch id, then chat key. */
  readonly agents: Map<string, Map<string, string>>;
}

/**
 * A result store over a fake batch store, deciding as the Lua steps do: `claim` reads the batch's status
 * (missing → gone, has a result → done, parkChats → parked (and parks), cancelChats → cancel, else go), and
 * `claimCall` also counts the call on go;
 * `record` takes the chat's call count (if any) as its attempts and drops it, stores once (else duplicate, the
 * count still added to the batch's attempts), moves the counters, ends the batch's run of 429s on a success,
 * and at the batch's last valid chat makes the `complete` transition and answers 'last'; `count429` takes the
 * call back and keeps the run of 429s as rateLimited-2 does.
 */
export function fakeResultStore(batches: FakeBatchStore): FakeResultStore {
  const results = new Map<string, Map<string, ChatResult>>();
  const parked = new Map<string, Set<string>>();
  const rateLimited = new Map<string, number>();
  const apiCalls = new Map<string, Map<string, number>>();
  /** Batch id → chat key → kept agent (the agents hash). */
  const agents = new Map<string, Map<string, string>>();
  const calls: Call[] = [];
  const log = (method: string, ...args: unknown[]): void => void calls.push({ method, args });
  const resultsOf = (batchId: string): Map<string, ChatResult> => results.get(batchId) ?? results.set(batchId, new Map()).get(batchId)!;
  const parkedOf = (batchId: string): Set<string> => parked.get(batchId) ?? parked.set(batchId, new Set()).get(batchId)!;
  const callsOf = (batchId: string): Map<string, number> => apiCalls.get(batchId) ?? apiCalls.set(batchId, new Map()).get(batchId)!;
  /** Drops `fields` from a batch record (HDEL). */
  const without = (record: BatchRecord, fields: readonly (keyof BatchRecord)[]): BatchRecord =>
    Object.fromEntries(Object.entries(record).filter(([k]) => !fields.includes(k as keyof BatchRecord))) as unknown as BatchRecord;
  const store: FakeResultStore = {
    calls,
    results,
    parked,
    rateLimited,
    apiCalls,
    agents,
    agentOf: async (batchId, chatKey) => agents.get(batchId)?.get(chatKey),
    keepAgent: async (batchId, chatKey, agent) => {
      log('keepAgent', batchId, chatKey, agent);
      (agents.get(batchId) ?? agents.set(batchId, new Map()).get(batchId)!).set(chatKey, agent);
    },
    restorable: async function* (batchId) {
      yield [...(agents.get(batchId) ?? new Map<string, string>())].filter(([chatKey]) => resultsOf(batchId).get(chatKey)?.state === 'succeeded');
    },
    claim: async (batchId, chatKey): Promise<ClaimOutcome> => {
      log('claim', batchId, chatKey);
      const batch = batches.records.get(batchId);
      if (!batch) return 'gone';
      if (resultsOf(batchId).has(chatKey)) {
        // A count left by a copy that called after the chat was recorded joins the batch's attempts.
        const counted = callsOf(batchId).get(chatKey);
        callsOf(batchId).delete(chatKey);
        if (counted) batches.records.set(batchId, { ...batch, attempts: batch.attempts + Math.max(0, counted) });
        return 'done';
      }
      if ((GUARDS.parkChats as readonly BatchStatus[]).includes(batch.status)) {
        parkedOf(batchId).add(chatKey);
        return 'parked';
      }
      if ((GUARDS.cancelChats as readonly BatchStatus[]).includes(batch.status)) return 'cancel';
      return 'go';
    },
    claimCall: async (batchId, chatKey) => {
      // The claim's rules (and any fault a test put on `claim`), then the count, as the one Lua step does.
      const before = calls.length;
      const outcome = await store.claim(batchId, chatKey);
      calls.splice(before); // one step: logged once, as claimCall
      log('claimCall', batchId, chatKey);
      if (outcome !== 'go') return outcome;
      const n = (callsOf(batchId).get(chatKey) ?? 0) + 1;
      callsOf(batchId).set(chatKey, n);
      return n;
    },
    record: async (batchId, chatKey, given) => {
      log('record', batchId, chatKey, given);
      const counted = callsOf(batchId).get(chatKey);
      callsOf(batchId).delete(chatKey);
      const result = counted === undefined ? given : { ...given, attempts: Math.max(0, counted) };
      const own = resultsOf(batchId);
      const before = batches.records.get(batchId);
      if (own.has(chatKey)) {
        if (before && counted !== undefined) batches.records.set(batchId, { ...before, attempts: before.attempts + result.attempts });
        return 'duplicate';
      }
      own.set(chatKey, result);
      parkedOf(batchId).delete(chatKey);
      if (!before) return 'recorded';
      const batch = result.state === 'succeeded' ? without(before, ['rateLimitedSince']) : before;
      const done = batch.done + 1;
      const counts = { ...batch.counts, [result.state]: batch.counts[result.state] + 1 };
      const complete = done >= batch.counts.valid && (TRANSITIONS.complete.from as readonly BatchStatus[]).includes(batch.status);
      batches.records.set(batchId, {
        ...batch,
        done,
        counts,
        attempts: batch.attempts + result.attempts,
        ...(complete ? { status: TRANSITIONS.complete.to } : {}),
      });
      return complete ? 'last' : 'recorded';
    },
    countCall: async (batchId, chatKey, by = 1) => {
      log('countCall', batchId, chatKey, by);
      const n = (callsOf(batchId).get(chatKey) ?? 0) + by;
      callsOf(batchId).set(chatKey, n);
      return n;
    },
    count429: async (batchId, chatKey, answer) => {
      log('count429', batchId, chatKey, answer);
      rateLimited.set(batchId, (rateLimited.get(batchId) ?? 0) + 1);
      const n = (callsOf(batchId).get(chatKey) ?? 0) - 1;
      if (n <= 0) callsOf(batchId).delete(chatKey);
      else callsOf(batchId).set(chatKey, n);
      let pauseUntil = answer.now + Math.ceil(answer.pauseMs);
      const batch = batches.records.get(batchId);
      if (!batch) return { since: undefined, pauseUntil };
      const previousEnd = batch.apiPauseUntil ?? 0;
      if (batch.status !== Status.running) {
        batches.records.set(batchId, { ...batch, apiPauseUntil: Math.max(previousEnd, pauseUntil) });
        return { since: undefined, pauseUntil };
      }
      const since = batch.rateLimitedSince === undefined || answer.now - previousEnd > answer.gapMs ? answer.now : batch.rateLimitedSince;
      if (answer.maxRunMs > 0 && since + answer.maxRunMs < pauseUntil) pauseUntil = Math.max(answer.now, since + answer.maxRunMs);
      batches.records.set(batchId, { ...batch, rateLimitedSince: since, apiPauseUntil: Math.max(previousEnd, pauseUntil) });
      return { since, pauseUntil };
    },
    endRateLimitRun: async (batchId) => {
      log('endRateLimitRun', batchId);
      const batch = batches.records.get(batchId);
      if (batch) batches.records.set(batchId, without(batch, ['rateLimitedSince']));
    },
    park: async (batchId, chatKey) => {
      log('park', batchId, chatKey);
      parkedOf(batchId).add(chatKey);
    },
    get: async (batchId, chatKey) => {
      log('get', batchId, chatKey);
      return results.get(batchId)?.get(chatKey);
    },
    scan: (batchId) => {
      log('scan', batchId);
      const entries = [...(results.get(batchId) ?? new Map<string, ChatResult>()).entries()];
      return (async function* () {
        yield* entries;
      })();
    },
  };
  return store;
}
