/**
 * The stand-in DoubleTick server, over real HTTP with Node's global fetch. Every test starts its own server
 * on a free port and closes it in `finally` (withMock).
 */
import { Agent, request } from 'node:http';

import { describe, expect, it } from '@jest/globals';

import { type MockApi, type MockApiOptions, type SeedChat, startMockApi } from '../../src/devtools/mock-api.js';
import { eventually } from '../helpers/eventually.js';

const KEY = 'key_TestAbC123';
const WABA = '919000000000';
const NOW = Date.UTC(2025, 0, 15, 12, 0, 0);

async function withMock(opts: Partial<MockApiOptions>, fn: (api: MockApi) => Promise<void>): Promise<void> {
  const api = await startMockApi({ apiKey: KEY, ...opts });
  try {
    await fn(api);
  } finally {
    await api.close();
  }
}

interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
}

async function call(api: MockApi, path: string, init: RequestInit = {}): Promise<Answer> {
  const res = await fetch(`${api.url}${path}`, init);
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text === '' ? undefined : JSON.parse(text) };
}

function unassign(api: MockApi, body: unknown, auth: string | null = KEY, signal?: AbortSignal): Promise<Answer> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (auth !== null) headers.authorization = auth;
  const payload = typeof body === 'string' ? body : JSON.stringify(body);
  return call(api, '/team-member/unassign', { method: 'POST', headers, body: payload, signal });
}

const phone = (customerPhoneNumber: string): object => ({ customerPhoneNumber, wabaNumber: WABA });

interface Page {
  chats: (SeedChat & Record<string, unknown>)[];
  paginationOptions: { hasMoreChats: boolean; nextChatId: string | null; nextChatTimestamp: number | null };
}

const listChats = (api: MockApi, query: string, auth: string = KEY): Promise<Answer> => call(api, `/chats?${query}`, { headers: { authorization: auth } });

/** Follows the cursor to the end; returns every chat in the order received. */
async function allPages(api: MockApi, query: string): Promise<{ chats: SeedChat[]; pages: number }> {
  const chats: SeedChat[] = [];
  let cursor = '';
  for (let pages = 1; pages < 1000; pages++) {
    const res = await listChats(api, query + cursor);
    expect(res.status).toBe(200);
    const page = res.body as Page;
    chats.push(...page.chats);
    const p = page.paginationOptions;
    if (!p.hasMoreChats) return { chats, pages };
    cursor = `&nextChatId=${p.nextChatId}&nextChatTimestamp=${p.nextChatTimestamp}`;
  }
  throw new Error('paging never ended');
}

describe('mock-api: POST /team-member/unassign', () => {
  it('answers 401 with the documented body for a missing, wrong, "Bearer" or "key "-prefixed key, and counts the requests', () =>
    withMock({}, async (api) => {
      for (const auth of [null, 'key_wrong', `Bearer ${KEY}`, `key ${KEY}`]) {
        const res = await unassign(api, phone('919999999999'), auth);
        expect(res.status).toBe(401);
        expect(res.body).toEqual({ message: 'Invalid public api key', error: 'Unauthorized', statusCode: 401 });
      }
      expect(api.stats()).toMatchObject({ requests: 4, byStatus: { '401': 4 }, unassigned: {} });
    }));

  it.each([
    ['not JSON', '{"customerPhoneNumber":'],
    ['a JSON array', '[]'],
    ['neither phone nor group', { wabaNumber: WABA }],
    ['both phone and group', { customerPhoneNumber: '919999999999', groupId: 'grp_1', wabaNumber: WABA }],
    ['a phone with +', { customerPhoneNumber: '+919999999999', wabaNumber: WABA }],
    ['a phone with spaces', { customerPhoneNumber: '91 99999 99999', wabaNumber: WABA }],
    ['a 6-digit phone', { customerPhoneNumber: '123456', wabaNumber: WABA }],
    ['a 16-digit phone', { customerPhoneNumber: '1234567890123456', wabaNumber: WABA }],
    ['a phone as a number', { customerPhoneNumber: 919999999999, wabaNumber: WABA }],
    ['a phone without wabaNumber', { customerPhoneNumber: '919999999999' }],
    ['a bad wabaNumber', { customerPhoneNumber: '919999999999', wabaNumber: '+919000000000' }],
    ['an empty groupId', { groupId: '' }],
  ])('answers 400 {statusCode, message: string[], error} for %s', (_name, body) =>
    withMock({}, async (api) => {
      const res = await unassign(api, body);
      expect(res.status).toBe(400);
      const b = res.body as { statusCode: number; message: unknown; error: string };
      expect(b.statusCode).toBe(400);
      expect(b.error).toBe('Bad Request');
      expect(Array.isArray(b.message)).toBe(true);
      expect((b.message as unknown[]).length).toBeGreaterThan(0);
      expect((b.message as unknown[]).every((m) => typeof m === 'string')).toBe(true);
      expect(api.stats().byStatus).toEqual({ '400': 1 });
    }),
  );

  it('answers 201 {success:true}, counts per chat key, and unknown chats succeed too', () =>
    withMock({}, async (api) => {
      expect(await unassign(api, phone('919999999999'))).toMatchObject({ status: 201, body: { success: true } });
      await unassign(api, phone('919999999999'));
      await unassign(api, { customerPhoneNumber: '919999999999', wabaNumber: '919000000001' });
      await unassign(api, { groupId: 'grp_42' });
      expect(api.stats()).toEqual({
        requests: 4,
        byStatus: { '201': 4 },
        unassigned: { [`p:919999999999@${WABA}`]: 2, 'p:919999999999@919000000001': 1, 'g:grp_42': 1 },
        rateLimited: 0,
        maxPerSecond: 4,
        maxInFlight: 1,
        listRequests: 0,
        groupListRequests: 0,
        listRateLimited: 0,
        assignRequests: 0,
        assignByStatus: {},
        assigned: {},
        detailsRequests: 0,
      });
    }));

  it('nulls the assignment of a seeded chat (individual and group) on 201', () =>
    withMock({ seedChats: 60, now: NOW }, async (api) => {
      const chats = api.chats();
      const person = chats.find((c) => c.chatType === 'INDIVIDUAL' && c.assignedUserNumber !== null)!;
      const group = chats.find((c) => c.chatType === 'WA_GROUP')!;
      expect(person).toBeDefined();
      expect(group).toBeDefined();
      await unassign(api, { customerPhoneNumber: person.phoneNumber, wabaNumber: person.wabaNumber });
      await unassign(api, { groupId: group.groupId });
      const after = new Map(api.chats().map((c) => [c.id, c]));
      expect(after.get(person.id)).toMatchObject({ assignedUserName: null, assignedUserNumber: null });
      expect(after.get(group.id)).toMatchObject({ assignedUserName: null, assignedUserNumber: null });
      expect(Object.keys(api.stats().unassigned).sort()).toEqual([`g:${group.groupId}`, `p:${person.phoneNumber}@${person.wabaNumber}`].sort());
    }));

  it('does not mutate explicitly given chats', () => {
    const given: SeedChat = {
      id: 'c1',
      chatType: 'INDIVIDUAL',
      name: 'A',
      phoneNumber: '919812345678',
      wabaNumber: WABA,
      assignedUserName: 'Asha',
      assignedUserNumber: '919811111111',
      isDone: true,
      unreadCount: 0,
      chatUpdatedTime: NOW,
      lastMessageTime: NOW,
      tagNames: ['vip'],
    };
    return withMock({ chats: [given] }, async (api) => {
      await unassign(api, phone('919812345678'));
      expect(api.chats()[0]).toMatchObject({ id: 'c1', assignedUserNumber: null });
      expect(given.assignedUserNumber).toBe('919811111111');
    });
  });

  it('answers 422 and 404 with the documented bodies for the chosen numbers and groups', () =>
    withMock({ faults: { rejectNumbers: ['919811112222', 'grp_bad'], notFoundNumbers: ['919833334444'] } }, async (api) => {
      const reject = { statusCode: 422, message: 'User is not a member of the team' };
      expect(await unassign(api, phone('919811112222'))).toMatchObject({ status: 422, body: reject });
      expect(await unassign(api, { groupId: 'grp_bad' })).toMatchObject({ status: 422, body: reject });
      const notFound = { statusCode: 404, message: 'Chat not found', error: 'Not Found' };
      expect(await unassign(api, phone('919833334444'))).toMatchObject({ status: 404, body: notFound });
      expect((await unassign(api, phone('919855556666'))).status).toBe(201);
      expect(api.stats().byStatus).toEqual({ '422': 2, '404': 1, '201': 1 });
    }));

  it('answers 503 to a flaky number exactly N times, then 201; setFaults resets the counter', () =>
    withMock({ faults: { flaky: { '919811112222': 2 } } }, async (api) => {
      const statuses = async (n: number): Promise<number[]> => {
        const out: number[] = [];
        for (let i = 0; i < n; i++) out.push((await unassign(api, phone('919811112222'))).status);
        return out;
      };
      const first = await unassign(api, phone('919811112222'));
      expect(first.body).toEqual({ statusCode: 503, message: 'Service Unavailable' });
      expect([first.status, ...(await statuses(3))]).toEqual([503, 503, 201, 201]);
      expect((await unassign(api, phone('919899990000'))).status).toBe(201); // other numbers unaffected
      api.setFaults({ flaky: { '919811112222': 1 } });
      expect(await statuses(2)).toEqual([503, 201]);
      expect(api.stats().byStatus).toEqual({ '503': 3, '201': 4 });
    }));

  it('destroys the socket for resetNumbers and holds it for timeoutNumbers, N times each', () =>
    withMock({ faults: { resetNumbers: { '919811112222': 1 }, timeoutNumbers: { '919833334444': 1 } } }, async (api) => {
      await expect(unassign(api, phone('919811112222'))).rejects.toThrow();
      expect((await unassign(api, phone('919811112222'))).status).toBe(201);
      const held = unassign(api, phone('919833334444'), KEY, AbortSignal.timeout(300));
      await expect(held).rejects.toThrow();
      expect((await unassign(api, phone('919833334444'))).status).toBe(201);
      expect(api.stats()).toMatchObject({ requests: 4, byStatus: { reset: 1, timeout: 1, '201': 2 } });
    }));

  it('answers 500 to about serverErrorRate of calls, the same ones for the same seed', async () => {
    const run = (seed: number): Promise<number[]> => {
      const statuses: number[] = [];
      return withMock({ faults: { serverErrorRate: 0.3, seed } }, async (api) => {
        for (let i = 0; i < 200; i++) statuses.push((await unassign(api, phone(`9198${String(i).padStart(8, '0')}`))).status);
        expect(api.stats().byStatus['500']).toBe(statuses.filter((s) => s === 500).length);
      }).then(() => statuses);
    };
    const [a, b, c] = [await run(7), await run(7), await run(8)];
    const errors = a.filter((s) => s === 500).length;
    expect(errors).toBeGreaterThan(30);
    expect(errors).toBeLessThan(90);
    expect(new Set(a)).toEqual(new Set([201, 500]));
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
  });

  it('adds latencyMs before a 201', () =>
    withMock({ latencyMs: 150 }, async (api) => {
      const started = performance.now();
      expect((await unassign(api, phone('919999999999'))).status).toBe(201);
      expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    }));

  it('reports the busiest second as maxPerSecond', () =>
    withMock({}, async (api) => {
      await Promise.all(Array.from({ length: 25 }, (_, i) => unassign(api, phone(`91980000${String(i).padStart(4, '0')}`))));
      await unassign(api, 'not json', 'wrong key'); // 401s are requests the server saw, too
      expect(api.stats()).toMatchObject({ requests: 26, maxPerSecond: 26 });
    }));

  it('rejects oversized bodies with 413 and unknown routes with a 404 JSON body', () =>
    withMock({}, async (api) => {
      expect((await unassign(api, 'x'.repeat(70_000))).status).toBe(413);
      for (const [method, path] of [
        ['GET', '/nope'],
        ['GET', '/team-member/unassign'],
        ['DELETE', '/chats'],
      ] as const) {
        const res = await call(api, path, { method, headers: { authorization: KEY } });
        expect(res.status).toBe(404);
        expect(res.body).toMatchObject({ statusCode: 404, error: 'Not Found' });
      }
    }));
});

describe('mock-api: rate limiting and key faults', () => {
  const body429 = { statusCode: 429, message: 'Too Many Requests: Rate Limit Exceeded', error: 'Too Many Requests' };

  it('answers 429 over the fixed window with Retry-After in seconds, then lets requests through again', () =>
    withMock({ rateLimit: { max: 3, windowMs: 400 } }, async (api) => {
      for (let i = 0; i < 3; i++) expect((await unassign(api, phone('919999999999'))).status).toBe(201);
      const limited = await unassign(api, phone('919999999999'));
      expect(limited).toMatchObject({ status: 429, body: body429 });
      expect(limited.headers.get('retry-after')).toBe('1'); // ≤ 400 ms left, rounded up to whole seconds
      expect(api.stats()).toMatchObject({ requests: 4, rateLimited: 1, byStatus: { '201': 3, '429': 1 } });
      await eventually(async () => (await unassign(api, phone('919999999999'))).status === 201, { message: 'the window to reset (a 201 again)' });
    }));

  it('sends Retry-After as an HTTP date, rounded up to the window reset', () =>
    withMock({ rateLimit: { max: 1, windowMs: 3000 }, retryAfter: 'http-date' }, async (api) => {
      const before = Date.now();
      await unassign(api, phone('919999999999'));
      const limited = await unassign(api, phone('919999999999'));
      expect(limited.status).toBe(429);
      const header = limited.headers.get('retry-after')!;
      expect(header).toMatch(/^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
      const at = Date.parse(header);
      expect(at).toBeGreaterThanOrEqual(before + 3000 - 1000);
      expect(at).toBeLessThanOrEqual(Date.now() + 3000 + 1000);
    }));

  it('sends no Retry-After with retryAfter none, and the window is shared with GET /chats', () =>
    withMock({ rateLimit: { max: 1, windowMs: 60_000 }, retryAfter: 'none' }, async (api) => {
      expect((await listChats(api, '')).status).toBe(200);
      const limited = await unassign(api, phone('919999999999'));
      expect(limited.status).toBe(429);
      expect(limited.headers.get('retry-after')).toBeNull();
      expect(await listChats(api, '')).toMatchObject({ status: 429, body: body429 });
      expect(api.stats()).toMatchObject({ rateLimited: 1, listRateLimited: 1 }); // each 429 counted with its endpoint
    }));

  it('setRateLimit replaces the limit at runtime', () =>
    withMock({}, async (api) => {
      api.setRateLimit({ max: 0, windowMs: 60_000 }, 'seconds');
      const limited = await unassign(api, phone('919999999999'));
      expect(limited.status).toBe(429);
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(59);
      api.setRateLimit(null);
      expect((await unassign(api, phone('919999999999'))).status).toBe(201);
    }));

  it('answers 429 to the next storm429 requests whatever the limit, then recovers', () =>
    withMock({ faults: { storm429: 2 } }, async (api) => {
      const first = await unassign(api, phone('919999999999'));
      expect(first).toMatchObject({ status: 429, body: body429 });
      expect(first.headers.get('retry-after')).toBe('1');
      expect((await unassign(api, phone('919999999999'))).status).toBe(429);
      expect((await unassign(api, phone('919999999999'))).status).toBe(201);
      expect(api.stats()).toMatchObject({ rateLimited: 2, byStatus: { '429': 2, '201': 1 } });
    }));

  it('checks the key before the rate limit', () =>
    withMock({ faults: { storm429: 1 } }, async (api) => {
      expect((await unassign(api, phone('919999999999'), 'wrong')).status).toBe(401);
      expect((await unassign(api, phone('919999999999'))).status).toBe(429);
    }));

  it('revokes the key after revokeKeyAfter 201s, for every endpoint, until the faults change', () =>
    withMock({ faults: { revokeKeyAfter: 2 } }, async (api) => {
      expect((await unassign(api, phone('919999999991'))).status).toBe(201);
      expect((await unassign(api, phone('919999999992'))).status).toBe(201);
      const revoked = await unassign(api, phone('919999999993'));
      expect(revoked).toMatchObject({ status: 401, body: { message: 'Invalid public api key', statusCode: 401 } });
      expect((await unassign(api, { groupId: 'grp_1' })).status).toBe(401);
      expect((await listChats(api, '')).status).toBe(401);
      api.setFaults({});
      expect((await unassign(api, phone('919999999993'))).status).toBe(201);
    }));
});

describe('mock-api: GET /chats', () => {
  // These tests follow chats by the stand-in's own ids, which the documented listing does not carry.
  const seeded = { seedChats: 400, now: NOW, undocumentedChatIds: true };

  it('generates the same chats for the same seed, valid numbers, and the documented mix', async () => {
    let a: SeedChat[] = [];
    let b: SeedChat[] = [];
    await withMock({ ...seeded, faults: { seed: 3 } }, async (api) => void (a = api.chats()));
    await withMock({ ...seeded, faults: { seed: 3 } }, async (api) => void (b = api.chats()));
    expect(b).toEqual(a);
    expect(a).toHaveLength(400);
    const groups = a.filter((c) => c.chatType === 'WA_GROUP');
    expect(groups.length).toBeGreaterThan(15);
    expect(groups.length).toBeLessThan(70);
    expect(groups.every((c) => c.phoneNumber === null && /^grp_\d{6}$/.test(c.groupId!))).toBe(true);
    const people = a.filter((c) => c.chatType === 'INDIVIDUAL');
    expect(people.every((c) => /^9198\d{8}$/.test(c.phoneNumber!) && c.groupId === undefined)).toBe(true);
    expect(new Set(people.map((c) => c.phoneNumber)).size).toBe(people.length);
    expect(a.every((c) => ['919000000000', '919000000001'].includes(c.wabaNumber!))).toBe(true);
    expect(a.every((c) => c.chatUpdatedTime <= NOW && c.chatUpdatedTime >= NOW - 72 * 3600_000)).toBe(true);
    expect(new Set(a.map((c) => c.assignedUserName))).toEqual(new Set(['Asha', 'Ravi', 'Meera', null]));
    const assigned = a.filter((c) => c.assignedUserNumber !== null).length / a.length;
    expect(assigned).toBeGreaterThan(0.5);
    expect(assigned).toBeLessThan(0.8);
  });

  it('returns the {chats, paginationOptions} shape (assumed), newest first, default limit 10, groupId only on groups', () =>
    withMock(seeded, async (api) => {
      const res = await listChats(api, '');
      expect(res.status).toBe(200);
      const page = res.body as Page;
      expect(page.chats.map((c) => c.id)).toEqual(
        api
          .chats()
          .slice(0, 10)
          .map((c) => c.id),
      );
      expect(page.paginationOptions).toEqual({
        hasMoreChats: true,
        nextChatId: page.chats[9]!.id,
        nextChatTimestamp: page.chats[9]!.chatUpdatedTime,
      });
      const all = (await listChats(api, 'limit=100')).body as Page;
      for (const c of all.chats) expect('groupId' in c).toBe(c.chatType === 'WA_GROUP');
      expect(api.stats().listRequests).toBe(2);
      expect(api.stats().requests).toBe(0);
    }));

  it('by default lists chats as documented: no id, no groupId (a group chat is known by its name)', () =>
    withMock({ seedChats: 100, now: NOW }, async (api) => {
      const { chats } = (await listChats(api, 'limit=100')).body as Page;
      expect(chats).toHaveLength(100);
      for (const c of chats) expect(['id' in c, 'groupId' in c, typeof c.name]).toEqual([false, false, 'string']);
      expect(chats.map((c) => c.name)).toEqual(api.chats().map((c) => c.name));
    }));

  it('pages across equal timestamps without skipping or repeating a chat', () =>
    withMock(seeded, async (api) => {
      // chat_000007 shares chat_000006's time, so a page of 6 ends in the middle of the tie.
      const first = (await listChats(api, 'limit=6')).body as Page;
      expect(first.paginationOptions.nextChatId).toBe('chat_000007');
      const { chats } = await allPages(api, 'limit=6');
      expect(chats.map((c) => c.id)).toEqual(api.chats().map((c) => c.id));
    }));

  it.each([
    [
      'status=unresolved&tags=vip,sales&wabaNumbers=919000000000',
      (c: SeedChat) => !c.isDone && c.tagNames.some((t) => t === 'vip' || t === 'sales') && c.wabaNumber === '919000000000',
    ],
    ['status=done&assignedUserPhone=%2B919811111111', (c: SeedChat) => c.isDone && c.assignedUserNumber === '919811111111'],
    ['status=unread&wabaNumbers=919000000001,%2B919000000000', (c: SeedChat) => c.unreadCount > 0],
    ['status=open&tags=support', (c: SeedChat) => !c.isDone && c.tagNames.includes('support')],
    ['assignedUserPhone=null&status=all', (c: SeedChat) => c.assignedUserNumber === null],
    ['status=waiting_for_response', () => true],
  ])('pages through %s: each matching chat exactly once', (query, matches) =>
    withMock(seeded, async (api) => {
      const expected = api
        .chats()
        .filter(matches)
        .map((c) => c.id);
      expect(expected.length).toBeGreaterThan(14);
      const { chats, pages } = await allPages(api, `limit=7&${query}`);
      const ids = chats.map((c) => c.id);
      expect(pages).toBeGreaterThan(1);
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids).toEqual(expected);
    }),
  );

  it('shows an unassigned chat under assignedUserPhone=null after a 201', () =>
    withMock(seeded, async (api) => {
      const chat = api.chats().find((c) => c.chatType === 'INDIVIDUAL' && c.assignedUserNumber === '919822222222')!;
      const before = await allPages(api, 'limit=100&assignedUserPhone=null');
      expect(before.chats.some((c) => c.id === chat.id)).toBe(false);
      await unassign(api, { customerPhoneNumber: chat.phoneNumber, wabaNumber: chat.wabaNumber });
      const after = await allPages(api, 'limit=100&assignedUserPhone=null');
      expect(after.chats.find((c) => c.id === chat.id)).toMatchObject({ assignedUserName: null, assignedUserNumber: null });
    }));

  it.each(['limit=0', 'limit=101', 'limit=abc', 'status=bogus', 'nextChatId=chat_000001', 'nextChatId=x&nextChatTimestamp=soon', 'assignedUserPhone=abc'])(
    'answers 400 to %s',
    (query) =>
      withMock(seeded, async (api) => {
        const res = await listChats(api, query);
        expect(res.status).toBe(400);
        expect(res.body).toMatchObject({ statusCode: 400, error: 'Bad Request' });
      }),
  );

  it('needs the key', () =>
    withMock(seeded, async (api) => {
      expect((await listChats(api, '', 'wrong')).status).toBe(401);
    }));
});

describe('mock-api: GET /whatsapp/wa-group/list', () => {
  interface GroupPage {
    groups: { groupId: string; subject: string; groupCreatedAt: string; status: string }[];
    hasMore: boolean;
    lastGroupId: string | null;
    olderThanTimestamp: string | null;
  }
  const listGroups = (api: MockApi, query: string, headers: Record<string, string> = { 'x-public-api-key': KEY }): Promise<Answer> =>
    call(api, `/whatsapp/wa-group/list?${query}`, { headers });

  it("lists a WABA number's groups (one per group chat, subject = its name) newest first, with the lastGroupId + olderThanTimestamp cursor", () =>
    withMock({ seedChats: 400, now: NOW, groupPageSize: 4 }, async (api) => {
      const expected = api.chats().filter((c) => c.chatType === 'WA_GROUP' && c.wabaNumber === WABA);
      expect(expected.length).toBeGreaterThan(8);
      const seen: GroupPage['groups'] = [];
      let cursor = '';
      let pages = 0;
      for (;;) {
        const res = await listGroups(api, `wabaNumber=${WABA}${cursor}`);
        expect(res.status).toBe(200);
        const page = res.body as GroupPage;
        pages += 1;
        seen.push(...page.groups);
        if (!page.hasMore) break;
        expect(page.lastGroupId).toBe(page.groups.at(-1)!.groupId);
        cursor = `&lastGroupId=${page.lastGroupId}&olderThanTimestamp=${encodeURIComponent(page.olderThanTimestamp!)}`;
      }
      expect(pages).toBe(Math.ceil(expected.length / 4));
      expect(seen.map((g) => [g.groupId, g.subject])).toEqual(expected.map((c) => [c.groupId, c.name]));
      expect(seen.every((g) => g.status === 'ACTIVE' && !Number.isNaN(Date.parse(g.groupCreatedAt)))).toBe(true);
      expect(api.stats()).toMatchObject({ groupListRequests: pages, listRequests: 0, requests: 0 });
    }));

  it('groupConflicts: alternately a second group of the same subject, and a group chat with no group listed', () =>
    withMock({ seedChats: 400, now: NOW, groupConflicts: 2, groupPageSize: 100 }, async (api) => {
      const [first, second] = api
        .chats()
        .filter((c) => c.chatType === 'WA_GROUP')
        .sort((a, b) => a.id.localeCompare(b.id));
      const subjects = api.groups().map((g) => g.subject);
      expect(subjects.filter((s) => s === first!.name)).toHaveLength(2);
      expect(subjects.filter((s) => s === second!.name)).toHaveLength(0);
    }));

  it('wants the key in x-public-api-key (Authorization alone is refused), a wabaNumber with an integration, and a whole cursor', () =>
    withMock({ seedChats: 20, now: NOW }, async (api) => {
      expect((await listGroups(api, `wabaNumber=${WABA}`, { authorization: KEY })).status).toBe(401);
      expect((await listGroups(api, `wabaNumber=${WABA}`, { 'x-public-api-key': 'wrong' })).status).toBe(401);
      for (const query of [
        '',
        'wabaNumber=919111111111',
        `wabaNumber=${WABA}&lastGroupId=grp_000001`,
        `wabaNumber=${WABA}&lastGroupId=g&olderThanTimestamp=yesterday`,
      ]) {
        expect(await listGroups(api, query)).toMatchObject({ status: 400, body: { statusCode: 400, error: 'Bad Request' } });
      }
    }));
});

describe('mock-api: admin endpoints and lifecycle', () => {
  const post = (api: MockApi, path: string, body: unknown): Promise<Answer> =>
    call(api, path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  it('drives faults, rate limit, stats, reset and chats over HTTP without the key', () =>
    withMock({ seedChats: 20, now: NOW }, async (api) => {
      expect(await post(api, '/__admin/faults', { rejectNumbers: ['919811112222'] })).toMatchObject({ status: 200 });
      expect((await unassign(api, phone('919811112222'))).status).toBe(422);
      expect(await post(api, '/__admin/rate-limit', { rateLimit: { max: 1, windowMs: 60_000 }, retryAfter: 'none' })).toMatchObject({ status: 200 });
      expect((await unassign(api, phone('919999999999'))).status).toBe(201);
      const limited = await unassign(api, phone('919999999999'));
      expect(limited.status).toBe(429);
      expect(limited.headers.get('retry-after')).toBeNull();
      const stats = await call(api, '/__admin/stats');
      expect(stats).toMatchObject({ status: 200, body: api.stats() });
      expect(stats.body).toMatchObject({ requests: 3, byStatus: { '422': 1, '201': 1, '429': 1 } });
      expect(await post(api, '/__admin/rate-limit', { rateLimit: null })).toMatchObject({ status: 200 });
      expect(await post(api, '/__admin/reset', {})).toMatchObject({ status: 200 });
      expect(api.stats()).toEqual({
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
      expect((await unassign(api, phone('919999999999'))).status).toBe(201);
      const chats = await call(api, '/__admin/chats');
      expect(chats).toMatchObject({ status: 200, body: api.chats() });
    }));

  it('answers 400 to malformed admin bodies and keeps the old settings', () =>
    withMock({ faults: { storm429: 1 } }, async (api) => {
      expect((await call(api, '/__admin/faults', { method: 'POST', body: '{' })).status).toBe(400);
      expect((await post(api, '/__admin/faults', [1])).status).toBe(400);
      expect((await post(api, '/__admin/rate-limit', { rateLimit: { max: -1, windowMs: 10 } })).status).toBe(400);
      expect((await post(api, '/__admin/rate-limit', { rateLimit: null, retryAfter: 'later' })).status).toBe(400);
      expect((await unassign(api, phone('919999999999'))).status).toBe(429);
    }));

  it('reset() clears stats and re-arms fault counters but keeps assignment state', () =>
    withMock({ seedChats: 20, now: NOW, faults: { flaky: { '919811112222': 1 } } }, async (api) => {
      const chat = api.chats().find((c) => c.chatType === 'INDIVIDUAL' && c.assignedUserNumber !== null)!;
      await unassign(api, { customerPhoneNumber: chat.phoneNumber, wabaNumber: chat.wabaNumber });
      expect((await unassign(api, phone('919811112222'))).status).toBe(503);
      api.reset();
      expect(api.stats().requests).toBe(0);
      expect(api.chats().find((c) => c.id === chat.id)!.assignedUserNumber).toBeNull();
      expect((await unassign(api, phone('919811112222'))).status).toBe(503);
    }));

  it('keeps connections alive between requests', () =>
    withMock({}, async (api) => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      const once = (): Promise<{ status: number; reused: boolean }> =>
        new Promise((resolve, reject) => {
          const req = request(`${api.url}/team-member/unassign`, { method: 'POST', agent, headers: { authorization: KEY } }, (res) => {
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode!, reused: req.reusedSocket }));
          });
          req.on('error', reject);
          req.end(JSON.stringify(phone('919999999999')));
        });
      try {
        expect(await once()).toEqual({ status: 201, reused: false });
        expect(await once()).toEqual({ status: 201, reused: true });
      } finally {
        agent.destroy();
      }
    }));

  it('close() resolves fast even with a held request and an idle keep-alive socket', async () => {
    const api = await startMockApi({ apiKey: KEY, faults: { timeoutNumbers: { '919811112222': 5 } } });
    await unassign(api, phone('919999999999')); // leaves an idle keep-alive socket in fetch's pool
    const held = unassign(api, phone('919811112222'));
    await eventually(() => api.stats().byStatus.timeout === 1, { message: 'the held request to reach the server' });
    const started = performance.now();
    await api.close();
    expect(performance.now() - started).toBeLessThan(1000);
    await expect(held).rejects.toThrow();
    await api.close(); // twice is fine
  });

  it('binds a free port and reports its url without a trailing slash', () =>
    withMock({}, async (api) => {
      expect(api.port).toBeGreaterThan(0);
      expect(api.url).toBe(`http://127.0.0.1:${api.port}`);
    }));
});

describe('stand-in API: assign, customer details and the chats’ agents', () => {
  const AGENT = '919811111111';
  const OTHER = '919822222222';
  const CUSTOMER = '919876500001';
  const key = `p:${CUSTOMER}@${WABA}`;
  const post = (api: MockApi, path: string, body: unknown, auth: string = KEY): Promise<Answer> =>
    call(api, path, { method: 'POST', headers: { 'content-type': 'application/json', authorization: auth }, body: JSON.stringify(body) });
  const assign = (api: MockApi, body: object): Promise<Answer> => post(api, '/team-member/assign', { ...phone(CUSTOMER), ...body });
  const details = (api: MockApi, query: string, auth: string = KEY): Promise<Answer> =>
    call(api, `/customer/details?${query}`, { headers: { authorization: auth } });

  it('unassign, assign and customer details read and change one memory of each chat’s agent', () =>
    withMock({ agents: { [key]: AGENT } }, async (api) => {
      expect(api.agentOf(key)).toBe(AGENT);
      const before = await details(api, `phoneNumber=%2B${CUSTOMER}&wabaNumber=${WABA}`);
      expect(before.status).toBe(200);
      expect(before.body).toEqual({
        customer: expect.objectContaining({ phone: `+${CUSTOMER}`, tags: [], customFields: [], assignedToUser: 'Asha', assignedUserNumber: AGENT }) as unknown,
      });
      expect((await unassign(api, phone(CUSTOMER))).status).toBe(201);
      expect(api.agentOf(key)).toBeNull();
      expect(((await details(api, `phoneNumber=${CUSTOMER}&wabaNumber=${WABA}`)).body as { customer: object }).customer).toMatchObject({
        assignedToUser: null,
        assignedUserNumber: null,
      });
      const assigned = await assign(api, { assignedUserPhoneNumber: OTHER, reassign: false });
      expect(assigned).toMatchObject({ status: 201, body: { name: 'Ravi', phone: OTHER } });
      expect(api.agentOf(key)).toBe(OTHER);
      expect(api.stats()).toMatchObject({ assignRequests: 1, assigned: { [key]: 1 }, assignByStatus: { 201: 1 }, detailsRequests: 2 });
    }));

  it('without reassign, a chat that has an agent is left alone with 409; with reassign it is taken over', () =>
    withMock({ agents: { [key]: AGENT } }, async (api) => {
      for (const body of [{ assignedUserPhoneNumber: OTHER, reassign: false }, { assignedUserPhoneNumber: OTHER }]) {
        expect(await assign(api, body)).toMatchObject({ status: 409, body: { statusCode: 409, message: 'Chat is already assigned' } });
      }
      expect(api.agentOf(key)).toBe(AGENT);
      expect((await assign(api, { assignedUserPhoneNumber: OTHER, reassign: true })).status).toBe(201);
      expect(api.agentOf(key)).toBe(OTHER);
    }));

  it('a listed chat’s agent is the one GET /chats shows, before and after the calls', () =>
    withMock({ seedChats: 30, now: NOW }, async (api) => {
      const chat = api.chats().find((c) => c.chatType === 'INDIVIDUAL' && c.assignedUserNumber !== null)!;
      const chatKey = `p:${chat.phoneNumber!}@${chat.wabaNumber!}`;
      expect(api.agentOf(chatKey)).toBe(chat.assignedUserNumber);
      await unassign(api, { customerPhoneNumber: chat.phoneNumber, wabaNumber: chat.wabaNumber });
      const listed = (await allPages(api, 'limit=100')).chats.find((c) => c.phoneNumber === chat.phoneNumber)!;
      expect(listed.assignedUserNumber).toBeNull();
      api.setAgent(chatKey, OTHER);
      const again = (await allPages(api, 'limit=100')).chats.find((c) => c.phoneNumber === chat.phoneNumber)!;
      expect([again.assignedUserNumber, again.assignedUserName]).toEqual([OTHER, 'Ravi']);
    }));

  it('refuses bad bodies and queries with 400, unknown customers with 404, a wrong key with 401', () =>
    withMock({ agents: { [key]: null } }, async (api) => {
      const bad = await assign(api, { assignedUserPhoneNumber: 'agent', reassign: 'no' });
      expect(bad.status).toBe(400);
      expect((bad.body as { message: string[] }).message).toEqual(['assignedUserPhoneNumber must be 7 to 15 digits', 'reassign must be a boolean value']);
      expect((await post(api, '/team-member/assign', { groupId: 'g1' })).status).toBe(400);
      expect((await details(api, 'phoneNumber=abc&wabaNumber=1')).status).toBe(400);
      expect(await details(api, `phoneNumber=919000011111&wabaNumber=${WABA}`)).toMatchObject({ status: 404, body: { statusCode: 404, message: 'NotFound' } });
      expect((await details(api, `phoneNumber=${CUSTOMER}&wabaNumber=${WABA}`, 'wrong')).status).toBe(401);
      expect((await post(api, '/team-member/assign', { ...phone(CUSTOMER), assignedUserPhoneNumber: AGENT }, 'wrong')).status).toBe(401);
      expect(api.agentOf(key)).toBeNull();
      expect(() => api.setAgent(key, 'x')).toThrow(/7 to 15 digits/);
    }));

  it('assign and customer details share the rate-limit window with unassign', () =>
    withMock({ rateLimit: { max: 2, windowMs: 60_000 }, agents: { [key]: null } }, async (api) => {
      expect((await unassign(api, phone(CUSTOMER))).status).toBe(201);
      expect((await details(api, `phoneNumber=${CUSTOMER}&wabaNumber=${WABA}`)).status).toBe(200);
      const limited = await assign(api, { assignedUserPhoneNumber: AGENT, reassign: false });
      expect(limited.status).toBe(429);
      expect(limited.headers.get('retry-after')).not.toBeNull();
      expect(api.agentOf(key)).toBeNull();
    }));
});
