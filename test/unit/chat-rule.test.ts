/**
 * The selection rule of a scheduled chat query (rule.ts) and the GET /chats row source's pure parts
 * (chat-source.ts): query parameters, the client-side re-check of every filter, page parsing and the
 * chat → row mapping, and the paging/retry loop against a fake `listChats` (an injected interface, no module mocks).
 */
import { describe, expect, it } from '@jest/globals';

import type { ApiOutcome } from '../../src/execution/classify.js';
import { type ChatRule, type ListedChat, matchesRule, ruleToQuery } from '../../src/schedule/rule.js';
import { chatToRow, openChatQuerySource, parsePage } from '../../src/schedule/chat-source.js';
import { delayMs, RETRY_POLICIES } from '../../src/domain/retry-policy.js';
import type { ListChatsQuery } from '../../src/execution/api-client.js';
import { ChatListError } from '../../src/domain/errors.js';
import { localDate, localTime } from '../../src/schedule/run.js';

const NOW = Date.parse('2026-11-25T20:30:00.000Z'); // 02:00 on the 26th in Asia/Kolkata
const HOUR = 3_600_000;
const chat = (over: Partial<ListedChat> = {}): ListedChat => ({
  id: 'c1',
  chatType: 'INDIVIDUAL',
  phoneNumber: '919812345678',
  wabaNumber: '919000000000',
  assignedUserNumber: '919811111111',
  isDone: true,
  unreadCount: 0,
  chatUpdatedTime: NOW - 13 * HOUR,
  lastMessageTime: NOW - 13 * HOUR,
  tagNames: ['vip'],
  ...over,
});

describe('ruleToQuery', () => {
  it('sends the server-side filters as GET /chats parameters, 100 per page', () => {
    expect(
      ruleToQuery({ chatStatus: 'done', tags: ['vip', 'sales'], agent: '919811111111', wabaNumbers: ['919000000000', '919000000001'], idleHours: 12 }),
    ).toEqual({
      limit: 100,
      status: 'done',
      tags: 'vip,sales',
      assignedUserPhone: '919811111111',
      wabaNumbers: '919000000000,919000000001',
    });
    expect(ruleToQuery({ idleHours: 1 }, 10)).toEqual({ limit: 10 });
  });
});

describe('matchesRule', () => {
  const TABLE: readonly [string, ListedChat, ChatRule, boolean][] = [
    ['assigned, done, idle 13 h ≥ 12 h', chat(), { chatStatus: 'done', idleHours: 12 }, true],
    ['unassigned chats are never selected', chat({ assignedUserNumber: null }), { chatStatus: 'done' }, false],
    ['empty agent string counts as unassigned', chat({ assignedUserNumber: '' }), { chatStatus: 'all' }, false],
    ['status done re-checked (API ignored the filter)', chat({ isDone: false }), { chatStatus: 'done' }, false],
    ['status open', chat({ isDone: false }), { chatStatus: 'open' }, true],
    ['status unread', chat({ isDone: false, unreadCount: 0 }), { chatStatus: 'unread' }, false],
    ["status waiting_for_response is the API's word", chat({ isDone: false }), { chatStatus: 'waiting_for_response' }, true],
    ['idle: 11 h is not 12 h', chat({ lastMessageTime: NOW - 11 * HOUR }), { idleHours: 12 }, false],
    ['idle: falls back to chatUpdatedTime', chat({ lastMessageTime: null }), { idleHours: 12 }, true],
    ['idle: no time at all is not provably idle', chat({ lastMessageTime: null, chatUpdatedTime: undefined as unknown as number }), { idleHours: 12 }, false],
    ['idle: fractions of hours', chat({ lastMessageTime: NOW - 31 * 60_000 }), { idleHours: 0.5 }, true],
    ['tags: any of them', chat({ tagNames: ['sales'] }), { tags: ['vip', 'sales'] }, true],
    ['tags: none of them', chat({ tagNames: ['support'] }), { tags: ['vip'] }, false],
    ['waba re-checked', chat({ wabaNumber: '919000000001' }), { wabaNumbers: ['919000000000'] }, false],
    ['waba with + from the API', chat({ wabaNumber: '+919000000000' }), { wabaNumbers: ['919000000000'] }, true],
    ['agent re-checked', chat({ assignedUserNumber: '919822222222' }), { agent: '919811111111' }, false],
    ['agent with + from the API', chat({ assignedUserNumber: '+919811111111' }), { agent: '919811111111' }, true],
  ];
  it.each(TABLE)('%s', (_name, c, rule, expected) => {
    expect(matchesRule(c, rule, NOW)).toBe(expected);
  });
});

describe('chatToRow', () => {
  it('an individual chat becomes a valid row with re-uploadable columns', () => {
    const row = chatToRow(chat(), 3);
    expect(row).toEqual({
      kind: 'valid',
      row: {
        line: 3,
        key: 'p:919812345678@919000000000',
        chat: { kind: 'individual', customerPhoneNumber: '919812345678', wabaNumber: '919000000000' },
        cells: {
          customerPhoneNumber: '919812345678',
          wabaNumber: '919000000000',
          groupId: '',
          assignedUserNumber: '919811111111',
          tags: 'vip',
          lastMessageTime: new Date(NOW - 13 * HOUR).toISOString(),
        },
      },
    });
  });
  const groupChat = { ...chat({ chatType: 'WA_GROUP', phoneNumber: null }), name: 'Support Pune' };
  it('a group chat uses the groupId its name resolved to', () => {
    const row = chatToRow(groupChat, 1, { kind: 'found', groupId: 'grp_000007' });
    expect(row.kind === 'valid' && row.row.key).toBe('g:grp_000007');
    expect(row.kind === 'valid' && row.row.cells).toMatchObject({ customerPhoneNumber: '', wabaNumber: '', groupId: 'grp_000007' });
  });
  it('a group chat never takes a groupId the listing puts on it (undocumented): without a resolution it is rejected', () => {
    expect(chatToRow({ ...groupChat, groupId: 'grp_listed' }, 1)).toMatchObject({
      kind: 'rejected',
      row: { column: 'groupId', reason: 'group chat "Support Pune" has no usable groupId' },
    });
  });
  it('a chat without a usable number, or a group chat its name did not resolve, is a rejected row, with the reason', () => {
    expect(chatToRow(chat({ phoneNumber: null }), 1)).toMatchObject({
      kind: 'rejected',
      row: { column: 'customerPhoneNumber', reason: 'listed chat has no usable customer phone number' },
    });
    expect(chatToRow(chat({ wabaNumber: null }), 1)).toMatchObject({ kind: 'rejected', row: { column: 'wabaNumber' } });
    expect(chatToRow(groupChat, 4, { kind: 'rejected', reason: 'no group named "Support Pune" on WABA 919000000000' })).toMatchObject({
      kind: 'rejected',
      row: { line: 4, column: 'groupId', raw: 'Support Pune', reason: 'no group named "Support Pune" on WABA 919000000000' },
    });
  });
});

describe('parsePage', () => {
  it('reads {chats, paginationOptions} and the cursor', () => {
    expect(parsePage({ chats: [chat()], paginationOptions: { hasMoreChats: true, nextChatId: 'c1', nextChatTimestamp: 5 } })).toEqual({
      chats: [chat()],
      next: { id: 'c1', timestamp: 5 },
    });
  });
  it('accepts the same inside {data: ...}, and a last page', () => {
    expect(parsePage({ data: { chats: [], paginationOptions: { hasMoreChats: false, nextChatId: null, nextChatTimestamp: null } } })).toEqual({ chats: [] });
  });
  it('refuses a 200 without a chats list instead of reading it as an empty inbox', () => {
    expect(() => parsePage({ items: [] })).toThrow(ChatListError);
    expect(() => parsePage(undefined)).toThrow(/without a `chats` list/);
  });
});

describe('page retry waits (the chatPage policy)', () => {
  it('double from the base with ±25 % jitter', () => {
    expect(delayMs(RETRY_POLICIES.chatPage, 1, () => 0.5)).toBe(1000);
    expect(delayMs(RETRY_POLICIES.chatPage, 3, () => 0.5)).toBe(4000);
    expect(delayMs(RETRY_POLICIES.chatPage, 1, () => 0)).toBe(750);
    expect(delayMs(RETRY_POLICIES.chatPage, 1, () => 1)).toBe(1250);
  });
});

describe('localDate / localTime', () => {
  it("name the tick in the schedule's time zone", () => {
    expect(localDate(NOW, 'Asia/Kolkata')).toBe('2026-11-26');
    expect(localDate(NOW, 'UTC')).toBe('2026-11-25');
    expect(localTime(NOW, 'Asia/Kolkata')).toBe('2026-11-26 02:00:00 Asia/Kolkata');
  });
});

describe('openChatQuerySource (fake listChats)', () => {
  const ok = (body: unknown): ApiOutcome => ({ kind: 'response', statusCode: 200, body, latencyMs: 1 });
  const status = (statusCode: number, retryAfter?: string): ApiOutcome => ({
    kind: 'response',
    statusCode,
    body: { statusCode, message: 'x' },
    latencyMs: 1,
    ...(retryAfter ? { retryAfter } : {}),
  });
  const page = (ids: string[], next?: string): ApiOutcome =>
    ok({
      chats: ids.map((id, i) => chat({ id, phoneNumber: `9198123456${String(i).padStart(2, '0')}${id.length}` })),
      paginationOptions: { hasMoreChats: next !== undefined, nextChatId: next ?? null, nextChatTimestamp: next ? 1 : null },
    });

  function source(answers: ApiOutcome[], rule: ChatRule = { chatStatus: 'done' }) {
    const queries: ListChatsQuery[] = [];
    const pauses: number[] = [];
    const sleeps: number[] = [];
    const src = openChatQuerySource({
      api: { listChats: async (q) => (queries.push(q), answers.shift() ?? status(500)) },
      rule,
      now: NOW,
      pace: async () => undefined,
      rateLimit: async (ms) => void pauses.push(ms),
      maxAttempts: 3,
      backoffDelayMs: 10,
      sleep: async (ms) => void sleeps.push(ms),
      random: () => 0.5,
    });
    const read = async () => {
      const rows = [];
      for await (const r of src.rows()) rows.push(r);
      return rows;
    };
    return { src, queries, pauses, sleeps, read };
  }

  it('follows the cursor to the last page, retrying 5xx and waiting out 429', async () => {
    const t = source([page(['a', 'b'], 'b'), status(503), status(429, '2'), page(['c'], 'c'), page([])]);
    const rows = await t.read();
    expect(rows).toHaveLength(3);
    expect(t.queries.map((q) => q.nextChatId ?? null)).toEqual([null, 'b', 'b', 'b', 'c']);
    expect(t.queries[1]).toMatchObject({ status: 'done', limit: 100, nextChatTimestamp: 1 });
    expect(t.sleeps).toEqual([10]);
    expect(t.pauses).toEqual([2000]);
    expect(t.src.stats()).toEqual({ pages: 3, listed: 3, selected: 3, groupListings: 0, groupPages: 0 });
  });

  it('gives up after MAX_ATTEMPTS transient failures with a ChatListError', async () => {
    const t = source([status(500), status(502), status(503)]);
    await expect(t.read()).rejects.toThrow(/GET \/chats failed 3 time\(s\), last: HTTP 503/);
  });

  it('stops at once on 401 and on 400', async () => {
    await expect(source([status(401)]).read()).rejects.toThrow(/API key rejected/);
    await expect(source([status(400)]).read()).rejects.toThrow(/refused the query/);
  });

  it('stops at once on a redirect or an HTML page, naming DOUBLETICK_BASE_URL', async () => {
    const redirect: ApiOutcome = { kind: 'response', statusCode: 302, body: '', latencyMs: 1, location: 'https://elsewhere.example/x' };
    const html: ApiOutcome = { kind: 'response', statusCode: 200, body: '<html>captive portal</html>', latencyMs: 1, html: true };
    for (const answer of [redirect, html]) {
      const t = source([answer, page(['a'])]);
      await expect(t.read()).rejects.toThrow(/DOUBLETICK_BASE_URL/);
      expect(t.queries).toHaveLength(1);
    }
  });

  it('refuses a cursor that does not advance (a server bug would otherwise loop forever)', async () => {
    await expect(source([page(['a'], 'a'), page(['a'], 'a')]).read()).rejects.toThrow(/same cursor twice/);
  });

  it('yields only chats the rule selects; counts what it listed', async () => {
    const t = source([
      ok({
        chats: [chat({ id: 'x' }), chat({ id: 'y', assignedUserNumber: null }), chat({ id: 'z', isDone: false })],
        paginationOptions: { hasMoreChats: false },
      }),
    ]);
    expect(await t.read()).toHaveLength(1);
    expect(t.src.stats()).toEqual({ pages: 1, listed: 3, selected: 1, groupListings: 0, groupPages: 0 });
  });
});
