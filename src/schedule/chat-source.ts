/**
 * A row source over DoubleTick's inbox: pages through GET /chats (cursor paging, newest first) and yields
 * the chats a schedule's rule selects, as ordinary ingest rows. The batch it makes is a normal batch: its
 * report, failed.csv and rerun work as for a CSV (failed.csv has customerPhoneNumber / wabaNumber / groupId
 * columns, so it is re-uploadable as is).
 *
 * Each page is one API call under the global rate limit (the same pacer as unassign calls) and is retried
 * the way unassign calls are: 429 pauses everyone and tries again (RETRY_POLICIES.rateLimited, at most 20
 * waits per page), 5xx / network errors back off and retry up to MAX_ATTEMPTS (RETRY_POLICIES.chatPage),
 * 401/403/4xx stop the listing (ChatListError: ingest then leaves nothing behind).
 */
import type { DoubleTickApi, ListChatsQuery } from '../execution/api-client.js';
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

export interface ChatQueryOptions {
  readonly api: Pick<DoubleTickApi, 'listChats'>;
  readonly rule: ChatRule;
  /** Idle time is measured against this instant (the run's tick). */
  readonly now: number;
  /** Waits for this call's slot under the global rate limit (pacer.acquire). */
  readonly pace: () => Promise<void>;
  /** A 429 came back: nobody calls the API for `ms` (pacer.pause, plus the worker's limiter). */
  readonly rateLimit: (ms: number) => Promise<void>;
  /** Attempts per page for 5xx / network errors (MAX_ATTEMPTS): RETRY_POLICIES.chatPage's `attempts`. */
  readonly maxAttempts: number;
  /** Nominal first retry delay (BACKOFF_DELAY_MS): RETRY_POLICIES.chatPage's `baseMs`. */
  readonly backoffDelayMs: number;
  /** @default 100 (the API's maximum) */
  readonly pageSize?: number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly random?: () => number;
}

/** What the listing saw, for the run's notes. */
export interface ChatQueryStats {
  pages: number;
  listed: number;
  selected: number;
}

export interface ChatQuerySource extends RowSource {
  stats(): ChatQueryStats;
}

interface Page {
  readonly chats: readonly ListedChat[];
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
  return { chats: chats.filter(isObject) as ListedChat[], ...(more ? { next: { id: id as string, timestamp } } : {}) };
}

/** The page retry policy with the configured attempts and base. */
export function chatPageRetryPolicy(maxAttempts: number, baseMs: number): RetryPolicy {
  return { ...RETRY_POLICIES.chatPage, attempts: maxAttempts, baseMs };
}

/**
 * Wait before retry `attempt` of a page: RETRY_POLICIES.chatPage from `baseMs` (1 s, 2 s, 4 s … ±25 %). The
 * listing itself calls delayMs; this stays for test/unit/chat-rule.test.ts.
 */
export function pageBackoffMs(attempt: number, baseMs: number, random: () => number = Math.random): number {
  return delayMs({ ...RETRY_POLICIES.chatPage, baseMs }, attempt, random);
}

/** A selected chat → an ingest row; a chat the API lists without a usable phone / business number / group id is rejected. */
export function chatToRow(chat: ListedChat, line: number): IngestRow {
  const phone = (chat.phoneNumber ?? '').replace(/^\+/, '');
  const waba = (chat.wabaNumber ?? '').replace(/^\+/, '');
  const group = chat.groupId ?? '';
  const last = lastActivity(chat);
  const cells: Record<string, string> = {
    customerPhoneNumber: chat.chatType === 'WA_GROUP' ? '' : phone,
    wabaNumber: chat.chatType === 'WA_GROUP' ? '' : waba,
    groupId: chat.chatType === 'WA_GROUP' ? group : '',
    assignedUserNumber: (chat.assignedUserNumber ?? '').replace(/^\+/, ''),
    tags: (chat.tagNames ?? []).join(';'),
    lastMessageTime: last === undefined ? '' : new Date(last).toISOString(),
  };
  const reject = (column: string, raw: string, reason: string): IngestRow => ({ kind: 'rejected', row: { line, raw, column, reason, cells } });
  let target: ChatTarget;
  if (chat.chatType === 'WA_GROUP') {
    if (!GROUP_ID.test(group)) return reject('groupId', group, `group chat${chat.id ? ` ${chat.id}` : ''} listed without a usable groupId`);
    target = { kind: 'group', groupId: group };
  } else {
    if (!DIGITS.test(phone)) return reject('customerPhoneNumber', phone, 'listed chat has no usable customer phone number');
    if (!DIGITS.test(waba)) return reject('wabaNumber', waba, 'listed chat has no usable business (WABA) number');
    target = { kind: 'individual', customerPhoneNumber: phone, wabaNumber: waba };
  }
  return { kind: 'valid', row: { line, chat: target, key: chatKeyOf(target), cells } };
}

export function openChatQuerySource(opts: ChatQueryOptions): ChatQuerySource {
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const random = opts.random ?? Math.random;
  const stats: ChatQueryStats = { pages: 0, listed: 0, selected: 0 };
  const failedPolicy = chatPageRetryPolicy(opts.maxAttempts, opts.backoffDelayMs);
  const limitedPolicy = RETRY_POLICIES.rateLimited;

  /**
   * One page, with the unassign calls' retry rules. The two counts are separate budgets: a 429 is the API
   * asking everyone to slow down, not a failure of this page, so it never uses up one of its MAX_ATTEMPTS.
   */
  const fetchPage = async (query: ListChatsQuery): Promise<Page> => {
    let failures = 0;
    let limited = 0;
    for (;;) {
      await opts.pace();
      const outcome = await opts.api.listChats(query);
      const verdict = classify(outcome, Date.now(), { misrouted: 'stop' });
      switch (verdict.kind) {
        case 'success':
          return parsePage(outcome.kind === 'response' ? outcome.body : undefined);
        case 'auth':
          throw new ChatListError(`GET /chats: API key rejected (${verdict.reason}); fix DOUBLETICK_API_KEY`);
        case 'misrouted':
          // A redirect or an HTML page is not DoubleTick answering: asking again only asks the wrong host again.
          throw new ChatListError(`GET /chats: ${verdict.reason}`);
        case 'permanent':
          throw new ChatListError(`GET /chats refused the query (${verdict.reason}): check the schedule's filters`);
        case 'rate_limited':
          limited += 1;
          if (limited >= limitedPolicy.attempts) throw new ChatListError(`GET /chats: still rate limited after ${limited - 1} waits`);
          // Through opts.rateLimit, not sleep: every worker pauses, not just this listing.
          await opts.rateLimit(verdict.retryAfterMs ?? delayMs(limitedPolicy, limited, random));
          break;
        case 'transient':
          failures += 1;
          if (failures >= failedPolicy.attempts) throw new ChatListError(`GET /chats failed ${failures} time(s), last: ${verdict.reason}`);
          await sleep(delayMs(failedPolicy, failures, random));
          break;
      }
    }
  };

  return {
    header: QUERY_HEADER,
    sha256: () => '', // not a file: the duplicate-content check does not apply to repeated runs of a rule
    stats: () => ({ ...stats }),
    async *rows() {
      const base = ruleToQuery(opts.rule, opts.pageSize ?? PAGE_SIZE);
      let cursor: Page['next'];
      do {
        const page = await fetchPage(cursor ? { ...base, nextChatId: cursor.id, nextChatTimestamp: cursor.timestamp } : base);
        stats.pages += 1;
        stats.listed += page.chats.length;
        if (page.next && cursor && page.next.id === cursor.id && page.next.timestamp === cursor.timestamp) {
          throw new ChatListError('GET /chats returned the same cursor twice: paging does not advance');
        }
        cursor = page.next;
        for (const chat of page.chats) {
          if (!matchesRule(chat, opts.rule, opts.now)) continue;
          stats.selected += 1;
          yield chatToRow(chat, stats.selected);
        }
      } while (cursor);
    },
  };
}
