/**
 * Console access control pieces that need no server: session cookies (HMAC, expiry, tampering), cookie
 * parsing, upload file names, and which actions a batch offers.
 */
import { describe, expect, it } from '@jest/globals';

import type { BatchRecord } from '../../src/store/batch-store.js';
import { makeConsoleAuth, readCookie, SESSION_COOKIE, SESSION_TTL_MS } from '../../src/console/auth.js';
import { tokenOperator } from '../../src/console/operators.js';
import { safeFileName } from '../../src/console/upload.js';
import { batchView } from '../../src/app/views.js';

const TOKEN = 'unit-test-token-0123456789';

function requestWith(headers: Record<string, string>) {
  return { headers } as never;
}

describe('makeConsoleAuth', () => {
  const KEY = Buffer.alloc(32, 7);
  const ALICE = 'alice-token-abcdefghijklmnopqrstuvwxyz';
  const operators = [tokenOperator(TOKEN), tokenOperator(ALICE, 'alice.ops')];
  const auth = makeConsoleAuth(() => operators, KEY);

  it('accepts the bearer token of each operator, says whose it is, and accepts nothing like it', () => {
    expect(auth.check(requestWith({ authorization: `Bearer ${TOKEN}` }))).toEqual({ how: 'bearer', operator: 'console' });
    expect(auth.check(requestWith({ authorization: `Bearer ${ALICE}` }))).toEqual({ how: 'bearer', operator: 'alice.ops' });
    for (const header of [`Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, TOKEN, `Basic ${TOKEN}`, 'Bearer ']) {
      expect(auth.check(requestWith({ authorization: header }))).toBeUndefined();
    }
  });

  it('issues sessions that name the operator, hold neither token nor hash, expire, and cannot be forged', () => {
    const now = Date.now();
    const session = auth.newSession('alice.ops', now)!;
    expect(session).not.toContain(ALICE);
    expect(session).not.toContain(operators[1]!.hash.toString('hex'));
    expect(auth.check(requestWith({ cookie: `other=1; ${SESSION_COOKIE}=${session}` }))).toEqual({ how: 'cookie', operator: 'alice.ops' });
    const macAt = session.lastIndexOf('.');
    const [expiry, mac] = [session.slice('alice.ops.'.length, macAt), session.slice(macAt + 1)];
    const tampered = [
      `alice.ops.${Number(expiry) + 1}.${mac}`,
      `alice.ops.${expiry}.${mac.slice(0, -2)}AA`,
      `console.${expiry}.${mac}`, // another operator's name on alice's session
      `alice.ops.${expiry}`,
      '',
      `alice.ops.abc.${mac}`,
      `.${expiry}.${mac}`,
    ];
    for (const value of tampered) expect(auth.check(requestWith({ cookie: `${SESSION_COOKIE}=${value}` }))).toBeUndefined();
    const expired = auth.newSession('alice.ops', now - SESSION_TTL_MS - 1000);
    expect(auth.check(requestWith({ cookie: `${SESSION_COOKIE}=${expired}` }))).toBeUndefined();
    expect(auth.newSession('nobody', now)).toBeUndefined();
  });

  it('a rotated token, a removed operator or another session key ends the session', () => {
    const session = auth.newSession('alice.ops')!;
    const cookie = requestWith({ cookie: `${SESSION_COOKIE}=${session}` });
    expect(makeConsoleAuth(() => [tokenOperator(TOKEN), tokenOperator(`${ALICE}-rotated`, 'alice.ops')], KEY).check(cookie)).toBeUndefined();
    expect(makeConsoleAuth(() => [tokenOperator(TOKEN)], KEY).check(cookie)).toBeUndefined();
    expect(makeConsoleAuth(() => operators, Buffer.alloc(32, 8)).check(cookie)).toBeUndefined();
    expect(makeConsoleAuth(() => operators, KEY).check(cookie)).toEqual({ how: 'cookie', operator: 'alice.ops' });
  });

  it('identifies a token against every operator and knows operators by name', () => {
    expect(auth.identify(ALICE)).toBe('alice.ops');
    expect(auth.identify(TOKEN)).toBe('console');
    expect(auth.identify(`${ALICE} `)).toBeUndefined();
    expect(auth.knows('alice.ops')).toBe(true);
    expect(auth.knows('constructor')).toBe(false);
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
