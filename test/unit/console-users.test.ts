/**
 * Named console operators without a server: the users file's format (and its refusals, by line number and
 * never by content), the token hash, the operator list that re-reads the file, and the bound on recorded
 * failed log-ins.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from '@jest/globals';

import { newOperatorToken, operatorNameProblem, parseConsoleUsers, readConsoleUsers, tokenHash } from '../../src/config/console-users.js';
import { resolveConfig } from '../../src/config/config.js';
import { makeOperatorList, tokenOperator } from '../../src/console/operators.js';
import { failedLogins, FAILED_LOGINS_PER_MINUTE } from '../../src/console/auth.js';

const HASH = 'ab'.repeat(32);
const dir = mkdtempSync(join(tmpdir(), 'console-users-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('users file', () => {
  it('reads name:hash lines, skipping blanks and comments', () => {
    expect(parseConsoleUsers(`# operators\n\nalice:${HASH}\r\nbob.ops@x-1:${HASH.toUpperCase()}\n`, 'f')).toEqual([
      { name: 'alice', hash: HASH },
      { name: 'bob.ops@x-1', hash: HASH },
    ]);
  });

  it.each([
    [`alice ${HASH}`, 'line 1', 'no ":"'],
    [`# c\nal ice:${HASH}`, 'line 2', 'not an operator name'],
    [`console:${HASH}`, 'line 1', 'reserved'],
    [`alice:${HASH.slice(1)}`, 'line 1', '64 hex digits'],
    [`alice:${HASH}\nalice:${HASH}`, 'line 2', 'listed twice'],
    [`${'a'.repeat(65)}:${HASH}`, 'line 1', 'not an operator name'],
  ])('refuses %p at %s (%s) without showing the line', (text, line, why) => {
    let message = '';
    try {
      parseConsoleUsers(text, 'the file');
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain(line);
    expect(message).toContain(why);
    expect(message).not.toContain(HASH.slice(0, 20));
  });

  it('CONSOLE_USERS_FILE: an unreadable or malformed file is a ConfigError at start-up', () => {
    expect(() => resolveConfig({}, { CONSOLE_USERS_FILE: join(dir, 'missing') })).toThrow(/Cannot read the console users file .*ENOENT.*console-user add/);
    const bad = join(dir, 'bad');
    writeFileSync(bad, `alice:${HASH}\nbob\n`);
    expect(() => resolveConfig({}, { CONSOLE_USERS_FILE: bad })).toThrow(/line 2/);
    const good = join(dir, 'good');
    writeFileSync(good, `alice:${HASH}\n`);
    expect(resolveConfig({}, { CONSOLE_USERS_FILE: good }).consoleUsersFile).toBe(good);
    expect(readConsoleUsers(good)).toEqual([{ name: 'alice', hash: HASH }]);
  });

  it('tokens are 32 random bytes; the stored hash is their SHA-256', () => {
    const token = newOperatorToken();
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(newOperatorToken()).not.toBe(token);
    expect(tokenHash('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(tokenOperator('abc').hash.toString('hex')).toBe(tokenHash('abc'));
  });

  it.each([
    ['alice', undefined],
    ['a', undefined],
    ['x'.repeat(64), undefined],
    ['x'.repeat(65), 'a name is'],
    ['', 'a name is'],
    ['a:b', 'a name is'],
    ['bulk-unassign', 'reserved'],
    ['unknown', 'reserved'],
  ])('operator name %p', (name, problem) => {
    const found = operatorNameProblem(name);
    if (problem === undefined) expect(found).toBeUndefined();
    else expect(found).toContain(problem);
  });
});

describe('makeOperatorList', () => {
  it('re-reads the file when it changes (at most once a second) and fails closed on a broken file', () => {
    const file = join(dir, 'live');
    writeFileSync(file, `alice:${HASH}\n`);
    let now = 0;
    const errors: string[] = [];
    const list = makeOperatorList({
      token: 'console-token-0123456789',
      usersFile: file,
      now: () => now,
      logger: { info: () => undefined, error: (o: object) => void errors.push(JSON.stringify(o)) } as never,
    });
    const names = (): string[] => list().map((o) => o.name);
    expect(names()).toEqual(['console', 'alice']);
    writeFileSync(file, `alice:${HASH}\nbob:${HASH}\n`);
    now = 500;
    expect(names()).toEqual(['console', 'alice']); // not looked at again yet
    now = 1000;
    expect(names()).toEqual(['console', 'alice', 'bob']);
    writeFileSync(file, `alice:${HASH}\nbob:${HASH}\nmallory ${HASH}\n`);
    now = 2000;
    expect(names()).toEqual(['console']); // none of the file's operators until it is fixed
    expect(errors.join()).toContain('line 3');
    expect(errors.join()).not.toContain(HASH);
    writeFileSync(file, `bob:${HASH}\n`);
    now = 3000;
    expect(names()).toEqual(['console', 'bob']);
  });
});

describe('failedLogins', () => {
  it('records the failures an address makes before it is slowed down, at most FAILED_LOGINS_PER_MINUTE a minute, and counts the rest', () => {
    const recorded: Record<string, string | number>[] = [];
    const fail = failedLogins((d) => recorded.push(d));
    for (let i = 0; i < 1000; i += 1) fail({ from: `10.0.${i >> 8}.${i & 255}` }, false, 1000);
    expect(recorded).toHaveLength(FAILED_LOGINS_PER_MINUTE);
    for (let i = 0; i < 50; i += 1) fail({ from: '10.9.9.9' }, true, 30_000); // slowed down: counted only
    fail({ from: '10.9.9.8' }, false, 61_000);
    expect(recorded).toHaveLength(FAILED_LOGINS_PER_MINUTE + 1);
    expect(recorded.at(-1)).toEqual({ from: '10.9.9.8', unrecorded: 1000 - FAILED_LOGINS_PER_MINUTE + 50 });
    fail({ from: '10.9.9.7' }, false, 61_500);
    expect(recorded.at(-1)).toEqual({ from: '10.9.9.7' });
  });
});
