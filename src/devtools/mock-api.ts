/**
 * A stand-in DoubleTick server (see docs/doubletick-api.md): DoubleTick has no sandbox, so the demo,
 * the tests and the benchmark talk to this. Plain `node:http` because the benchmark pushes thousands of
 * requests per second through it; deterministic (seeded PRNG, per-number fault counters) so tests can
 * assert exact outcomes. It never logs: request bodies hold customer numbers and headers hold the API key.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';

import { chatKeyOf } from '../domain/chat.js';

/** Options of `startMockApi`. */
export interface MockApiOptions {
  /** @default '127.0.0.1' */ host?: string;
  /** @default 0 (a free port) */ port?: number;
  /** The only accepted Authorization header value (raw, no "Bearer"). */ apiKey: string;
  /** Fixed window per server, shared by unassign, GET /chats and the group listing; over it -> 429. @default null */
  rateLimit?: { max: number; windowMs: number } | null;
  /** Retry-After on 429s. @default 'seconds' (time until the window resets, rounded up) */ retryAfter?: RetryAfterMode;
  /**
   * A limit the server does not advertise, on unassign: a token bucket of this many calls per second (holding one
   * second's worth), answering 429 (Retry-After as `retryAfter` says) when empty. @default null
   */
  hiddenLimit?: number | null;
  /** The hidden limit changing over time: from `atMs` after the start (or reset) on, `perSecond`. Overrides `hiddenLimit`. */
  limitSchedule?: readonly LimitStep[] | null;
  /** Advertise the hidden limit in RateLimit-Limit / -Remaining / -Reset / -Policy headers (IETF draft). @default false */
  advertiseLimit?: boolean;
  /** Added to every 201 unassign answer, in ms. @default 0 */ latencyMs?: number;
  faults?: MockFaults;
  /** Generate this many chats for GET /chats, deterministically from `faults.seed`. @default 0 */ seedChats?: number;
  /** Chats given explicitly (kept alongside any seeded ones). */ chats?: SeedChat[];
  /** Epoch ms the seeded chats' times count back from; fix it for identical chats. @default Date.now() */ now?: number;
  /** Answer every API call (unassign, GET /chats, group listing) as something other than the API would. @default null */
  misroute?: MockMisroute | null;
  /**
   * Put `id` and `groupId` on listed chats, as this server once did. The real listing documents neither, so by
   * default they are left out and a client must find a group chat's groupId by name. @default false
   */
  undocumentedChatIds?: boolean;
  /**
   * Groups listed by GET /whatsapp/wa-group/list besides those of the chats (every group chat with a groupId has
   * a group of its name on its WABA number): a second group of the same subject makes a name ambiguous.
   */
  groups?: SeedGroup[];
  /** Groups per page of the group listing (the API documents no page size). @default 20 */ groupPageSize?: number;
  /**
   * Make the first N seeded group chats unresolvable by name, alternately: a second group with the same subject
   * on the same WABA number (ambiguous), then no group listed at all (unknown). @default 0
   */
  groupConflicts?: number;
  /**
   * Agents of chats by chat key (`chatKeyOf`): digits, or null for a chat without one. A listed chat's entry sets
   * its `assignedUserNumber`; any other key makes a chat that only unassign, assign and customer details know.
   */
  agents?: Record<string, string | null>;
}

/** One group as GET /whatsapp/wa-group/list shows it, plus the WABA number it belongs to. */
export interface SeedGroup {
  groupId: string;
  subject: string;
  wabaNumber: string;
  /** Epoch ms; listed as ISO 8601. Newest first. */ groupCreatedAt: number;
  description?: string;
  totalParticipantCount?: number;
  inviteLink?: string | null;
  status?: string;
}

/**
 * Not the API answering: `redirect` answers 302 (or `status`) with `Location: <location><request path>`, as a
 * moved or wrong base URL does; `html` answers 200 with an HTML page, as a proxy's or captive portal's sign-in
 * page does. Checked before the key and the rate limit: whatever answers does not know them.
 */
export type MockMisroute = { kind: 'redirect'; location: string; status?: 301 | 302 | 303 | 307 | 308 } | { kind: 'html' };

/** Faults injected into unassign calls, keyed by digits-only customer phone or, for group chats, groupId. */
export interface MockFaults {
  /** -> 422 */ rejectNumbers?: string[];
  /** -> 404 */ notFoundNumbers?: string[];
  /** number -> answer 503 this many times, then succeed. */ flaky?: Record<string, number>;
  /** number -> never answer (hold the socket) for the first N calls. */ timeoutNumbers?: Record<string, number>;
  /** number -> destroy the socket unanswered for the first N calls. */ resetNumbers?: Record<string, number>;
  /** 0..1: fraction of unassign calls answered 500 (seeded PRNG). */ serverErrorRate?: number;
  /** PRNG seed for 500s and seeded chats. @default 1 */ seed?: number;
  /** The next N unassign requests get 429 regardless of the rate limit. */ storm429?: number;
  /** After this many 201s every call gets 401, until the faults are replaced or reset. */ revokeKeyAfter?: number;
  /** Retry-After (seconds) on every 429, storms included, instead of the time until the window resets. */ retryAfterSeconds?: number;
}

/**
 * One chat of the stand-in's inbox. `id` and `groupId` are its own bookkeeping (the cursor, the unassign key of a
 * group chat); GET /chats shows them only with `undocumentedChatIds`.
 */
export interface SeedChat {
  id: string;
  chatType: 'INDIVIDUAL' | 'WA_GROUP';
  name: string;
  phoneNumber: string | null;
  groupId?: string;
  wabaNumber: string | null;
  assignedUserName: string | null;
  assignedUserNumber: string | null;
  isDone: boolean;
  unreadCount: number;
  chatUpdatedTime: number;
  lastMessageTime: number;
  tagNames: string[];
}

/** What the server saw. All but `listRequests` count unassign requests only. */
export interface MockApiStats {
  /** Received, all statuses. */ requests: number;
  /** '201' -> n, '429' -> n ..., and 'timeout' / 'reset' for the unanswered. */ byStatus: Record<string, number>;
  /** Chat key (`chatKeyOf`) -> number of 201 answers for it. */ unassigned: Record<string, number>;
  rateLimited: number;
  /** Busiest 1-second sliding window of requests received (all statuses). */ maxPerSecond: number;
  /** Most requests held at once: received, not yet answered (or their connection closed). */ maxInFlight: number;
  /** GET /chats calls. */ listRequests: number;
  /** GET /whatsapp/wa-group/list calls. */ groupListRequests: number;
  /** GET /chats and group listing calls answered 429 (the window they share with unassign was full). */ listRateLimited: number;
  /** POST /team-member/assign calls, all statuses. */ assignRequests: number;
  /** POST /team-member/assign answers by status. */ assignByStatus: Record<string, number>;
  /** Chat key -> number of 201 answers to assign calls for it. */ assigned: Record<string, number>;
  /** GET /customer/details calls. */ detailsRequests: number;
}

/** Unassign calls per second since the start, a reset or `setHiddenLimit`: index = whole seconds elapsed. */
export interface MockPerSecond {
  /** Calls the rate limits let through. */ ok: number[];
  /** Calls the hidden limit answered 429. */ limited: number[];
}

/** A running mock server. */
export interface MockApi {
  /** e.g. http://127.0.0.1:40123 (no trailing slash) */ readonly url: string;
  readonly port: number;
  stats(): MockApiStats;
  /** Unassign calls per second (let through, 429 by the hidden limit) since the start, a reset or setHiddenLimit. */ perSecond(): MockPerSecond;
  /** Replaces the faults and resets their counters. */ setFaults(f: MockFaults): void;
  setRateLimit(r: { max: number; windowMs: number } | null, retryAfter?: RetryAfterMode): void;
  /** Replaces the hidden limit (calls per second, or a schedule starting now; null: none); the per-second series start again. */ setHiddenLimit(
    limit: number | readonly LimitStep[] | null,
  ): void;
  /** Clears stats and counters (re-arming the faults), not the chats' assignment state. */ reset(): void;
  /** Starts (or with null, ends) answering as something other than the API. */ setMisroute(m: MockMisroute | null): void;
  /** Current chats, newest first; a 201 nulls assignedUserName/Number. */ chats(): SeedChat[];
  /** The groups the group listing serves, newest first. */ groups(): SeedGroup[];
  /**
   * A chat's agent (digits), null when it has none, undefined when the stand-in does not know the chat. The same
   * memory unassign, assign, customer details and GET /chats read and change.
   */
  agentOf(chatKey: string): string | null | undefined;
  /** Sets a chat's agent (null: none), as if someone assigned it in DoubleTick's own inbox. */
  setAgent(chatKey: string, agent: string | null): void;
  /** Closes the server and destroys held and keep-alive sockets. */ close(): Promise<void>;
}

/** One step of a hidden limit's schedule (`--limit-schedule 40@0s,10@20s`). */
export interface LimitStep {
  readonly perSecond: number;
  readonly atMs: number;
}

/** `40@0s,10@20s,30@40s` (also `500ms`) → steps in time order; throws a TypeError saying what is wrong. */
export function parseLimitSchedule(text: string): LimitStep[] {
  const steps = text.split(',').map((part) => {
    const match = /^\s*(\d{1,6})\s*@\s*(\d{1,7}(?:\.\d+)?)\s*(ms|s)?\s*$/.exec(part);
    if (!match || Number(match[1]) < 1)
      throw new TypeError(`Expected a limit schedule like 40@0s,10@20s,30@40s (calls per second ≥ 1 @ time), got \`${part}\``);
    return { perSecond: Number(match[1]), atMs: Number(match[2]) * (match[3] === 'ms' ? 1 : SECOND) };
  });
  return steps.sort((a, b) => a.atMs - b.atMs);
}

/** Form of the Retry-After header on 429s. */
export type RetryAfterMode = 'none' | 'seconds' | 'http-date';
type RateLimit = { max: number; windowMs: number };
type Route = (req: IncomingMessage, res: ServerResponse, body: string) => void;
type Fault = 'reset' | 'timeout' | readonly [status: number, body: string] | null;

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const MAX_BODY_BYTES = 64 * 1024;
const PHONE = /^\d{7,15}$/;
const AGENTS = [
  ['919811111111', 'Asha'],
  ['919822222222', 'Ravi'],
  ['919833333333', 'Meera'],
] as const;
const WABAS = ['919000000000', '919000000001'] as const;
const TAGS = ['vip', 'sales', 'support'] as const;
const RETRY_AFTER_MODES: readonly string[] = ['none', 'seconds', 'http-date'];
const STATUS_FILTERS: Record<string, ((c: SeedChat) => boolean) | null> = {
  all: null,
  waiting_for_response: null,
  open_cart: null, // not modelled by the mock: no filter
  done: (c) => c.isDone,
  open: (c) => !c.isDone,
  unresolved: (c) => !c.isDone,
  unread: (c) => c.unreadCount > 0,
};
const json = (value: unknown): string => JSON.stringify(value);
const BODY_401 = json({ message: 'Invalid public api key', error: 'Unauthorized', statusCode: 401 });
const BODY_429 = json({ statusCode: 429, message: 'Too Many Requests: Rate Limit Exceeded', error: 'Too Many Requests' });
const BODY_422 = json({ statusCode: 422, message: 'User is not a member of the team' });
const BODY_404 = json({ statusCode: 404, message: 'Chat not found', error: 'Not Found' });
// 5xx bodies are not documented (assumption): they follow the usual {statusCode, message} shape.
const BODY_503 = json({ statusCode: 503, message: 'Service Unavailable' });
const BODY_500 = json({ statusCode: 500, message: 'Internal server error' });
const BODY_201 = json({ success: true });
const BODY_409_ASSIGNED = json({ statusCode: 409, message: 'Chat is already assigned' });
const BODY_404_DETAILS = json({ statusCode: 404, message: 'NotFound' });
const HTML_PAGE = '<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body><h1>Sign in to continue</h1></body></html>\n';
const badRequest = (message: string[]): string => json({ statusCode: 400, message, error: 'Bad Request' });
const ISO_DATE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/;

/** mulberry32: tiny and fast, and the same sequence for a seed on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function send(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  if (res.destroyed) return; // the client left (or close() ran) while we waited
  const length = String(Buffer.byteLength(body));
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': length, ...headers });
  res.end(body);
}

function retryAfterHeader(mode: RetryAfterMode, waitMs: number): Record<string, string> {
  if (mode === 'none') return {};
  if (mode === 'seconds') return { 'retry-after': String(Math.max(1, Math.ceil(waitMs / SECOND))) };
  // HTTP dates have 1 s resolution: round up, or a client that waits until the date comes back too early.
  return { 'retry-after': new Date(Math.ceil((Date.now() + waitMs) / SECOND) * SECOND).toUTCString() };
}

/** Busiest 1-second sliding window: a queue of arrival times (monotonic ms), trimmed as time moves on. */
class PeakRate {
  private times: number[] = [];
  private head = 0;
  peak = 0;
  hit(now: number): void {
    this.times.push(now);
    while (this.times[this.head]! <= now - SECOND) this.head++;
    this.peak = Math.max(this.peak, this.times.length - this.head);
    if (this.head > 4096) this.times = this.times.slice(this.head - (this.head = 0)); // bound memory on long runs
  }
}

/**
 * The hidden limit: a token bucket refilled at the current limit per second, holding one second's worth. `take`
 * answers 0 when a request may pass, else the ms until the next token.
 */
class HiddenBucket {
  private tokens: number;
  private last: number;
  constructor(
    private readonly steps: readonly LimitStep[],
    private readonly started: number,
  ) {
    this.tokens = this.limitAt(started);
    this.last = started;
  }
  limitAt(now: number): number {
    let limit = 0;
    for (const s of this.steps) if (now - this.started >= s.atMs) limit = s.perSecond;
    return limit;
  }
  take(now: number): { waitMs: number; limit: number; remaining: number } {
    const limit = this.limitAt(now);
    if (limit <= 0) return { waitMs: 0, limit: 0, remaining: 0 };
    this.tokens = Math.min(limit, this.tokens + ((now - this.last) / SECOND) * limit);
    this.last = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return { waitMs: 0, limit, remaining: Math.floor(this.tokens) };
    }
    return { waitMs: Math.ceil(((1 - this.tokens) / limit) * SECOND), limit, remaining: 0 };
  }
}

function hiddenStepsOf(opts: Pick<MockApiOptions, 'hiddenLimit' | 'limitSchedule'>): LimitStep[] {
  if (opts.limitSchedule && opts.limitSchedule.length > 0) return [...opts.limitSchedule];
  const limit = opts.hiddenLimit;
  if (limit === null || limit === undefined) return [];
  if (!Number.isFinite(limit) || limit < 1)
    throw new TypeError(`Expected \`hiddenLimit\` to be a number of calls per second ≥ 1 or null, got \`${json(limit)}\``);
  return [{ perSecond: limit, atMs: 0 }];
}

/** Fixed window counter. `take` answers 0 when a request may pass, else the ms until the window resets. */
class FixedWindow {
  private start = 0;
  private count = 0;
  constructor(readonly limit: RateLimit | null) {}
  take(now: number): number {
    if (!this.limit) return 0;
    if (now >= this.start + this.limit.windowMs) [this.start, this.count] = [now, 0];
    return this.count < this.limit.max ? (this.count++, 0) : this.start + this.limit.windowMs - now;
  }
}

function checkMisroute(m: unknown): MockMisroute | null {
  if (m === null || m === undefined) return null;
  const { kind, location, status } = m as Partial<{ kind: string; location: unknown; status: unknown }>;
  if (kind === 'html') return { kind };
  if (kind === 'redirect' && typeof location === 'string' && /^https?:\/\//.test(location)) {
    if (status === undefined) return { kind, location: location.replace(/\/+$/, '') };
    if ([301, 302, 303, 307, 308].includes(status as number))
      return { kind, location: location.replace(/\/+$/, ''), status: status as 301 | 302 | 303 | 307 | 308 };
  }
  throw new TypeError(
    `Expected \`misroute\` to be {kind: 'html'}, {kind: 'redirect', location: 'http(s)://…', status?: 301|302|303|307|308} or null, got \`${json(m)}\``,
  );
}

function checkRateLimit(r: unknown): RateLimit | null {
  if (r === null || r === undefined) return null;
  const { max, windowMs } = r as Partial<RateLimit>;
  if (Number.isInteger(max) && max! >= 0 && Number.isFinite(windowMs) && windowMs! > 0) return { max: max!, windowMs: windowMs! };
  throw new TypeError(`Expected \`rateLimit\` to be {max: integer ≥ 0, windowMs: > 0} or null, got \`${json(r)}\``);
}

function asObject(v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new TypeError('body must be a JSON object');
  return v as Record<string, unknown>;
}

const isDigits = (v: unknown): v is string => typeof v === 'string' && PHONE.test(v);

/** Unassign body -> chat key and fault id (phone or groupId), or the 400 messages. */
function parseUnassign(raw: string): { key: string; id: string } | string[] {
  let b: Record<string, unknown>;
  try {
    b = asObject(JSON.parse(raw));
  } catch {
    return ['body must be a JSON object'];
  }
  const { customerPhoneNumber: phone, groupId, wabaNumber: waba } = b;
  const errors: string[] = [];
  if ((phone == null) === (groupId == null)) errors.push('exactly one of customerPhoneNumber or groupId must be given');
  if (phone != null && !isDigits(phone)) errors.push('customerPhoneNumber must be 7 to 15 digits');
  if (groupId != null && !(typeof groupId === 'string' && groupId !== '')) errors.push('groupId must be a non-empty string');
  if (waba != null && !isDigits(waba)) errors.push('wabaNumber must be 7 to 15 digits');
  if (phone != null && waba == null) errors.push('wabaNumber should not be empty');
  if (errors.length > 0) return errors;
  if (isDigits(phone)) return { key: chatKeyOf({ kind: 'individual', customerPhoneNumber: phone, wabaNumber: waba as string }), id: phone };
  return { key: chatKeyOf({ kind: 'group', groupId: groupId as string }), id: groupId as string };
}

interface ChatQuery {
  limit: number;
  filters: ((c: SeedChat) => boolean)[];
  after: SeedChat | null; // only chatUpdatedTime and id are set: the cursor
}
const csv = (v: string | null): string[] | null =>
  v
    ?.split(',')
    .map((s) => s.trim().replace(/^\+/, ''))
    .filter(Boolean) ?? null;

function parseChatQuery(q: URLSearchParams): ChatQuery | string[] {
  const errors: string[] = [];
  const limit = Number(q.get('limit') ?? '10');
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) errors.push('limit must be an integer from 1 to 100');
  const status = q.get('status') ?? 'all';
  if (!Object.hasOwn(STATUS_FILTERS, status)) errors.push(`status must be one of ${Object.keys(STATUS_FILTERS).join(', ')}`);
  const agent = q.get('assignedUserPhone')?.replace(/^\+/, '');
  if (agent !== undefined && agent !== 'null' && !PHONE.test(agent)) errors.push('assignedUserPhone must be 7 to 15 digits or null');
  const [id, ts] = [q.get('nextChatId'), q.get('nextChatTimestamp')];
  if ((id === null) !== (ts === null) || (ts !== null && !/^\d+$/.test(ts))) errors.push('nextChatId and nextChatTimestamp (epoch ms) go together');
  if (errors.length > 0) return errors;
  const [tags, wabas] = [csv(q.get('tags')), csv(q.get('wabaNumbers'))];
  const filters = [
    STATUS_FILTERS[status] ?? null,
    tags && ((c: SeedChat) => c.tagNames.some((t) => tags.includes(t))),
    wabas && ((c: SeedChat) => c.wabaNumber !== null && wabas.includes(c.wabaNumber)),
    agent !== undefined ? (c: SeedChat) => c.assignedUserNumber === (agent === 'null' ? null : agent) : null,
  ].filter((f) => f !== null);
  return { limit, filters, after: id !== null ? ({ chatUpdatedTime: Number(ts), id } as SeedChat) : null };
}

/** Newest first: chatUpdatedTime desc, then id desc. */
const newestFirst = (a: SeedChat, b: SeedChat): number => b.chatUpdatedTime - a.chatUpdatedTime || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);

/** One page of GET /chats. Assumption: the docs name the fields but not the top-level shape `{chats, paginationOptions}`. */
function pageOf(sorted: SeedChat[], q: ChatQuery, undocumentedChatIds: boolean): object {
  const out: SeedChat[] = [];
  let more = false;
  for (const c of sorted) {
    if ((q.after && newestFirst(c, q.after) <= 0) || !q.filters.every((f) => f(c))) continue;
    if ((more = out.length === q.limit)) break;
    out.push(c);
  }
  const last = more ? out[out.length - 1] : undefined;
  const chats = out.map(({ id, groupId, ...rest }) =>
    !undocumentedChatIds ? rest : rest.chatType === 'WA_GROUP' ? { id, ...rest, groupId } : { id, ...rest },
  );
  return { chats, paginationOptions: { hasMoreChats: more, nextChatId: last?.id ?? null, nextChatTimestamp: last?.chatUpdatedTime ?? null } };
}

/** Deterministic inbox: the same seed gives the same chats (times relative to `now`), with equal timestamps to exercise the tie-break. */
function seedChats(n: number, seed: number, now: number): SeedChat[] {
  const rnd = prng(seed);
  const offset = Math.floor(rnd() * 1e8);
  const stepMs = Math.min(37 * MINUTE, Math.floor((72 * HOUR) / Math.max(n, 1))); // stay within the last 72 h
  return Array.from({ length: n }, (_, k): SeedChat => {
    const i = k + 1;
    const num = String(i).padStart(6, '0');
    const group = rnd() < 0.1;
    const agent = rnd() < 2 / 3 ? AGENTS[Math.floor(rnd() * AGENTS.length)]! : null;
    const isDone = rnd() < 0.5;
    const time = now - (i % 7 === 0 ? i - 1 : i) * stepMs; // every 7th shares its predecessor's time
    return {
      id: `chat_${num}`,
      chatType: group ? 'WA_GROUP' : 'INDIVIDUAL',
      name: group ? `Group ${num}` : `Customer ${num}`,
      // 7919 is coprime with 1e8, so the 8 digits differ for every i: no two chats share a key
      phoneNumber: group ? null : `9198${String((offset + i * 7919) % 1e8).padStart(8, '0')}`,
      ...(group ? { groupId: `grp_${num}` } : {}),
      wabaNumber: WABAS[Math.floor(rnd() * WABAS.length)]!,
      assignedUserName: agent?.[1] ?? null,
      assignedUserNumber: agent?.[0] ?? null,
      isDone,
      unreadCount: isDone ? 0 : Math.floor(rnd() * 4),
      chatUpdatedTime: time,
      lastMessageTime: time,
      tagNames: TAGS.filter(() => rnd() < 1 / 3),
    };
  });
}

/** Newest first: groupCreatedAt desc, then groupId desc (the cursor's tie-break). */
const newestGroupFirst = (a: SeedGroup, b: SeedGroup): number =>
  b.groupCreatedAt - a.groupCreatedAt || (a.groupId < b.groupId ? 1 : a.groupId > b.groupId ? -1 : 0);

/**
 * The groups the listing serves: one per group chat that has a groupId (its name as subject, created 30 days
 * before its last message), the given ones, and the conflicts asked for.
 */
function groupsOf(chats: readonly SeedChat[], seeded: readonly SeedChat[], opts: MockApiOptions): SeedGroup[] {
  const conflicted = seeded.filter((c) => c.chatType === 'WA_GROUP' && c.groupId).slice(0, opts.groupConflicts ?? 0);
  const unlisted = new Set(conflicted.filter((_, k) => k % 2 === 1).map((c) => c.groupId));
  const groups: SeedGroup[] = [];
  for (const c of chats) {
    if (c.chatType !== 'WA_GROUP' || !c.groupId || !c.wabaNumber || unlisted.has(c.groupId)) continue;
    groups.push({
      groupId: c.groupId,
      subject: c.name,
      wabaNumber: c.wabaNumber,
      groupCreatedAt: c.chatUpdatedTime - 30 * DAY,
      totalParticipantCount: 3,
      inviteLink: null,
      status: 'ACTIVE',
      description: '',
    });
  }
  for (const [k, c] of conflicted.entries()) {
    if (k % 2 === 0)
      groups.push({
        groupId: `${c.groupId!}_twin`,
        subject: c.name,
        wabaNumber: c.wabaNumber!,
        groupCreatedAt: c.chatUpdatedTime - 40 * DAY,
        totalParticipantCount: 2,
        inviteLink: null,
        status: 'ACTIVE',
        description: '',
      });
  }
  return [...groups, ...(opts.groups ?? []).map((g) => ({ ...g }))].sort(newestGroupFirst);
}

/** One page of GET /whatsapp/wa-group/list, in the shape its spec gives: `{groups, hasMore, lastGroupId, olderThanTimestamp}`. */
function groupPageOf(groups: readonly SeedGroup[], waba: string, after: SeedGroup | null, limit: number): object {
  const out: SeedGroup[] = [];
  let more = false;
  for (const g of groups) {
    if (g.wabaNumber !== waba || (after && newestGroupFirst(g, after) <= 0)) continue;
    if ((more = out.length === limit)) break;
    out.push(g);
  }
  const last = more ? out[out.length - 1] : undefined;
  return {
    groups: out.map(({ wabaNumber: _waba, groupCreatedAt, ...g }) => ({ ...g, groupCreatedAt: new Date(groupCreatedAt).toISOString() })),
    hasMore: more,
    lastGroupId: last?.groupId ?? null,
    olderThanTimestamp: last ? new Date(last.groupCreatedAt).toISOString() : null,
  };
}

function keyOfChat(c: SeedChat): string | null {
  if (c.chatType === 'WA_GROUP') return c.groupId ? chatKeyOf({ kind: 'group', groupId: c.groupId }) : null;
  if (!c.phoneNumber || !c.wabaNumber) return null;
  return chatKeyOf({ kind: 'individual', customerPhoneNumber: c.phoneNumber, wabaNumber: c.wabaNumber });
}

const emptyStats = (): MockApiStats => ({
  requests: 0,
  byStatus: {},
  unassigned: {},
  rateLimited: 0,
  maxPerSecond: 0,
  maxInFlight: 0,
  listRequests: 0,
  groupListRequests: 0,
  listRateLimited: 0,
  assignRequests: 0,
  assignByStatus: {},
  assigned: {},
  detailsRequests: 0,
});

/** Assign body -> chat key, fault id, agent and `reassign`, or the 400 messages. */
function parseAssign(raw: string): { key: string; id: string; agent: string; reassign: boolean } | string[] {
  const target = parseUnassign(raw);
  if (Array.isArray(target)) return target;
  const b = asObject(JSON.parse(raw));
  const { assignedUserPhoneNumber: agent, reassign } = b;
  const errors: string[] = [];
  if (!isDigits(agent)) errors.push('assignedUserPhoneNumber must be 7 to 15 digits');
  if (reassign != null && typeof reassign !== 'boolean') errors.push('reassign must be a boolean value');
  return errors.length > 0 ? errors : { ...target, agent: agent as string, reassign: reassign === true };
}

/** An agent's name as the stand-in's team knows it. */
function agentName(agent: string): string {
  return AGENTS.find(([n]) => n === agent)?.[1] ?? `Agent ${agent.slice(-4)}`;
}

/** The server's state and request handlers; `startMockApi` wraps it in the public `MockApi`. */
class MockState {
  stats = emptyStats();
  private peak = new PeakRate();
  /** Unassign requests received and not yet answered. */
  private inFlight = 0;
  private window: FixedWindow;
  private hidden: HiddenBucket;
  private started = performance.now();
  private series: MockPerSecond = { ok: [], limited: [] };
  private retryAfter: RetryAfterMode;
  private faults: MockFaults = {};
  private reject = new Set<string>();
  private notFound = new Set<string>();
  private readonly calls = { reset: new Map<string, number>(), timeout: new Map<string, number>(), flaky: new Map<string, number>() };
  private stormLeft = 0;
  private misroute: MockMisroute | null;
  private okCount = 0;
  private random = prng(1);
  readonly timers = new Set<NodeJS.Timeout>();
  readonly sorted: SeedChat[];
  readonly groups: SeedGroup[];
  /** WABA numbers the group listing knows; any other answers 400, as for a number with no integration. */
  private readonly wabas: Set<string>;
  private readonly byKey = new Map<string, SeedChat>();
  /**
   * Agents of chats the listing does not hold (a test's CSV chats), by chat key; null = none. Only chats given an
   * agent are kept: unassigning a chat nobody named stores nothing, so a million-call benchmark stays small.
   */
  private readonly otherAgents = new Map<string, string | null>();

  constructor(private readonly opts: MockApiOptions) {
    this.window = new FixedWindow(checkRateLimit(opts.rateLimit));
    this.hidden = new HiddenBucket(hiddenStepsOf(opts), this.started);
    this.retryAfter = opts.retryAfter ?? 'seconds';
    this.misroute = checkMisroute(opts.misroute);
    const own = (opts.chats ?? []).map((c) => ({ ...c, tagNames: [...c.tagNames] })); // never mutate the caller's objects
    const seeded = seedChats(opts.seedChats ?? 0, opts.faults?.seed ?? 1, opts.now ?? Date.now());
    this.sorted = [...own, ...seeded].sort(newestFirst);
    this.groups = groupsOf(this.sorted, seeded, opts);
    this.wabas = new Set([...WABAS, ...this.sorted.flatMap((c) => (c.wabaNumber ? [c.wabaNumber] : [])), ...this.groups.map((g) => g.wabaNumber)]);
    for (const c of this.sorted) this.byKey.set(keyOfChat(c) ?? `id:${c.id}`, c);
    for (const [key, agent] of Object.entries(opts.agents ?? {})) this.setAgent(key, agent);
    this.setFaults(opts.faults ?? {});
  }

  private adminRateLimit(body: string): void {
    const { rateLimit, retryAfter } = asObject(JSON.parse(body));
    this.setRateLimit(rateLimit, retryAfter);
  }

  readonly routes: Record<string, Route> = {
    'POST /team-member/unassign': (req, res, body) => this.unassign(req, res, body),
    'GET /chats': (req, res) => this.listChats(req, res),
    'GET /whatsapp/wa-group/list': (req, res) => this.listGroups(req, res),
    'POST /team-member/assign': (req, res, body) => this.assign(req, res, body),
    'GET /customer/details': (req, res) => this.customerDetails(req, res),
    'GET /__admin/stats': (_req, res) => send(res, 200, json(this.snapshot())),
    'GET /__admin/chats': (_req, res) => send(res, 200, json(this.sorted)),
    'POST /__admin/faults': (_req, res, body) => this.admin(res, () => this.setFaults(asObject(JSON.parse(body)))),
    'POST /__admin/rate-limit': (_req, res, body) => this.admin(res, () => this.adminRateLimit(body)),
    'POST /__admin/reset': (_req, res) => this.admin(res, () => this.reset()),
    'POST /__admin/misroute': (_req, res, body) => this.admin(res, () => this.setMisroute(JSON.parse(body) as unknown)),
  };

  snapshot(): MockApiStats {
    const s = this.stats;
    return {
      ...s,
      byStatus: { ...s.byStatus },
      unassigned: { ...s.unassigned },
      assignByStatus: { ...s.assignByStatus },
      assigned: { ...s.assigned },
      maxPerSecond: this.peak.peak,
    };
  }

  setFaults(f: MockFaults): void {
    this.faults = { ...f };
    [this.reject, this.notFound] = [new Set(f.rejectNumbers), new Set(f.notFoundNumbers)];
    this.rearm();
  }

  setMisroute(m: unknown): void {
    this.misroute = checkMisroute(m);
  }

  /** Answers as the misroute says, if one is set (true: answered). Unassign answers are counted in `byStatus`. */
  private misrouted(req: IncomingMessage, res: ServerResponse, count: boolean): boolean {
    const m = this.misroute;
    if (!m) return false;
    const status = m.kind === 'redirect' ? (m.status ?? 302) : 200;
    if (count) this.stats.byStatus[status] = (this.stats.byStatus[status] ?? 0) + 1;
    const body = m.kind === 'redirect' ? `<html><body>Moved: <a href="${m.location}">here</a></body></html>` : HTML_PAGE;
    send(res, status, body, { 'content-type': 'text/html; charset=utf-8', ...(m.kind === 'redirect' ? { location: `${m.location}${req.url ?? '/'}` } : {}) });
    return true;
  }

  /** Retry-After of a 429 that told the client to wait `waitMs`. */
  private retryAfterFor(waitMs: number): Record<string, string> {
    const fixed = this.faults.retryAfterSeconds;
    return fixed === undefined ? retryAfterHeader(this.retryAfter, waitMs) : { 'retry-after': String(fixed) };
  }

  setRateLimit(r: unknown, retryAfter?: unknown): void {
    if (retryAfter !== undefined && !RETRY_AFTER_MODES.includes(retryAfter as string)) {
      throw new TypeError(`Expected \`retryAfter\` to be one of ${RETRY_AFTER_MODES.join(', ')}, got \`${json(retryAfter)}\``);
    }
    this.window = new FixedWindow(checkRateLimit(r));
    if (retryAfter !== undefined) this.retryAfter = retryAfter as RetryAfterMode;
  }

  /** Replaces the hidden limit (null: none), its schedule starting now. */
  setHiddenLimit(limit: number | readonly LimitStep[] | null): void {
    this.started = performance.now();
    this.series = { ok: [], limited: [] }; // counted from the new start
    this.hidden = new HiddenBucket(
      hiddenStepsOf(typeof limit === 'number' || limit === null ? { hiddenLimit: limit } : { limitSchedule: limit }),
      this.started,
    );
  }

  perSecondSnapshot(): MockPerSecond {
    return { ok: Array.from(this.series.ok, (n) => n ?? 0), limited: Array.from(this.series.limited, (n) => n ?? 0) };
  }

  /** Counts a 201 or 429 of unassign in its second since the start. */
  private perSecond(series: number[], now: number): void {
    const i = Math.floor((now - this.started) / SECOND);
    if (i >= 0 && i < 24 * 3600) series[i] = (series[i] ?? 0) + 1;
  }

  /** The RateLimit-* headers of the hidden limit, when it is advertised. */
  private advertised(limit: number, remaining: number): Record<string, string> {
    if (this.opts.advertiseLimit !== true || limit <= 0) return {};
    return { 'ratelimit-limit': String(limit), 'ratelimit-remaining': String(remaining), 'ratelimit-reset': '1', 'ratelimit-policy': `${limit};w=1` };
  }

  reset(): void {
    this.started = performance.now();
    this.hidden = new HiddenBucket(hiddenStepsOf(this.opts), this.started);
    this.series = { ok: [], limited: [] };
    [this.stats, this.peak, this.window] = [emptyStats(), new PeakRate(), new FixedWindow(this.window.limit)];
    this.rearm();
  }

  /** Zeroes every fault counter, so the faults apply again as if just set. */
  private rearm(): void {
    for (const m of Object.values(this.calls)) m.clear();
    [this.stormLeft, this.okCount, this.random] = [this.faults.storm429 ?? 0, 0, prng(this.faults.seed ?? 1)];
  }

  /** The key in `header`: `authorization` for unassign and GET /chats, `x-public-api-key` for the group API (its spec's header). */
  private authorized(req: IncomingMessage, header: 'authorization' | 'x-public-api-key' = 'authorization'): boolean {
    const revoked = this.faults.revokeKeyAfter !== undefined && this.okCount >= this.faults.revokeKeyAfter;
    return req.headers[header] === this.opts.apiKey && !revoked;
  }

  /** Counts an unassign answer and sends it (no body: 'reset' / 'timeout', nothing to send). */
  private answer(res: ServerResponse, status: number | string, body?: string, headers?: Record<string, string>): void {
    this.stats.byStatus[status] = (this.stats.byStatus[status] ?? 0) + 1;
    if (body !== undefined) send(res, Number(status), body, headers);
  }

  private unassign(req: IncomingMessage, res: ServerResponse, body: string): void {
    this.stats.requests++;
    this.holding(res);
    this.peak.hit(performance.now());
    if (this.misrouted(req, res, true)) return;
    if (!this.authorized(req)) return this.answer(res, 401, BODY_401);
    // A storm is tied to no window, so it tells the client one second.
    const waitMs = this.stormLeft > 0 ? (this.stormLeft--, SECOND) : this.window.take(Date.now());
    if (waitMs > 0) {
      this.stats.rateLimited++;
      return this.answer(res, 429, BODY_429, this.retryAfterFor(waitMs));
    }
    const arrived = performance.now();
    const hidden = this.hidden.take(arrived);
    const limitHeaders = this.advertised(hidden.limit, hidden.remaining);
    if (hidden.waitMs > 0) {
      this.stats.rateLimited++;
      this.perSecond(this.series.limited, arrived);
      return this.answer(res, 429, BODY_429, { ...this.retryAfterFor(hidden.waitMs), ...limitHeaders });
    }
    this.perSecond(this.series.ok, arrived);
    const target = parseUnassign(body);
    if (Array.isArray(target)) return this.answer(res, 400, badRequest(target));
    const fault = this.faultFor(target.id);
    if (fault === 'reset') req.socket.destroy();
    if (fault === 'reset' || fault === 'timeout') return this.answer(res, fault); // held: until the client or close() gives up
    if (fault) return this.answer(res, fault[0], fault[1]);
    const latencyMs = this.opts.latencyMs ?? 0;
    if (latencyMs <= 0) return this.succeed(res, target.key, limitHeaders);
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.succeed(res, target.key, limitHeaders);
    }, latencyMs);
    this.timers.add(timer);
  }

  /** Counts a request as held until its answer is sent or its connection closes (`maxInFlight`). */
  private holding(res: ServerResponse): void {
    this.inFlight += 1;
    this.stats.maxInFlight = Math.max(this.stats.maxInFlight, this.inFlight);
    res.once('close', () => {
      this.inFlight -= 1;
    });
  }

  /** Which fault, if any, answers this call. Order: reset, timeout, flaky 503, random 500, 422, 404. */
  private faultFor(id: string): Fault {
    const f = this.faults;
    if (this.firstCalls(this.calls.reset, f.resetNumbers, id)) return 'reset';
    if (this.firstCalls(this.calls.timeout, f.timeoutNumbers, id)) return 'timeout';
    if (this.firstCalls(this.calls.flaky, f.flaky, id)) return [503, BODY_503];
    if (f.serverErrorRate && this.random() < f.serverErrorRate) return [500, BODY_500];
    if (this.reject.has(id)) return [422, BODY_422];
    return this.notFound.has(id) ? [404, BODY_404] : null;
  }

  /** Counts a call against a "first N calls" fault; true while the fault still applies to this number. */
  private firstCalls(calls: Map<string, number>, limits: Record<string, number> | undefined, id: string): boolean {
    const n = calls.get(id) ?? 0;
    if (!limits || !Object.hasOwn(limits, id) || n >= limits[id]!) return false;
    calls.set(id, n + 1);
    return true;
  }

  /** Counted even if the client already left: the real server would have done the unassign too. */
  private succeed(res: ServerResponse, key: string, headers?: Record<string, string>): void {
    this.okCount++;
    this.stats.unassigned[key] = (this.stats.unassigned[key] ?? 0) + 1;
    if (this.agentOf(key) !== undefined) this.setAgent(key, null);
    this.answer(res, 201, BODY_201, headers);
  }

  /** A listing call over the window: answered 429 and counted apart from unassign's 429s. */
  private listLimited(res: ServerResponse, waitMs: number): void {
    this.stats.listRateLimited++;
    send(res, 429, BODY_429, this.retryAfterFor(waitMs));
  }

  private listChats(req: IncomingMessage, res: ServerResponse): void {
    this.stats.listRequests++;
    if (this.misrouted(req, res, false)) return;
    if (!this.authorized(req)) return send(res, 401, BODY_401);
    const waitMs = this.window.take(Date.now());
    if (waitMs > 0) return this.listLimited(res, waitMs);
    const q = parseChatQuery(new URL(req.url ?? '/', 'http://mock').searchParams);
    send(res, Array.isArray(q) ? 400 : 200, Array.isArray(q) ? badRequest(q) : json(pageOf(this.sorted, q, this.opts.undocumentedChatIds === true)));
  }

  private listGroups(req: IncomingMessage, res: ServerResponse): void {
    this.stats.groupListRequests++;
    if (this.misrouted(req, res, false)) return;
    if (!this.authorized(req, 'x-public-api-key')) return send(res, 401, BODY_401);
    const waitMs = this.window.take(Date.now());
    if (waitMs > 0) return this.listLimited(res, waitMs);
    const q = new URL(req.url ?? '/', 'http://mock').searchParams;
    const waba = q.get('wabaNumber')?.replace(/^\+/, '') ?? '';
    const [id, ts] = [q.get('lastGroupId'), q.get('olderThanTimestamp')];
    if (waba === '') return send(res, 400, badRequest(['wabaNumber should not be empty']));
    if ((id === null) !== (ts === null) || (ts !== null && !ISO_DATE.test(ts)))
      return send(res, 400, badRequest(['lastGroupId and olderThanTimestamp (ISO 8601) go together']));
    if (!this.wabas.has(waba)) return send(res, 400, badRequest(['No integration found for the given wabaNumber']));
    const after = id !== null ? ({ groupId: id, groupCreatedAt: Date.parse(ts!) } as SeedGroup) : null;
    send(res, 200, json(groupPageOf(this.groups, waba, after, this.opts.groupPageSize ?? 20)));
  }

  agentOf(key: string): string | null | undefined {
    const chat = this.byKey.get(key);
    return chat ? chat.assignedUserNumber : this.otherAgents.get(key);
  }

  setAgent(key: string, agent: string | null): void {
    if (agent !== null && !PHONE.test(agent)) throw new TypeError(`Expected an agent of 7 to 15 digits or null, got \`${json(agent)}\``);
    const chat = this.byKey.get(key);
    if (chat) [chat.assignedUserName, chat.assignedUserNumber] = [agent === null ? null : agentName(agent), agent];
    else this.otherAgents.set(key, agent);
  }

  /**
   * POST /team-member/assign: the unassign call's checks (misroute, key, rate-limit window, body, the per-number
   * faults, whose counters both calls share), then `reassign` semantics: without it a chat that has an agent is
   * left alone and answered 409 (the real API's answer there is not documented: an assumption).
   */
  private assign(req: IncomingMessage, res: ServerResponse, body: string): void {
    this.stats.assignRequests++;
    this.peak.hit(performance.now());
    const answer = (status: number | string, text?: string, headers?: Record<string, string>): void => {
      this.stats.assignByStatus[status] = (this.stats.assignByStatus[status] ?? 0) + 1;
      if (text !== undefined) send(res, Number(status), text, headers);
    };
    if (this.misrouted(req, res, false)) return;
    if (!this.authorized(req)) return answer(401, BODY_401);
    const waitMs = this.window.take(Date.now());
    if (waitMs > 0) {
      this.stats.rateLimited++;
      return answer(429, BODY_429, this.retryAfterFor(waitMs));
    }
    const target = parseAssign(body);
    if (Array.isArray(target)) return answer(400, badRequest(target));
    const fault = this.faultFor(target.id);
    if (fault === 'reset') req.socket.destroy();
    if (fault === 'reset' || fault === 'timeout') return answer(fault);
    if (fault) return answer(fault[0], fault[1]);
    if (this.agentOf(target.key) && !target.reassign) return answer(409, BODY_409_ASSIGNED);
    this.setAgent(target.key, target.agent);
    this.okCount++;
    this.stats.assigned[target.key] = (this.stats.assigned[target.key] ?? 0) + 1;
    answer(201, json({ name: agentName(target.agent), email: `agent${target.agent.slice(-4)}@example.com`, phone: target.agent }));
  }

  /** GET /customer/details?phoneNumber=&wabaNumber=: the chat's customer and its agent; 404 for a chat the stand-in does not know. */
  private customerDetails(req: IncomingMessage, res: ServerResponse): void {
    this.stats.detailsRequests++;
    this.peak.hit(performance.now());
    if (this.misrouted(req, res, false)) return;
    if (!this.authorized(req)) return send(res, 401, BODY_401);
    const waitMs = this.window.take(Date.now());
    if (waitMs > 0) {
      this.stats.rateLimited++;
      return send(res, 429, BODY_429, this.retryAfterFor(waitMs));
    }
    const q = new URL(req.url ?? '/', 'http://mock').searchParams;
    const [phone, waba] = [q.get('phoneNumber')?.replace(/^\+/, ''), q.get('wabaNumber')?.replace(/^\+/, '')];
    const errors = [...(isDigits(phone) ? [] : ['phoneNumber must be 7 to 15 digits']), ...(isDigits(waba) ? [] : ['wabaNumber must be 7 to 15 digits'])];
    if (errors.length > 0) return send(res, 400, badRequest(errors));
    const key = chatKeyOf({ kind: 'individual', customerPhoneNumber: phone as string, wabaNumber: waba as string });
    const agent = this.agentOf(key);
    if (agent === undefined) return send(res, 404, BODY_404_DETAILS);
    const customer = {
      id: `cust_${phone as string}`,
      name: this.byKey.get(key)?.name ?? `Customer ${(phone as string).slice(-4)}`,
      phone: `+${phone as string}`,
      tags: [],
      customFields: [],
      assignedToUser: agent === null ? null : agentName(agent),
      assignedUserNumber: agent,
    };
    send(res, 200, json({ customer }));
  }

  /** Runs an admin action; bad input is the caller's mistake: 400 with the reason. */
  private admin(res: ServerResponse, action: () => void): void {
    try {
      action();
      send(res, 200, json({ ok: true }));
    } catch (err) {
      send(res, 400, badRequest([err instanceof Error ? err.message : String(err)]));
    }
  }
}

/** Reads the whole body (they are tiny) so keep-alive sockets stay usable; null when over the limit. */
function readBody(req: IncomingMessage, done: (body: string | null) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (c: Buffer) => (size += c.length) <= MAX_BODY_BYTES && chunks.push(c));
  req.on('end', () => done(size > MAX_BODY_BYTES ? null : Buffer.concat(chunks).toString('utf8')));
}

function handler(state: MockState): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) =>
    readBody(req, (body) => {
      const route = `${req.method} ${(req.url ?? '/').split('?')[0]}`;
      if (body === null) return send(res, 413, json({ statusCode: 413, message: 'Payload Too Large' }));
      const go = state.routes[route];
      if (go) return go(req, res, body);
      send(res, 404, json({ statusCode: 404, message: `Cannot ${route}`, error: 'Not Found' }));
    });
}

/** Starts the mock server; resolves once it listens. */
export async function startMockApi(opts: MockApiOptions): Promise<MockApi> {
  const state = new MockState(opts);
  const server = createServer(handler(state));
  // Longer than Node clients' 5 s idle timeout, so the client drops idle sockets first and never reuses one we closed.
  server.keepAliveTimeout = 30 * SECOND;
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => resolve(void server.off('error', reject)));
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    stats: () => state.snapshot(),
    perSecond: () => state.perSecondSnapshot(),
    setFaults: (f) => state.setFaults(f),
    setRateLimit: (r, retryAfter) => state.setRateLimit(r, retryAfter),
    setHiddenLimit: (limit) => state.setHiddenLimit(limit),
    setMisroute: (m) => state.setMisroute(m),
    reset: () => state.reset(),
    chats: () => state.sorted.map((c) => ({ ...c, tagNames: [...c.tagNames] })),
    groups: () => state.groups.map((g) => ({ ...g })),
    agentOf: (chatKey) => state.agentOf(chatKey),
    setAgent: (chatKey, agent) => state.setAgent(chatKey, agent),
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of state.timers) clearTimeout(t);
        server.close(() => resolve()); // called with an error when already closed: resolve all the same
        server.closeAllConnections(); // held (timeout fault) and idle keep-alive sockets
      }),
  };
}
