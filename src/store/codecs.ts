/**
 * The values this build keeps in Redis (data layout v1, see layout.ts) and the decoders that read them back.
 * Nothing read from Redis is trusted by a cast: each decoder checks the shape and throws a DataLayoutError
 * naming the key (and field) when it meets something this build does not write — a value from another
 * version, or one edited by hand. The schedule values are decoded in schedule/store.ts with the building
 * blocks below: their shapes belong to the schedule layer, which the store layer may not import.
 *
 * JSON objects are read through their own properties only and rebuilt field by field, so a stored
 * `"__proto__"` or `"constructor"` member is a plain (and rejected or ignored) field, never a prototype.
 */
import { DataLayoutError } from '../domain/errors.js';
import type { FailureClass, RejectedRow, ResultState } from '../domain/chat.js';
import { type BatchStatus, isBatchStatus, Status } from '../domain/lifecycle.js';

// ---------------------------------------------------------------------------------------------------------
// Shapes

/** Counters of a batch. Invariants: rows = valid + rejected + duplicates; when finished, valid = succeeded + failed + cancelled + skipped. */
export interface BatchCounts {
  readonly rows: number;
  readonly valid: number;
  readonly rejected: number;
  readonly duplicates: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly cancelled: number;
  /** Chats left alone on purpose (see ResultState). */
  readonly skipped: number;
}

/** How the batch came to be. */
export type BatchKind = 'csv' | 'rerun' | 'nightly' | 'restore';

/** What a batch does to each chat: unassign it, or assign it back to its previous agent (a restore, and its reruns). */
export type BatchAction = 'unassign' | 'assign';

/** A batch record: the batch hash (keys.ts `BatchKeys.batch`) decoded. */
export interface BatchRecord {
  readonly id: string;
  readonly name: string;
  readonly kind: BatchKind;
  /** Source file name (or a description for non-file sources). */
  readonly source: string;
  readonly sha256: string;
  readonly createdAt: number;
  /** Who created it (an audit actor's name, e.g. `alice` or `schedule nightly`); '' for batches made before it was kept. */
  readonly createdBy: string;
  readonly startedAt?: number;
  readonly finishedAt?: number;
  readonly status: BatchStatus;
  /** Why the batch is stopped, paused or cancelled ('' otherwise). */
  readonly reason: string;
  readonly parent?: string;
  readonly children: readonly string[];
  readonly dryRun: boolean;
  readonly action: BatchAction;
  /** Each chat's agent is read (GET /customer/details) right before its unassign call, so a restore can give it back. */
  readonly captureAssignees: boolean;
  /** Succeeded chats whose previous agent is known: what a restore would assign back. Set when the report is written. */
  readonly restorable?: number;
  /** The source's header, in order: failed.csv repeats these columns. */
  readonly header: readonly string[];
  readonly counts: BatchCounts;
  /** Terminal chats so far (succeeded + failed + cancelled). */
  readonly done: number;
  /** HTTP attempts made by terminal chats. */
  readonly attempts: number;
  /** 429 answers seen. */
  readonly rateLimited: number;
  /** When the latest pause a 429 of this batch asked for ends (ms epoch); absent before the first 429. */
  readonly apiPauseUntil?: number;
  /** Start of the batch's current run of 429s with no success since (ms epoch); absent when there is none. */
  readonly rateLimitedSince?: number;
  /** Failure reason → chats. */
  readonly reasons: Readonly<Record<string, number>>;
  /** Free-form notes (e.g. "previous nightly batch still running: skipped"). */
  readonly notes: readonly string[];
  /** A batch held for approval: its first chats (phone numbers masked), what it would send ([] otherwise). */
  readonly sample: readonly string[];
  /** A batch held for approval: when it is rejected unless approved first (ms epoch). */
  readonly approvalExpiresAt?: number;
}

/** One chat's terminal result: a field of the results hash. */
export interface ChatResult {
  readonly state: ResultState;
  /** HTTP status of the last attempt, 0 when there was no answer (timeout, connection error) or no call. */
  readonly httpStatus: number;
  readonly attempts: number;
  readonly finishedAt: number;
  /** Latency of the last attempt in ms, 0 when no call was made. */
  readonly latencyMs: number;
  readonly failureClass?: FailureClass;
  /** Human reason for a failure or cancellation ('' on success). */
  readonly reason: string;
}

/** A chat's input row as the batch stored it: a field of the chats hash. */
export interface StoredChat {
  readonly line: number;
  readonly cells: Record<string, string>;
}

// ---------------------------------------------------------------------------------------------------------
// Building blocks (also for values whose shapes live above the store layer: schedule/store.ts)

/** A parsed JSON object, read through the functions below (own members only). */
export type JsonObject = Readonly<Record<string, unknown>>;

/** A short, safe rendering of a bad value for a message (strings are cut: they may hold a phone number). */
function shown(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return `${typeof value} ${value}`;
  return typeof value;
}

/** Throws the DataLayoutError for a value at `where` that is not what was `expected`. */
export function mismatch(where: string, expected: string, got: unknown): never {
  throw new DataLayoutError(`unexpected data in Redis at ${where}: expected ${expected}, got ${shown(got)}`);
}

/**
 * A set of allowed strings as a Record over the union, so the compiler checks the list against the type in both
 * directions (a member missing from the list, or a list entry outside the type, is an error).
 */
export function oneOf<T extends string>(members: Readonly<Record<T, true>>): (value: unknown) => value is T {
  return (value: unknown): value is T => typeof value === 'string' && Object.hasOwn(members, value);
}

function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A member of a parsed JSON object, own properties only (an inherited `constructor` is not a field). */
export function memberOf(obj: JsonObject, name: string): unknown {
  return Object.hasOwn(obj, name) ? obj[name] : undefined;
}

/** Names a field of a hash, for messages. */
export function hashField(key: string, field: string): string {
  return `${key} field ${JSON.stringify(field)}`;
}

/** Parses JSON, naming `where` when it is not JSON. */
export function parseJson(text: string, where: string): unknown {
  try {
    const value: unknown = JSON.parse(text);
    return value;
  } catch {
    return mismatch(where, 'JSON', text);
  }
}

export function jsonObject(value: unknown, where: string, expected = 'a JSON object'): JsonObject {
  return isJsonObject(value) ? value : mismatch(where, expected, value);
}

export function stringMember(obj: JsonObject, name: string, where: string): string {
  const value = memberOf(obj, name);
  return typeof value === 'string' ? value : mismatch(`${where} member "${name}"`, 'a string', value);
}

export function optionalStringMember(obj: JsonObject, name: string, where: string): string | undefined {
  return memberOf(obj, name) === undefined ? undefined : stringMember(obj, name, where);
}

export function numberMember(obj: JsonObject, name: string, where: string, integer = false): number {
  const value = memberOf(obj, name);
  const ok = typeof value === 'number' && (integer ? Number.isSafeInteger(value) : Number.isFinite(value));
  return ok ? value : mismatch(`${where} member "${name}"`, integer ? 'an integer' : 'a number', value);
}

export function booleanMember(obj: JsonObject, name: string, where: string): boolean {
  const value = memberOf(obj, name);
  return typeof value === 'boolean' ? value : mismatch(`${where} member "${name}"`, 'true or false', value);
}

export function stringArray(value: unknown, where: string): string[] {
  if (!Array.isArray(value)) return mismatch(where, 'an array of strings', value);
  return value.map((item: unknown, i) => (typeof item === 'string' ? item : mismatch(`${where}[${i}]`, 'a string', item)));
}

export function stringArrayMember(obj: JsonObject, name: string, where: string): string[] {
  return stringArray(memberOf(obj, name), `${where} member "${name}"`);
}

/** String → string map, rebuilt with own entries only (Object.fromEntries defines, never assigns, so `__proto__` stays a key). */
function stringRecord(value: unknown, where: string): Record<string, string> {
  const obj = jsonObject(value, where, 'an object of strings');
  return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, typeof v === 'string' ? v : mismatch(`${where} member "${k}"`, 'a string', v)]));
}

/** Decodes a JSON array of strings (e.g. a schedule's last batch ids). */
export function decodeStringArray(text: string, where: string): string[] {
  return stringArray(parseJson(text, where), where);
}

// ---------------------------------------------------------------------------------------------------------
// Batch hash

/** The batch hash's counter fields, in the order BatchCounts lists them. */
export const COUNT_FIELDS = [
  'rows',
  'valid',
  'rejected',
  'duplicates',
  'succeeded',
  'failed',
  'cancelled',
  'skipped',
] as const satisfies readonly (keyof BatchCounts)[];

const isBatchKind = oneOf<BatchKind>({ csv: true, rerun: true, nightly: true, restore: true });
const isBatchAction = oneOf<BatchAction>({ unassign: true, assign: true });

/** Numbers in the hash are what String(number) wrote (HINCRBY counters, epoch ms). */
const NUMBER_TEXT = /^-?\d+(\.\d+)?(e[+-]?\d+)?$/i;

type Hash = Readonly<Record<string, string>>;

function field(h: Hash, name: string): string | undefined {
  return Object.hasOwn(h, name) ? h[name] : undefined;
}

function hashNumber(h: Hash, name: string, key: string): number | undefined {
  const text = field(h, name);
  if (text === undefined || text === '') return undefined;
  return NUMBER_TEXT.test(text) ? Number(text) : mismatch(hashField(key, name), 'a number', text);
}

function hashJsonStrings(h: Hash, name: string, key: string): string[] {
  const text = field(h, name);
  return text ? stringArray(parseJson(text, hashField(key, name)), hashField(key, name)) : [];
}

/** A batch's lists that belong to its record: keys.ts `BatchKeys.children` and `BatchKeys.notes`, in order. */
export interface BatchLists {
  readonly children?: readonly string[];
  readonly notes?: readonly string[];
}

/**
 * Decodes a batch hash (HGETALL of keys.ts `BatchKeys.batch`) and its lists. A field that is absent reads as its
 * zero value, as it always has: a hash can be partial (a late HINCRBY on an expired batch re-creates it with one
 * field). A field that is present must be what this build writes.
 *
 * Children and notes live in lists, so that concurrent appends never overwrite each other. Batches written
 * before that keep them in the hash (`children` comma-separated, `notes` a JSON array): those come first.
 */
export function decodeBatchHash(h: Hash, key: string, lists: BatchLists = {}): BatchRecord {
  // fromEntries, not assignment: a failure reason may be any text, `__proto__` included.
  const reasons = Object.fromEntries(
    Object.keys(h)
      .filter((name) => name.startsWith('reason:'))
      .map((name) => [name.slice(7), hashNumber(h, name, key) ?? 0]),
  );
  const counts: BatchCounts = {
    rows: hashNumber(h, 'rows', key) ?? 0,
    valid: hashNumber(h, 'valid', key) ?? 0,
    rejected: hashNumber(h, 'rejected', key) ?? 0,
    duplicates: hashNumber(h, 'duplicates', key) ?? 0,
    succeeded: hashNumber(h, 'succeeded', key) ?? 0,
    failed: hashNumber(h, 'failed', key) ?? 0,
    cancelled: hashNumber(h, 'cancelled', key) ?? 0,
    skipped: hashNumber(h, 'skipped', key) ?? 0,
  };
  const action = field(h, 'action') ?? 'unassign';
  const capture = field(h, 'capture') ?? '0';
  if (capture !== '0' && capture !== '1') mismatch(hashField(key, 'capture'), '0 or 1', capture);
  const restorable = hashNumber(h, 'restorable', key);
  const kind = field(h, 'kind') ?? 'csv';
  const status = field(h, 'status') ?? Status.ingesting;
  const dryRun = field(h, 'dryRun') ?? '0';
  if (dryRun !== '0' && dryRun !== '1') mismatch(hashField(key, 'dryRun'), '0 or 1', dryRun);
  const startedAt = hashNumber(h, 'startedAt', key);
  const finishedAt = hashNumber(h, 'finishedAt', key);
  const apiPauseUntil = hashNumber(h, 'apiPauseUntil', key);
  const rateLimitedSince = hashNumber(h, 'rateLimitedSince', key);
  const approvalExpiresAt = hashNumber(h, 'approvalExpiresAt', key);
  const parent = field(h, 'parent');
  const children = field(h, 'children');
  return {
    id: field(h, 'id') ?? '',
    name: field(h, 'name') ?? '',
    kind: isBatchKind(kind) ? kind : mismatch(hashField(key, 'kind'), 'csv, rerun, nightly or restore', kind),
    source: field(h, 'source') ?? '',
    sha256: field(h, 'sha256') ?? '',
    createdAt: hashNumber(h, 'createdAt', key) ?? 0,
    createdBy: field(h, 'createdBy') ?? '',
    ...(startedAt === undefined ? {} : { startedAt }),
    ...(finishedAt === undefined ? {} : { finishedAt }),
    status: isBatchStatus(status) ? status : mismatch(hashField(key, 'status'), 'a batch status', status),
    reason: field(h, 'reason') ?? '',
    ...(parent ? { parent } : {}),
    children: [...(children ? children.split(',') : []), ...(lists.children ?? [])],
    dryRun: dryRun === '1',
    action: isBatchAction(action) ? action : mismatch(hashField(key, 'action'), 'unassign or assign', action),
    captureAssignees: capture === '1',
    ...(restorable === undefined ? {} : { restorable }),
    header: hashJsonStrings(h, 'header', key),
    counts,
    done: hashNumber(h, 'done', key) ?? 0,
    attempts: hashNumber(h, 'attempts', key) ?? 0,
    rateLimited: hashNumber(h, 'rateLimited', key) ?? 0,
    ...(apiPauseUntil === undefined ? {} : { apiPauseUntil }),
    ...(rateLimitedSince === undefined ? {} : { rateLimitedSince }),
    reasons,
    notes: [...hashJsonStrings(h, 'notes', key), ...(lists.notes ?? [])],
    sample: hashJsonStrings(h, 'sample', key),
    ...(approvalExpiresAt === undefined ? {} : { approvalExpiresAt }),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Result records

const STATE_CODE: Readonly<Record<ResultState, string>> = { succeeded: 'S', failed: 'F', cancelled: 'C', skipped: 'K' };
const CODE_STATE: Readonly<Record<string, ResultState>> = { S: 'succeeded', F: 'failed', C: 'cancelled', K: 'skipped' };
const isFailureClass = oneOf<FailureClass>({ permanent: true, transient: true });
const MAX_REASON_CHARS = 300;
const INTEGER_TEXT = /^-?\d+$/;

/** Reasons are stored once per chat and grouped by text: keep them bounded and on one line. */
export function cleanReason(reason: string): string {
  return reason.replace(/[\r\n|]+/g, ' ').slice(0, MAX_REASON_CHARS);
}

/** One compact string per chat: `S|201|1|1764030000000|84||` (state, http, attempts, finished at, latency, class, reason). */
export function encodeResult(r: ChatResult): string {
  return [STATE_CODE[r.state], r.httpStatus, r.attempts, r.finishedAt, r.latencyMs, r.failureClass ?? '', cleanReason(r.reason)].join('|');
}

/** Decodes a result record; `where` names the results hash and field for the error. */
export function decodeResult(text: string, where = 'a result record'): ChatResult {
  const [code, http, attempts, at, latency, cls, ...rest] = text.split('|');
  if (rest.length === 0) mismatch(where, 'a result record of 7 |-separated parts', text);
  const state = code !== undefined && Object.hasOwn(CODE_STATE, code) ? CODE_STATE[code] : undefined;
  if (state === undefined) mismatch(`${where} (state)`, 'S, F, C or K', code);
  const integer = (part: string | undefined, name: string): number =>
    part !== undefined && INTEGER_TEXT.test(part) ? Number(part) : mismatch(`${where} (${name})`, 'an integer', part);
  const number = (part: string | undefined, name: string): number =>
    part !== undefined && NUMBER_TEXT.test(part) ? Number(part) : mismatch(`${where} (${name})`, 'a number', part);
  let failureClass: FailureClass | undefined;
  if (cls) {
    if (!isFailureClass(cls)) mismatch(`${where} (failure class)`, 'permanent, transient or nothing', cls);
    failureClass = cls;
  }
  return {
    state,
    httpStatus: integer(http, 'http status'),
    attempts: integer(attempts, 'attempts'),
    finishedAt: number(at, 'finished at'),
    latencyMs: number(latency, 'latency'),
    ...(failureClass ? { failureClass } : {}),
    reason: rest.join('|'),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Stored chats and rejected rows

/** Decodes a stored input row (a field of keys.ts `BatchKeys.chats`). */
export function decodeStoredChat(text: string, where: string): StoredChat {
  const obj = jsonObject(parseJson(text, where), where);
  const line = numberMember(obj, 'line', where, true);
  return { line, cells: stringRecord(memberOf(obj, 'cells'), `${where} member "cells"`) };
}

/** Decodes a rejected row (an entry of keys.ts `BatchKeys.rejected`). */
export function decodeRejectedRow(text: string, where: string): RejectedRow {
  const obj = jsonObject(parseJson(text, where), where);
  const column = optionalStringMember(obj, 'column', where);
  return {
    line: numberMember(obj, 'line', where, true),
    raw: stringMember(obj, 'raw', where),
    ...(column === undefined ? {} : { column }),
    reason: stringMember(obj, 'reason', where),
    cells: stringRecord(memberOf(obj, 'cells'), `${where} member "cells"`),
  };
}
