/**
 * A row source over DoubleTick's inbox: pages through GET /chats (cursor paging, newest first) and yields
 * the chats a schedule's rule selects, as ordinary ingest rows. The batch it makes is a normal batch: its
 * report, failed.csv and rerun work as for a CSV (failed.csv has customerPhoneNumber / wabaNumber / groupId
 * columns, so it is re-uploadable as is).
 *
 * A listed group chat has no groupId (docs/doubletick-api.md): its group is looked up by name in the WABA
 * number's group listing (group-resolver.ts), once per WABA number per run; a name that matches no group or
 * several is a rejected row with the reason.
 *
 * Each page, of chats or of groups, is one API call under the global rate limit (the same pacer as unassign
 * calls) and goes through one loop (fetchPage) with the unassign calls' retry rules: 429 pauses everyone and
 * tries again (RETRY_POLICIES.rateLimited, at most 20 waits per page), 5xx / network errors back off and retry
 * up to MAX_ATTEMPTS (RETRY_POLICIES.chatPage), 401/403, a redirect or an HTML page stop the listing
 * (ChatListError: ingest then leaves nothing behind), and so does any other 4xx to GET /chats.
 */
import type { DoubleTickApi, ListChatsQuery } from '../execution/api-client.js';
import { type GroupResolution, type GroupResolver, makeGroupResolver, type PageFetcher } from './group-resolver.js';
import { type ChatRule, type ListedChat, lastActivity, matchesRule, PAGE_SIZE, ruleToQuery } from './rule.js';
import { classify } from '../execution/classify.js';
import { delayMs, RETRY_POLICIES, type RetryPolicy } from '../domain/retry-policy.js';
import type { IngestRow } from '../ingest/csv-source.js';
import type { RowSource } from '../ingest/enqueue.js';
import { ChatListError } from '../domain/errors.js';
import { type ChatTarget, chatKeyOf } from '../domain/chat.js';

/** Columns of a query batch, in this order (failed.csv repeats them). */
export const QUERY_HEADER = ['customerPhoneNumber', 'wabaNumber', 'groupId', 'assignedUserNumber', 'tags', 'lastMessageTime'] as const;

const DIGITS = /^\d{7,15}$/;
const GROUP_ID = /^[\w.@:-]{1,128}$/u;

/** How pages are fetched: the global rate limit and the retry budgets, shared by chat and group pages. */
export interface PageFetchOptions {
  /** Waits for this call's slot under the global rate limit (pacer.acquire). */
  readonly pace: () => Promise<void>;
  /** A 429 came back: nobody calls the API for `ms` (pacer.pause, plus the worker's limiter). */
  readonly rateLimit: (ms: number) => Promise<void>;
  /** Attempts per page for 5xx / network errors (MAX_ATTEMPTS): RETRY_POLICIES.chatPage's `attempts`. */
  readonly maxAttempts: number;
  /** Nominal first retry delay (BACKOFF_DELAY_MS): RETRY_POLICIES.chatPage's `baseMs`. */
  readonly backoffDelayMs: number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly random?: () => number;
}

export interface ChatQueryOptions extends PageFetchOptions {
  /** `listGroups` may be left out by a caller that lists chats only: its group chats are then rejected rows. */
  readonly api: Pick<DoubleTickApi, 'listChats'> & Partial<Pick<DoubleTickApi, 'listGroups'>>;
  readonly rule: ChatRule;
  /** Idle time is measured against this instant (the run's tick). */
  readonly now: number;
  /** @default 100 (the API's maximum) */
  readonly pageSize?: number;
  /** @default a new resolver over `api.listGroups` (its cache lives as long as this source: one run) */
  readonly groups?: GroupResolver;
}

/** What the listing saw, for the run's notes. */
export interface ChatQueryStats {
  pages: number;
  listed: number;
  selected: number;
  /** WABA numbers whose groups were listed, and the group pages that took. */
  groupListings: number;
  groupPages: number;
}

export interface ChatQuerySource extends RowSource {
  stats(): ChatQueryStats;
}

/** A listed chat with its `name`, which for a group chat is the group's subject: how its groupId is found. */
export type NamedChat = ListedChat & { readonly name?: string | null };

interface Page {
  readonly chats: readonly NamedChat[];
  readonly next?: { readonly id: string; readonly timestamp: number };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The body of a 200. Assumption (docs/doubletick-api.md names the fields, not the envelope): `{chats, paginationOptions}`,
 * possibly wrapped in `{data: ...}`; anything else is refused rather than read as "no chats".
 */
export function parsePage(body: unknown): Page {
  const root = isObject(body) && isObject(body.data) ? body.data : body;
  const chats = isObject(root) && Array.isArray(root.chats) ? root.chats : isObject(body) && Array.isArray(body.data) ? body.data : undefined;
  if (!chats) throw new ChatListError('GET /chats answered 200 without a `chats` list: the API may have changed; nothing was enqueued');
  const paging = isObject(root) && isObject(root.paginationOptions) ? root.paginationOptions : undefined;
  const id = paging?.nextChatId;
  const timestamp = Number(paging?.nextChatTimestamp);
  const more = paging?.hasMoreChats === true && typeof id === 'string' && id !== '' && Number.isFinite(timestamp);
  return { chats: chats.filter(isObject) as NamedChat[], ...(more ? { next: { id: id as string, timestamp } } : {}) };
}

/** The page retry policy with the configured attempts and base. */
export function chatPageRetryPolicy(maxAttempts: number, baseMs: number): RetryPolicy {
  return { ...RETRY_POLICIES.chatPage, attempts: maxAttempts, baseMs };
}

/**
 * A selected chat → an ingest row. A one-to-one chat without a usable phone / business number is rejected; a
 * group chat takes its groupId from `group` (its resolution by name) and is rejected with the resolver's reason
 * when there is none.
 */
export function chatToRow(chat: NamedChat, line: number, group?: GroupResolution): IngestRow {
  const isGroup = chat.chatType === 'WA_GROUP';
  const phone = (chat.phoneNumber ?? '').replace(/^\+/, '');
  const waba = (chat.wabaNumber ?? '').replace(/^\+/, '');
  const groupId = group?.kind === 'found' ? group.groupId : '';
  const last = lastActivity(chat);
  const cells: Record<string, string> = {
    customerPhoneNumber: isGroup ? '' : phone,
    wabaNumber: isGroup ? '' : waba,
    groupId: isGroup ? groupId : '',
    assignedUserNumber: (chat.assignedUserNumber ?? '').replace(/^\+/, ''),
    tags: (chat.tagNames ?? []).join(';'),
    lastMessageTime: last === undefined ? '' : new Date(last).toISOString(),
  };
  const reject = (column: string, raw: string, reason: string): IngestRow => ({ kind: 'rejected', row: { line, raw, column, reason, cells } });
  let target: ChatTarget;
  if (isGroup) {
    if (group?.kind === 'rejected') return reject('groupId', chat.name ?? '', group.reason);
    if (!GROUP_ID.test(groupId)) return reject('groupId', groupId, `group chat "${chat.name ?? ''}" has no usable groupId`);
    target = { kind: 'group', groupId };
  } else {
    if (!DIGITS.test(phone)) return reject('customerPhoneNumber', phone, 'listed chat has no usable customer phone number');
    if (!DIGITS.test(waba)) return reject('wabaNumber', waba, 'listed chat has no usable business (WABA) number');
    target = { kind: 'individual', customerPhoneNumber: phone, wabaNumber: waba };
  }
  return { kind: 'valid', row: { line, chat: target, key: chatKeyOf(target), cells } };
}

/**
 * The one page loop for every listing call (GET /chats pages, group pages): pace, call, classify, and the
 * unassign calls' retry rules. The two counts are separate budgets: a 429 is the API asking everyone to slow
 * down, not a failure of this page, so it never uses up one of its MAX_ATTEMPTS.
 */
export function makePageFetcher(opts: PageFetchOptions): PageFetcher {
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const random = opts.random ?? Math.random;
  const failedPolicy = chatPageRetryPolicy(opts.maxAttempts, opts.backoffDelayMs);
  const limitedPolicy = RETRY_POLICIES.rateLimited;
  return async ({ what, call, parse, refused }) => {
    let failures = 0;
    let limited = 0;
    for (;;) {
      await opts.pace();
      const outcome = await call();
      const verdict = classify(outcome, Date.now(), { misrouted: 'stop' });
      switch (verdict.kind) {
        case 'success':
          return parse(outcome.kind === 'response' ? outcome.body : undefined);
        case 'auth':
          throw new ChatListError(`${what}: API key rejected (${verdict.reason}); fix DOUBLETICK_API_KEY`);
        case 'misrouted':
          // A redirect or an HTML page is not DoubleTick answering: asking again only asks the wrong host again.
          throw new ChatListError(`${what}: ${verdict.reason}`);
        case 'permanent':
          throw refused(verdict.reason);
        case 'rate_limited':
          limited += 1;
          if (limited >= limitedPolicy.attempts) throw new ChatListError(`${what}: still rate limited after ${limited - 1} waits`);
          // Through opts.rateLimit, not sleep: every worker pauses, not just this listing.
          await opts.rateLimit(verdict.retryAfterMs ?? delayMs(limitedPolicy, limited, random));
          break;
        case 'transient':
          failures += 1;
          if (failures >= failedPolicy.attempts) throw new ChatListError(`${what} failed ${failures} time(s), last: ${verdict.reason}`);
          await sleep(delayMs(failedPolicy, failures, random));
          break;
      }
    }
  };
}

/** For a source given no group listing: a group chat cannot be resolved, so it is rejected rather than guessed. */
const NO_GROUP_LISTING: GroupResolver = {
  resolve: async () => ({ kind: 'rejected', reason: 'group chat: no group listing to find its groupId by name' }),
  stats: () => ({ listings: 0, pages: 0 }),
};

export function openChatQuerySource(opts: ChatQueryOptions): ChatQuerySource {
  const stats = { pages: 0, listed: 0, selected: 0 };
  const fetchPage = makePageFetcher(opts);
  const listGroups = opts.api.listGroups?.bind(opts.api);
  const groups = opts.groups ?? (listGroups ? makeGroupResolver({ api: { listGroups }, fetchPage }) : NO_GROUP_LISTING);
  const listChats = (query: ListChatsQuery): Promise<Page> =>
    fetchPage({
      what: 'GET /chats',
      call: () => opts.api.listChats(query),
      parse: parsePage,
      refused: (reason) => new ChatListError(`GET /chats refused the query (${reason}): check the schedule's filters`),
    });
  const toRow = async (chat: NamedChat, line: number): Promise<IngestRow> => {
    if (chat.chatType !== 'WA_GROUP') return chatToRow(chat, line);
    const waba = (chat.wabaNumber ?? '').replace(/^\+/, '');
    if (!DIGITS.test(waba))
      return chatToRow(chat, line, {
        kind: 'rejected',
        reason: `group chat "${chat.name ?? ''}" listed without a usable business (WABA) number: its group cannot be looked up`,
      });
    return chatToRow(chat, line, await groups.resolve(chat.name, waba));
  };

  return {
    header: QUERY_HEADER,
    sha256: () => '', // not a file: the duplicate-content check does not apply to repeated runs of a rule
    stats: () => {
      const g = groups.stats();
      return { ...stats, groupListings: g.listings, groupPages: g.pages };
    },
    async *rows() {
      const base = ruleToQuery(opts.rule, opts.pageSize ?? PAGE_SIZE);
      let cursor: Page['next'];
      do {
        const page = await listChats(cursor ? { ...base, nextChatId: cursor.id, nextChatTimestamp: cursor.timestamp } : base);
        stats.pages += 1;
        stats.listed += page.chats.length;
        if (page.next && cursor && page.next.id === cursor.id && page.next.timestamp === cursor.timestamp) {
          throw new ChatListError('GET /chats returned the same cursor twice: paging does not advance');
        }
        cursor = page.next;
        for (const chat of page.chats) {
          if (!matchesRule(chat, opts.rule, opts.now)) continue;
          stats.selected += 1;
          yield await toRow(chat, stats.selected);
        }
      } while (cursor);
    },
  };
}
