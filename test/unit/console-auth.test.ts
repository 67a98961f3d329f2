/**
 * Console access control pieces that need no server: session cookies (HMAC, expiry, tampering), cookie
 * parsing, upload file names, and which actions a batch offers.
 */
import { describe, expect, it } from '@jest/globals';

import type { BatchRecord } from '../../src/store/batch-store.js';
import { makeConsoleAuth, readCookie, SESSION_COOKIE, SESSION_TTL_MS } from '../../src/console/auth.js';
import { safeFileName } from '../../src/console/upload.js';
import { batchView } from '../../src/app/views.js';

const TOKEN = 'unit-test-token-0123456789';

function requestWith(headers: Record<string, string>) {
  return { headers } as never;
}

describe('makeConsoleAuth', () => {
  const auth = makeConsoleAuth(TOKEN);

  it('accepts the bearer token and nothing like it', () => {
    expect(auth.check(requestWith({ authorization: `Bearer ${TOKEN}` }))).toBe('bearer');
    for (const header of [`Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, TOKEN, `Basic ${TOKEN}`, 'Bearer ']) {
      expect(auth.check(requestWith({ authorization: header }))).toBeUndefined();
    }
  });

  it('issues sessions that do not contain the token, expire, and cannot be forged', () => {
    const now = Date.now();
    const session = auth.newSession(now);
    expect(session).not.toContain(TOKEN);
    expect(auth.check(requestWith({ cookie: `other=1; ${SESSION_COOKIE}=${session}` }))).toBe('cookie');
    const [expiry, mac] = session.split('.') as [string, string];
    const tampered = [`${Number(expiry) + 1}.${mac}`, `${expiry}.${mac.slice(0, -2)}AA`, `${expiry}`, '', `abc.${mac}`];
    for (const value of tampered) expect(auth.check(requestWith({ cookie: `${SESSION_COOKIE}=${value}` }))).toBeUndefined();
    const expired = auth.newSession(now - SESSION_TTL_MS - 1000);
    expect(auth.check(requestWith({ cookie: `${SESSION_COOKIE}=${expired}` }))).toBeUndefined();
    // Another token's session is not ours (rotating CONSOLE_TOKEN logs everyone out).
    const other = makeConsoleAuth(`${TOKEN}-rotated`).newSession(now);
    expect(auth.check(requestWith({ cookie: `${SESSION_COOKIE}=${other}` }))).toBeUndefined();
  });

  it('reads one cookie from a Cookie header', () => {
    expect(readCookie('a=1; bu_console=x.y ; b=2', 'bu_console')).toBe('x.y');
    expect(readCookie('xbu_console=1', 'bu_console')).toBeUndefined();
    expect(readCookie(undefined, 'bu_console')).toBeUndefined();
  });
});

describe('safeFileName', () => {
  it.each([
    ['chats.csv', 'chats.csv'],
    ['../../etc/passwd', 'passwd'],
    ['C:\\Users\\me\\Q4 export (1).csv', 'Q4 export (1).csv'],
    ['<script>.csv', '_script_.csv'],
    ['.hidden', 'hidden'],
    ['', 'upload.csv'],
    [undefined, 'upload.csv'],
  ])('%p → %p', (raw, safe) => {
    expect(safeFileName(raw)).toBe(safe);
  });
});

describe('batchView', () => {
  const batch = (status: string, failed: number): BatchRecord =>
    ({
      id: 'b',
      status,
      done: 5,
      counts: { rows: 10, valid: 10, rejected: 0, duplicates: 0, succeeded: 5 - failed, failed, cancelled: 0 },
      startedAt: Date.now() - 5000,
    }) as never;

  it.each([
    ['running', 0, ['pause', 'cancel'], false],
    ['paused', 0, ['resume', 'cancel'], false],
    ['stopped', 0, ['resume', 'cancel'], true],
    ['finished', 2, ['rerun'], true],
    ['finished', 0, [], true],
    ['finalizing', 0, [], false],
  ])('%s with %d failed offers %p', (status, failed, actions, reportReady) => {
    expect(batchView(batch(status as string, failed as number))).toMatchObject({ actions, reportReady, pending: 5 });
  });
});
