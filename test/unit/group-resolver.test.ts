/**
 * Finding a listed group chat's groupId by its name (src/schedule/group-resolver.ts), against a fake
 * `listGroups` (an injected interface, no module mocks) and the real page loop of chat-source.ts: unique,
 * duplicated and unknown subjects, paging, the one-listing-per-WABA-per-run cache, the shared retry rules, and
 * the resolution inside the GET /chats row source.
 */
import { describe, expect, it } from '@jest/globals';

import type { ApiOutcome } from '../../src/execution/classify.js';
import type { ListGroupsQuery } from '../../src/execution/api-client.js';
import { type ListedGroup, makeGroupResolver, parseGroupPage } from '../../src/schedule/group-resolver.js';
import { makePageFetcher, type NamedChat, openChatQuerySource } from '../../src/schedule/chat-source.js';
import { ChatListError } from '../../src/domain/errors.js';

const WABA = '919000000000';
const WABA2 = '919000000001';
const ok = (body: unknown): ApiOutcome => ({ kind: 'response', statusCode: 200, body, latencyMs: 1 });
const status = (statusCode: number, extra: Partial<Extract<ApiOutcome, { kind: 'response' }>> = {}): ApiOutcome => ({
  kind: 'response',
  statusCode,
  body: { statusCode, message: 'x' },
  latencyMs: 1,
  ...extra,
});
const group = (groupId: string, subject: string): ListedGroup => ({ groupId, subject, status: 'ACTIVE', groupCreatedAt: '2026-01-01T00:00:00.000Z' });
/** A page in the spec's shape; `next` is the cursor's group id (its timestamp is derived from it). */
const page = (groups: ListedGroup[], next?: string): ApiOutcome =>
  ok({ groups, hasMore: next !== undefined, lastGroupId: next ?? null, olderThanTimestamp: next ? `2026-01-01T00:00:0${next.length % 10}.000Z` : null });

/** A resolver over per-WABA answer queues (or one function), with the real page loop and recorded waits. */
function harness(answers: Record<string, ApiOutcome[]> | ((q: ListGroupsQuery) => ApiOutcome)) {
  const queries: ListGroupsQuery[] = [];
  const pauses: number[] = [];
  const sleeps: number[] = [];
  let paced = 0;
  const listGroups = async (q: ListGroupsQuery): Promise<ApiOutcome> => {
    queries.push(q);
    return typeof answers === 'function' ? answers(q) : (answers[q.wabaNumber]?.shift() ?? status(500));
  };
  const fetchPage = makePageFetcher({
    pace: async () => void (paced += 1),
    rateLimit: async (ms) => void pauses.push(ms),
    maxAttempts: 3,
    backoffDelayMs: 10,
    sleep: async (ms) => void sleeps.push(ms),
    random: () => 0.5,
  });
  return { resolver: makeGroupResolver({ api: { listGroups }, fetchPage }), queries, pauses, sleeps, paced: () => paced };
}

describe('parseGroupPage', () => {
  it('reads {groups, hasMore, lastGroupId, olderThanTimestamp}', () => {
    expect(parseGroupPage({ groups: [group('g1', 'A')], hasMore: true, lastGroupId: 'g1', olderThanTimestamp: '2026-01-01T00:00:00.000Z' })).toEqual({
      groups: [group('g1', 'A')],
      next: { lastGroupId: 'g1', olderThanTimestamp: '2026-01-01T00:00:00.000Z' },
    });
    expect(parseGroupPage({ data: { groups: [], hasMore: false, lastGroupId: null, olderThanTimestamp: null } })).toEqual({ groups: [] });
  });
  it('refuses a 200 without a groups list instead of reading it as "no groups" (which would reject every group chat)', () => {
    expect(() => parseGroupPage({ items: [] })).toThrow(ChatListError);
    expect(() => parseGroupPage(undefined)).toThrow(/without a `groups` list/);
  });
});

describe('makeGroupResolver', () => {
  it('a subject that one group of the WABA number has gives its groupId', async () => {
    const t = harness({ [WABA]: [page([group('grp_1', 'Support Pune'), group('grp_2', 'Sales')])] });
    expect(await t.resolver.resolve('Support Pune', WABA)).toEqual({ kind: 'found', groupId: 'grp_1' });
    expect(await t.resolver.resolve('  Sales ', WABA)).toEqual({ kind: 'found', groupId: 'grp_2' }); // outer spaces are not part of a name
    expect(t.queries).toEqual([{ wabaNumber: WABA }]);
  });

  it('a subject that two groups share is rejected with that reason, not guessed', async () => {
    const t = harness({ [WABA]: [page([group('grp_1', 'Support'), group('grp_2', 'Support'), group('grp_3', 'support')])] });
    expect(await t.resolver.resolve('Support', WABA)).toEqual({
      kind: 'rejected',
      reason: `group name "Support" matches 2 groups of ${WABA}: cannot tell which`,
    });
    expect(await t.resolver.resolve('support', WABA)).toEqual({ kind: 'found', groupId: 'grp_3' }); // case is kept
  });

  it('a name no group has is rejected; so is a group chat with no name', async () => {
    const t = harness({ [WABA]: [page([group('grp_1', 'Support')])] });
    expect(await t.resolver.resolve('Billing', WABA)).toEqual({ kind: 'rejected', reason: `no group named "Billing" on WABA ${WABA}` });
    expect(await t.resolver.resolve(null, WABA)).toEqual({ kind: 'rejected', reason: 'group chat listed without a name: its groupId cannot be looked up' });
  });

  it("only groups of the chat's own WABA number count", async () => {
    const t = harness({ [WABA]: [page([group('grp_1', 'Support')])], [WABA2]: [page([group('grp_9', 'Support')])] });
    expect(await t.resolver.resolve('Support', WABA2)).toEqual({ kind: 'found', groupId: 'grp_9' });
    expect(await t.resolver.resolve('Support', WABA)).toEqual({ kind: 'found', groupId: 'grp_1' });
  });

  it('pages through the listing with lastGroupId + olderThanTimestamp, finding a name on the last page and a duplicate across pages', async () => {
    const t = harness({
      [WABA]: [page([group('grp_a', 'North'), group('grp_b', 'Twin')], 'grp_b'), page([group('grp_c', 'Twin')], 'grp_c'), page([group('grp_d', 'South')])],
    });
    expect(await t.resolver.resolve('South', WABA)).toEqual({ kind: 'found', groupId: 'grp_d' });
    expect(await t.resolver.resolve('Twin', WABA)).toMatchObject({ kind: 'rejected', reason: expect.stringContaining('matches 2 groups') });
    expect(t.queries).toEqual([
      { wabaNumber: WABA },
      { wabaNumber: WABA, lastGroupId: 'grp_b', olderThanTimestamp: '2026-01-01T00:00:05.000Z' },
      { wabaNumber: WABA, lastGroupId: 'grp_c', olderThanTimestamp: '2026-01-01T00:00:05.000Z' },
    ]);
    expect(t.resolver.stats()).toEqual({ listings: 1, pages: 3 });
  });

  it('lists each WABA number once per resolver (one run), also for concurrent look-ups; a new resolver lists again', async () => {
    const answer = (q: ListGroupsQuery): ApiOutcome => page([group(`grp_${q.wabaNumber}`, 'Support'), group('grp_x', 'Other')]);
    const t = harness(answer);
    await Promise.all([t.resolver.resolve('Support', WABA), t.resolver.resolve('Other', WABA)]);
    for (const name of ['Support', 'Other', 'Missing']) {
      await t.resolver.resolve(name, WABA);
      await t.resolver.resolve(name, WABA2);
    }
    expect(t.queries.map((q) => q.wabaNumber)).toEqual([WABA, WABA2]);
    expect(t.resolver.stats()).toEqual({ listings: 2, pages: 2 });
    const nextRun = harness(answer);
    await nextRun.resolver.resolve('Support', WABA);
    expect(nextRun.queries).toHaveLength(1);
  });

  it('pages go through the GET /chats page loop: paced, 429 waits through rateLimit, 5xx backs off and retries', async () => {
    const t = harness({ [WABA]: [status(429, { retryAfter: '2' }), status(503), page([group('grp_1', 'Support')])] });
    expect(await t.resolver.resolve('Support', WABA)).toEqual({ kind: 'found', groupId: 'grp_1' });
    expect(t.pauses).toEqual([2000]);
    expect(t.sleeps).toEqual([10]);
    expect(t.paced()).toBe(3);
  });

  it('401, a redirect, repeated 5xx and a cursor that does not advance stop the run (ChatListError)', async () => {
    await expect(harness({ [WABA]: [status(401)] }).resolver.resolve('A', WABA)).rejects.toThrow(/GET \/whatsapp\/wa-group\/list: API key rejected/);
    const redirect = harness({ [WABA]: [status(302, { location: 'https://elsewhere.example/x' }), page([])] });
    await expect(redirect.resolver.resolve('A', WABA)).rejects.toThrow(/DOUBLETICK_BASE_URL/);
    expect(redirect.queries).toHaveLength(1);
    await expect(harness({ [WABA]: [status(500), status(502), status(503)] }).resolver.resolve('A', WABA)).rejects.toThrow(
      /list failed 3 time\(s\), last: HTTP 503/,
    );
    await expect(harness({ [WABA]: [page([], 'g'), page([], 'g')] }).resolver.resolve('A', WABA)).rejects.toThrow(/same cursor twice/);
  });

  it("a 4xx for one WABA number (no integration) rejects that number's group chats only, and is not asked again", async () => {
    const t = harness({ [WABA]: [status(400)], [WABA2]: [page([group('grp_9', 'Support')])] });
    const refused = { kind: 'rejected', reason: `GET /whatsapp/wa-group/list refused WABA ${WABA} (HTTP 400: x): group "Support" cannot be looked up` };
    expect(await t.resolver.resolve('Support', WABA)).toEqual(refused);
    expect(await t.resolver.resolve('Support', WABA)).toEqual(refused);
    expect(await t.resolver.resolve('Support', WABA2)).toEqual({ kind: 'found', groupId: 'grp_9' });
    expect(t.queries.map((q) => q.wabaNumber)).toEqual([WABA, WABA2]);
  });
});

describe('openChatQuerySource resolves group chats by name', () => {
  const NOW = Date.parse('2026-11-25T20:30:00.000Z');
  const base = { assignedUserNumber: '919811111111', isDone: true, unreadCount: 0, chatUpdatedTime: NOW - 1000, lastMessageTime: NOW - 1000, tagNames: [] };
  const groupChat = (name: string, wabaNumber: string | null = WABA): NamedChat => ({ ...base, chatType: 'WA_GROUP', name, phoneNumber: null, wabaNumber });

  it('valid rows for unique names, rejected rows (with reasons) for duplicates, unknown names and a chat with no WABA number', async () => {
    const chats = [
      groupChat('Unique'),
      groupChat('Twin'),
      groupChat('Gone'),
      groupChat('Unique', null),
      { ...base, chatType: 'INDIVIDUAL', name: 'Asha', phoneNumber: '919812345678', wabaNumber: WABA },
    ];
    const listed: ListGroupsQuery[] = [];
    let paced = 0;
    const src = openChatQuerySource({
      api: {
        listChats: async () => ok({ chats, paginationOptions: { hasMoreChats: false } }),
        listGroups: async (q) => (listed.push(q), page([group('grp_u', 'Unique'), group('grp_t1', 'Twin'), group('grp_t2', 'Twin')])),
      },
      rule: { chatStatus: 'done' },
      now: NOW,
      pace: async () => void (paced += 1),
      rateLimit: async () => undefined,
      maxAttempts: 3,
      backoffDelayMs: 10,
    });
    const rows = [];
    for await (const r of src.rows()) rows.push(r);
    expect(rows.map((r) => (r.kind === 'valid' ? r.row.key : `${r.row.raw}: ${r.row.reason}`))).toEqual([
      'g:grp_u',
      `Twin: group name "Twin" matches 2 groups of ${WABA}: cannot tell which`,
      `Gone: no group named "Gone" on WABA ${WABA}`,
      'Unique: group chat "Unique" listed without a usable business (WABA) number: its group cannot be looked up',
      `p:919812345678@${WABA}`,
    ]);
    expect(listed).toEqual([{ wabaNumber: WABA }]);
    expect(paced).toBe(2); // one chat page, one group page: both under the global rate limit
    expect(src.stats()).toEqual({ pages: 1, listed: 5, selected: 5, groupListings: 1, groupPages: 1 });
  });
});
