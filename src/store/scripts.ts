/**
 * The Lua steps that must be atomic, and a typed function per step. The Lua lives in src/store/lua/, one file per
 * script named after what it does and how many keys it takes (`claimChat-4.lua`), with KEYS / ARGV / output
 * documented at its top; script-loader.ts reads them. Scripts are registered on a connection with
 * `defineScripts`.
 *
 * Call the typed functions below, not the raw commands: they take keys and arguments by name (a swapped pair of
 * positional strings would still be a valid Redis call), and they check each reply against the script's
 * documented output, throwing a DataLayoutError naming the script otherwise.
 */
import type { Cluster, Redis } from 'ioredis';

import type { ResultState } from '../domain/chat.js';
import { DataLayoutError } from '../domain/errors.js';
import { type BatchStatus, isBatchStatus } from '../domain/lifecycle.js';
import type { BatchKeys } from './keys.js';
import { type LoadedScript, loadScripts } from './script-loader.js';

/** Every script and its number of keys: the file is lua/<name>-<numberOfKeys>.lua. */
export const SCRIPT_KEYS = {
  stageRows: 2,
  claimChat: 4,
  recordResult: 6,
  rateLimited: 2,
  transitionStatus: 1,
  ownedLock: 1,
  pacerReserve: 1,
  pacerPause: 1,
  pacerPausedFor: 1,
  pacerAdmit: 1,
  pacerReserveRate: 2,
  rateRead: 1,
  rateSwap: 1,
  claimSource: 1,
  releaseClaim: 1,
  createChild: 6,
  appendNote: 2,
  hdelIfEquals: 1,
} as const;

export type ScriptName = keyof typeof SCRIPT_KEYS;

/** The raw commands `defineScripts` adds: positional strings in, unchecked replies out. */
export interface ScriptCommands {
  stageRows(chats: string, order: string, ...args: string[]): Promise<number[]>;
  claimChat(batch: string, results: string, parked: string, calls: string, chatKey: string, countCall: '1' | ''): Promise<string | number>;
  recordResult(batch: string, results: string, chats: string, latency: string, parked: string, calls: string, ...args: string[]): Promise<number>;
  rateLimited(batch: string, calls: string, ...args: string[]): Promise<unknown>;
  transitionStatus(batch: string, ...args: string[]): Promise<string | null>;
  pacerReserve(pacer: string, intervalUs: string): Promise<number>;
  pacerPause(pacer: string, pauseUs: string): Promise<number>;
  pacerAdmit(log: string, windowUs: string, max: string, member: string): Promise<number>;
  pacerPausedFor(pacer: string): Promise<number>;
  pacerReserveRate(pacer: string, rate: string, windowUs: string, fallbackRate: string, horizonUs: string): Promise<unknown>;
  rateRead(rate: string): Promise<unknown>;
  rateSwap(rate: string, version: string, ttlMs: string, ...fields: string[]): Promise<unknown>;
  ownedLock(lock: string, action: 'acquire' | 'extend' | 'release', owner: string, ttlMs: string): Promise<number>;
  claimSource(source: string, batchId: string, ttlSeconds: string, goneHolder: string): Promise<string>;
  releaseClaim(claim: string, owner: string): Promise<number>;
  createChild(
    child: string,
    childNotes: string,
    batchIndex: string,
    parent: string,
    parentChildren: string,
    parentRerun: string,
    ...args: string[]
  ): Promise<string>;
  appendNote(notes: string, batch: string, note: string): Promise<number>;
  hdelIfEquals(hash: string, field: string, value: string): Promise<number>;
}

/** A connection with our scripts: a single Redis, or a Redis Cluster (REDIS_CLUSTER; every key shares one slot). */
export type ScriptedRedis = (Redis | Cluster) & ScriptCommands;

function isScriptName(name: string): name is ScriptName {
  return Object.hasOwn(SCRIPT_KEYS, name);
}

/**
 * Read once, when this module loads: a missing, extra or misnamed .lua file fails at start-up, not on the first
 * call of that script.
 */
function checkedScripts(): readonly LoadedScript[] {
  const loaded = loadScripts();
  for (const script of loaded) {
    if (!isScriptName(script.name)) throw new Error(`lua/${script.name}-${script.numberOfKeys}.lua: no such script in SCRIPT_KEYS (scripts.ts)`);
    if (SCRIPT_KEYS[script.name] !== script.numberOfKeys) {
      throw new Error(`lua/${script.name}-${script.numberOfKeys}.lua: SCRIPT_KEYS (scripts.ts) says ${script.name} takes ${SCRIPT_KEYS[script.name]} keys`);
    }
  }
  const missing = Object.keys(SCRIPT_KEYS).filter((name) => !loaded.some((s) => s.name === name));
  if (missing.length > 0) throw new Error(`Lua scripts missing from lua/: ${missing.join(', ')}`);
  return loaded;
}

export const SCRIPTS: readonly LoadedScript[] = checkedScripts();

/** Registers the scripts on a connection (idempotent: ioredis caches by SHA and falls back to EVAL). */
export function defineScripts(redis: Redis | Cluster): ScriptedRedis {
  const scripted = redis as ScriptedRedis;
  if (typeof scripted.claimChat === 'function') return scripted;
  for (const script of SCRIPTS) redis.defineCommand(script.name, { numberOfKeys: script.numberOfKeys, lua: script.lua });
  return scripted;
}

// ---------------------------------------------------------------------------------------------------------
// Typed calls

function unexpected(script: ScriptName, reply: unknown): never {
  const shown = typeof reply === 'string' ? JSON.stringify(reply.slice(0, 40)) : Array.isArray(reply) ? 'an array' : String(reply);
  throw new DataLayoutError(`Lua script ${script} replied ${shown}, outside what it documents (lua/${script}-${SCRIPT_KEYS[script]}.lua)`);
}

/** A non-negative integer reply (µs counts, flags). */
function count(script: ScriptName, reply: unknown): number {
  return typeof reply === 'number' && Number.isSafeInteger(reply) && reply >= 0 ? reply : unexpected(script, reply);
}

export type StageOutcome = 'staged' | 'duplicate';

export interface StagedRow {
  readonly chatKey: string;
  /** The row's stored form (codecs.ts StoredChat, as JSON). */
  readonly input: string;
}

/** stageRows-2: stages each row unless its chat was staged before. One outcome per row, in order. */
export async function stageRows(redis: ScriptedRedis, keys: Pick<BatchKeys, 'chats' | 'order'>, rows: readonly StagedRow[]): Promise<StageOutcome[]> {
  if (rows.length === 0) return [];
  const reply: unknown = await redis.stageRows(keys.chats, keys.order, ...rows.flatMap((row) => [row.chatKey, row.input]));
  if (!Array.isArray(reply) || reply.length !== rows.length) return unexpected('stageRows', reply);
  return reply.map((flag: unknown) => (flag === 1 ? 'staged' : flag === 0 ? 'duplicate' : unexpected('stageRows', flag)));
}

export type ClaimOutcome = 'go' | 'done' | 'parked' | 'cancel' | 'gone';

const CLAIM_OUTCOMES: Readonly<Record<ClaimOutcome, true>> = { go: true, done: true, parked: true, cancel: true, gone: true };

function isClaimOutcome(value: unknown): value is ClaimOutcome {
  return typeof value === 'string' && Object.hasOwn(CLAIM_OUTCOMES, value);
}

/** claimChat-4: whether a chat's job should call the API now (parks it if its batch is ingesting, paused or stopped). */
export async function claimChat(redis: ScriptedRedis, keys: Pick<BatchKeys, 'batch' | 'results' | 'parked' | 'calls'>, chatKey: string): Promise<ClaimOutcome> {
  const reply: unknown = await redis.claimChat(keys.batch, keys.results, keys.parked, keys.calls, chatKey, '');
  return isClaimOutcome(reply) ? reply : unexpected('claimChat', reply);
}

/**
 * claimChat-4 with the call counted: as `claimChat`, but a go also counts the call about to be made, in the same
 * step, and answers the chat's calls so far (a number) instead of 'go'.
 */
export async function claimChatCounted(
  redis: ScriptedRedis,
  keys: Pick<BatchKeys, 'batch' | 'results' | 'parked' | 'calls'>,
  chatKey: string,
): Promise<Exclude<ClaimOutcome, 'go'> | number> {
  const reply: unknown = await redis.claimChat(keys.batch, keys.results, keys.parked, keys.calls, chatKey, '1');
  if (typeof reply === 'number') return Number.isSafeInteger(reply) && reply >= 1 ? reply : unexpected('claimChat', reply);
  return isClaimOutcome(reply) && reply !== 'go' ? reply : unexpected('claimChat', reply);
}

export interface ResultRecording {
  readonly chatKey: string;
  /** The encoded result (codecs.ts encodeResult). */
  readonly record: string;
  /** The batch counter it moves. */
  readonly counter: ResultState;
  /**
   * HTTP attempts made, added to the batch's `attempts`. The chat's call count (BatchKeys.calls), when it has
   * one, takes its place, in the batch and in the record.
   */
  readonly attempts: number;
  /** Latency histogram bucket to count it in; none when undefined. */
  readonly latencyBucket?: number | undefined;
  /** Failure reason to tally on the batch; none when undefined or ''. */
  readonly failureReason?: string | undefined;
  /** Stored as the batch's `finishedAt` if this was its last chat. */
  readonly now: number;
}

export type RecordOutcome = 'recorded' | 'duplicate' | 'last';

/**
 * recordResult-6: stores a result once and moves the counters. 'duplicate': the chat already had one (nothing
 * changed); 'last': it was the batch's last chat and the batch moved to its lifecycle's `complete` status.
 */
export async function recordResult(redis: ScriptedRedis, keys: BatchKeys, r: ResultRecording): Promise<RecordOutcome> {
  const reply: unknown = await redis.recordResult(
    keys.batch,
    keys.results,
    keys.chats,
    keys.latency,
    keys.parked,
    keys.calls,
    r.chatKey,
    r.record,
    r.counter,
    String(r.attempts),
    r.latencyBucket === undefined ? '' : String(r.latencyBucket),
    r.failureReason ?? '',
    String(r.now),
  );
  if (reply === -1) return 'duplicate';
  if (reply === 0) return 'recorded';
  if (reply === 1) return 'last';
  return unexpected('recordResult', reply);
}

export interface RateLimitedCall {
  readonly chatKey: string;
  /** ms epoch. */
  readonly now: number;
  /** The pause the answer asks for (Retry-After, or our own backoff). */
  readonly pauseMs: number;
  /** Longest run of 429s a batch may have before it is stopped; 0 = no limit. */
  readonly maxRunMs: number;
  /** A 429 this long after the last pause ended starts a new run. */
  readonly gapMs: number;
  /** The status in which a batch keeps a run (the lifecycle's running status). */
  readonly runningStatus: BatchStatus;
}

export interface RateLimitRun {
  /** When the batch's run of 429s began (ms epoch); undefined when the batch is in no status that keeps one. */
  readonly since: number | undefined;
  /** When the pause ends (ms epoch): now + pauseMs, cut short where the run reaches `maxRunMs`. */
  readonly pauseUntil: number;
}

/** rateLimited-2: counts a 429, takes its call back from the chat's call count, and keeps the batch's run of 429s. */
export async function rateLimited(redis: ScriptedRedis, keys: Pick<BatchKeys, 'batch' | 'calls'>, c: RateLimitedCall): Promise<RateLimitRun> {
  const reply: unknown = await redis.rateLimited(
    keys.batch,
    keys.calls,
    c.chatKey,
    String(c.now),
    String(Math.ceil(c.pauseMs)),
    String(Math.ceil(c.maxRunMs)),
    String(Math.ceil(c.gapMs)),
    c.runningStatus,
  );
  if (!Array.isArray(reply) || reply.length !== 2) return unexpected('rateLimited', reply);
  const [since, pauseUntil] = reply.map((n: unknown) => count('rateLimited', n)) as [number, number];
  return { since: since === 0 ? undefined : since, pauseUntil };
}

export interface StatusMove {
  readonly to: BatchStatus;
  /** Stored as the batch's `reason` ('' clears it). */
  readonly reason: string;
  readonly from: readonly BatchStatus[];
}

/** transitionStatus-1: compare-and-set of a batch's status. The previous status, or undefined if it did not move. */
export async function transitionStatus(redis: ScriptedRedis, batchKey: string, move: StatusMove): Promise<BatchStatus | undefined> {
  const reply: unknown = await redis.transitionStatus(batchKey, move.to, move.reason, ...move.from);
  if (reply === null) return undefined;
  return typeof reply === 'string' && isBatchStatus(reply) ? reply : unexpected('transitionStatus', reply);
}

export interface LockCall {
  readonly action: 'acquire' | 'extend' | 'release';
  readonly owner: string;
  /** Expiry set by acquire and extend. */
  readonly ttlMs: number;
}

/** ownedLock-1: true if `owner` holds (held) the lock after the call. */
export async function ownedLock(redis: ScriptedRedis, lockKey: string, call: LockCall): Promise<boolean> {
  const reply: unknown = await redis.ownedLock(lockKey, call.action, call.owner, String(call.ttlMs));
  if (reply === 1) return true;
  if (reply === 0) return false;
  return unexpected('ownedLock', reply);
}

/** pacerReserve-1: takes the next call slot, `intervalUs` after the previous one. Returns µs to wait for it. */
export async function pacerReserve(redis: ScriptedRedis, pacerKey: string, intervalUs: number): Promise<number> {
  return count('pacerReserve', await redis.pacerReserve(pacerKey, String(intervalUs)));
}

/** pacerPause-1: no slot before now + `pauseUs`. */
export async function pacerPause(redis: ScriptedRedis, pacerKey: string, pauseUs: number): Promise<void> {
  const reply: unknown = await redis.pacerPause(pacerKey, String(pauseUs));
  if (reply !== 1) unexpected('pacerPause', reply);
}

/** pacerPausedFor-1: µs left of the current pause (0 = not paused). */
export async function pacerPausedFor(redis: ScriptedRedis, pacerKey: string): Promise<number> {
  return count('pacerPausedFor', await redis.pacerPausedFor(pacerKey));
}

export interface AdmitCall {
  readonly windowUs: number;
  /** Calls allowed in any window. */
  readonly max: number;
  /** Unique per call: the log's member. */
  readonly member: string;
}

/** pacerAdmit-1: 0 when the call may go now (and is logged), else µs until the log's oldest call leaves the window. */
export async function pacerAdmit(redis: ScriptedRedis, logKey: string, call: AdmitCall): Promise<number> {
  return count('pacerAdmit', await redis.pacerAdmit(logKey, String(call.windowUs), String(call.max), call.member));
}

/** pacerReserveRate-2: the next call slot, spaced by the adaptive rate stored under `rateKey`, if it is within `horizonUs`. */
export async function pacerReserveRate(
  redis: ScriptedRedis,
  keys: { readonly pacer: string; readonly rate: string },
  call: { readonly windowUs: number; readonly fallbackRate: number; readonly horizonUs: number },
): Promise<{ waitUs: number; rate: number; taken: boolean }> {
  const reply = await redis.pacerReserveRate(keys.pacer, keys.rate, String(call.windowUs), String(call.fallbackRate), String(call.horizonUs));
  if (!Array.isArray(reply) || reply.length !== 3 || (reply[2] !== 0 && reply[2] !== 1)) return unexpected('pacerReserveRate', reply);
  return { waitUs: count('pacerReserveRate', reply[0]), rate: count('pacerReserveRate', reply[1]), taken: reply[2] === 1 };
}

/** rateRead-1: Redis's clock (ms) and the adaptive rate state's fields as stored (empty when none). */
export async function rateRead(redis: ScriptedRedis, rateKey: string): Promise<{ now: number; fields: Record<string, string> }> {
  const reply = await redis.rateRead(rateKey);
  if (!Array.isArray(reply) || reply.length % 2 !== 1) return unexpected('rateRead', reply);
  const [now, ...flat] = reply as unknown[];
  const fields: Record<string, string> = Object.create(null) as Record<string, string>;
  for (let i = 0; i < flat.length; i += 2) {
    const [field, value] = [flat[i], flat[i + 1]];
    if (typeof field !== 'string' || typeof value !== 'string') return unexpected('rateRead', reply);
    fields[field] = value;
  }
  return { now: count('rateRead', now), fields };
}

/** rateSwap-1: writes `fields` if the stored version is still `version` ('0' = nothing stored). True when written. */
export async function rateSwap(
  redis: ScriptedRedis,
  rateKey: string,
  write: { version: string; ttlMs: number; fields: Record<string, string> },
): Promise<boolean> {
  const flat = Object.entries(write.fields).flat();
  const reply: unknown = await redis.rateSwap(rateKey, write.version, String(Math.ceil(write.ttlMs)), ...flat);
  if (reply === 1) return true;
  if (reply === 0) return false;
  return unexpected('rateSwap', reply);
}

/** A claim's answer: ours, or held by another batch (its id). */
export type ClaimReply = { readonly claimed: true } | { readonly claimed: false; readonly holder: string };

function claimReply(script: ScriptName, reply: unknown): ClaimReply {
  if (reply === '') return { claimed: true };
  return typeof reply === 'string' ? { claimed: false, holder: reply } : unexpected(script, reply);
}

export interface SourceClaim {
  readonly batchId: string;
  readonly ttlSeconds: number;
  /** A holder the caller found gone (no batch record), which this call may replace; '' for none. */
  readonly goneHolder: string;
}

/** claimSource-1: claims a content hash for a batch unless another batch (not `goneHolder`) holds it. */
export async function claimSource(redis: ScriptedRedis, sourceKey: string, c: SourceClaim): Promise<ClaimReply> {
  return claimReply('claimSource', await redis.claimSource(sourceKey, c.batchId, String(c.ttlSeconds), c.goneHolder));
}

/** releaseClaim-1: deletes a claim only if it still names `owner`. True if it did. */
export async function releaseClaim(redis: ScriptedRedis, claimKey: string, owner: string): Promise<boolean> {
  const reply: unknown = await redis.releaseClaim(claimKey, owner);
  if (reply === 1) return true;
  if (reply === 0) return false;
  return unexpected('releaseClaim', reply);
}

/** hdelIfEquals-1: deletes a hash field only if it still holds `value` (what the caller read). True if it did. */
export async function hdelIfEquals(redis: ScriptedRedis, hashKey: string, field: string, value: string): Promise<boolean> {
  const reply: unknown = await redis.hdelIfEquals(hashKey, field, value);
  if (reply === 1) return true;
  if (reply === 0) return false;
  return unexpected('hdelIfEquals', reply);
}

export interface ChildCreation {
  readonly childId: string;
  readonly createdAt: number;
  /** The parent's previous rerun, found final or gone by the caller, which this call may replace; '' for none. */
  readonly previous: string;
  /** The child's batch hash. */
  readonly fields: Readonly<Record<string, string | number>>;
  readonly notes: readonly string[];
  /** Which of the parent's slots the child claims: its rerun slot, or its restore slot (keys.ts `BatchKeys.restore`). @default 'rerun' */
  readonly slot?: 'rerun' | 'restore';
}

/**
 * createChild-6: creates a rerun (or restore) batch and claims its parent's rerun (or restore) slot in one step.
 * Not claimed: another child (not `previous`) holds the slot, and nothing was written.
 */
export async function createChild(
  redis: ScriptedRedis,
  keys: { readonly child: BatchKeys; readonly parent: BatchKeys; readonly batchIndex: string },
  c: ChildCreation,
): Promise<ClaimReply> {
  const pairs = Object.entries(c.fields).flatMap(([field, value]) => [field, String(value)]);
  const reply: unknown = await redis.createChild(
    keys.child.batch,
    keys.child.notes,
    keys.batchIndex,
    keys.parent.batch,
    keys.parent.children,
    keys.parent[c.slot ?? 'rerun'],
    c.childId,
    String(c.createdAt),
    c.previous,
    String(pairs.length / 2),
    ...pairs,
    ...c.notes,
  );
  return claimReply('createChild', reply);
}

/** appendNote-2: appends a note to a batch. False when the batch has no record. */
export async function appendNote(redis: ScriptedRedis, keys: Pick<BatchKeys, 'notes' | 'batch'>, note: string): Promise<boolean> {
  const reply: unknown = await redis.appendNote(keys.notes, keys.batch, note);
  if (reply === 1) return true;
  if (reply === 0) return false;
  return unexpected('appendNote', reply);
}
