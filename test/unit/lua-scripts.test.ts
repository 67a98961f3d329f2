/**
 * The Lua steps as files (src/store/lua/<name>-<numberOfKeys>.lua, read by src/store/script-loader.ts) and their
 * typed calls (src/store/scripts.ts). No Redis: the files are checked as text, and the typed calls against a
 * stand-in connection that records what would be sent and answers what a test wants.
 */
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { describe, expect, it } from '@jest/globals';

import { DataLayoutError } from '../../src/domain/errors.js';
import { luaLifecyclePrelude } from '../../src/domain/lifecycle.js';
import { makeKeys } from '../../src/store/keys.js';
import { LIFECYCLE_INCLUDE, loadScript, loadScripts, luaDir } from '../../src/store/script-loader.js';
import {
  appendNote,
  claimChat,
  claimChatCounted,
  claimSource,
  createChild,
  defineScripts,
  hdelIfEquals,
  ownedLock,
  pacerAdmit,
  pacerPause,
  pacerReserve,
  rateLimited,
  recordResult,
  releaseClaim,
  SCRIPT_KEYS,
  SCRIPTS,
  type ScriptedRedis,
  stageRows,
  transitionStatus,
} from '../../src/store/scripts.js';

const DIR = luaDir();
const FILES = readdirSync(DIR)
  .filter((f) => f.endsWith('.lua'))
  .sort();
const INCLUDE_FILES = readdirSync(new URL('includes/', DIR))
  .filter((f) => f.endsWith('.lua'))
  .sort();
const scripts = loadScripts();

/** Lua without its comments (`--[[ … ]]` blocks and `-- …` lines). */
const code = (lua: string): string => lua.replace(/--\[(=*)\[[\s\S]*?\]\1\]/g, '').replace(/--[^\n]*/g, '');

describe('Lua script files', () => {
  it('are read from src/store/lua/ when running from source', () => {
    expect(DIR.pathname).toMatch(/\/src\/store\/lua\/$/);
  });

  it('every file is loaded, and every script in SCRIPT_KEYS has its file', () => {
    expect(scripts.map((s) => `${s.name}-${s.numberOfKeys}.lua`)).toEqual(FILES);
    expect(
      Object.entries(SCRIPT_KEYS)
        .map(([name, n]) => `${name}-${n}.lua`)
        .sort(),
    ).toEqual(FILES);
    expect(SCRIPTS.map((s) => s.name)).toEqual(scripts.map((s) => s.name));
  });

  it.each(scripts.map((s) => [s.name, s] as const))('%s opens with a header naming it and documenting KEYS, ARGV and output', (_name, script) => {
    const header = /^--\[\[\n([\s\S]*?)\n\]\]\n/.exec(script.source)?.[1];
    expect(header).toBeDefined();
    expect(header).toMatch(new RegExp(`^  ${script.name}-${script.numberOfKeys}\\b`));
    expect(header).toMatch(/KEYS\[1\]/);
    expect(header).toMatch(/ARGV/);
    expect(header).toMatch(/Output: /);
  });

  it.each(scripts.map((s) => [s.name, s] as const))('%s uses exactly the keys its file name declares', (_name, script) => {
    const used = [...code(script.lua).matchAll(/KEYS\[(\d+)\]/g)].map((m) => Number(m[1]));
    expect(Math.max(...used)).toBe(script.numberOfKeys);
  });

  it.each(scripts.map((s) => [s.name, s] as const))('%s has every include expanded', (_name, script) => {
    expect(script.lua).not.toMatch(/--@include/);
    for (const name of script.includes.filter((n) => n !== LIFECYCLE_INCLUDE)) {
      expect(INCLUDE_FILES).toContain(`${name}.lua`);
    }
  });

  it('the scripts that decide on a batch status start from the lifecycle prelude, and only they use LIFECYCLE', () => {
    const prelude = luaLifecyclePrelude();
    const flagged = scripts.filter((s) => s.includes.includes(LIFECYCLE_INCLUDE)).map((s) => s.name);
    expect(flagged.sort()).toEqual(['claimChat', 'recordResult']);
    for (const script of scripts) {
      const flaggedHere = flagged.includes(script.name);
      expect(script.lua.includes(prelude)).toBe(flaggedHere);
      expect(/\bLIFECYCLE\./.test(code(script.source))).toBe(flaggedHere);
    }
  });

  it('every include file is used, and the pacer scripts share the pacer state', () => {
    const used = new Set(scripts.flatMap((s) => s.includes));
    expect(INCLUDE_FILES.map((f) => f.replace(/\.lua$/, '')).filter((name) => !used.has(name))).toEqual([]);
    const withState = scripts.filter((s) => s.includes.includes('pacerState')).map((s) => s.name);
    expect(withState.sort()).toEqual(['pacerPause', 'pacerPausedFor', 'pacerReserve', 'pacerReserveRate']);
    for (const name of withState) expect(scripts.find((s) => s.name === name)?.lua).toContain('local function readPacer(key)');
  });

  it('refuses a misnamed file, an unknown include and an include used twice', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lua-'));
    const url = new URL(`${pathToFileURL(dir).href}/`);
    writeFileSync(join(dir, 'noKeys.lua'), 'return 1');
    writeFileSync(join(dir, 'unknown-1.lua'), '--@include nowhere\nreturn 1');
    writeFileSync(join(dir, 'twice-1.lua'), `--@include ${LIFECYCLE_INCLUDE}\n--@include ${LIFECYCLE_INCLUDE}\nreturn 1`);
    expect(() => loadScript('noKeys.lua', url)).toThrow(/named <name>-<numberOfKeys>\.lua/);
    expect(() => loadScript('unknown-1.lua', url)).toThrow(/include nowhere not found/);
    expect(() => loadScript('twice-1.lua', url)).toThrow(/includes lifecycle twice/);
  });
});

/** A stand-in connection: defineCommand is recorded, and each script command answers from `replies`. */
function fakeConnection(replies: Partial<Record<keyof typeof SCRIPT_KEYS, unknown>> = {}) {
  const defined: { name: string; numberOfKeys: number; lua: string }[] = [];
  const sent: { name: string; args: string[] }[] = [];
  const connection: Record<string, unknown> = {
    defineCommand(name: string, def: { numberOfKeys: number; lua: string }) {
      defined.push({ name, ...def });
      connection[name] = async (...args: string[]) => {
        sent.push({ name, args });
        return replies[name as keyof typeof SCRIPT_KEYS];
      };
    },
  };
  const redis = defineScripts(connection as unknown as Parameters<typeof defineScripts>[0]);
  return { redis: redis as ScriptedRedis, defined, sent };
}

describe('hdelIfEquals', () => {
  it('sends the hash, the field and the value read, and answers whether the field was deleted', async () => {
    const { redis, sent } = fakeConnection({ hdelIfEquals: 1 });
    expect(await hdelIfEquals(redis, '{bu}:schedule-state', 'waiting:n', '{"jobId":"j1"}')).toBe(true);
    expect(sent).toEqual([{ name: 'hdelIfEquals', args: ['{bu}:schedule-state', 'waiting:n', '{"jobId":"j1"}'] }]);
    expect(await hdelIfEquals(fakeConnection({ hdelIfEquals: 0 }).redis, 'h', 'f', 'v')).toBe(false);
    await expect(hdelIfEquals(fakeConnection({ hdelIfEquals: 'OK' }).redis, 'h', 'f', 'v')).rejects.toBeInstanceOf(DataLayoutError);
  });
});

describe('defineScripts', () => {
  it('registers every file under its name with the number of keys its file name declares, once', () => {
    const { redis, defined } = fakeConnection();
    expect(defined.map((d) => `${d.name}-${d.numberOfKeys}.lua`).sort()).toEqual(FILES);
    for (const d of defined) expect(d.lua).toBe(scripts.find((s) => s.name === d.name)?.lua);
    defineScripts(redis);
    expect(defined).toHaveLength(FILES.length);
  });
});

describe('typed script calls', () => {
  const k = makeKeys('bu').batch('b1');

  it('send keys and arguments in the order each script documents', async () => {
    const { redis, sent } = fakeConnection({
      stageRows: [1, 0],
      claimChat: 'go',
      recordResult: 0,
      transitionStatus: 'running',
      ownedLock: 1,
      pacerReserve: 0,
      pacerPause: 1,
      pacerAdmit: 0,
      rateLimited: [1000, 61_000],
    });
    expect(
      await stageRows(redis, k, [
        { chatKey: 'g:a', input: '{"line":1}' },
        { chatKey: 'g:a', input: '{"line":2}' },
      ]),
    ).toEqual(['staged', 'duplicate']);
    expect(await claimChat(redis, k, 'g:a')).toBe('go');
    expect(await recordResult(redis, k, { chatKey: 'g:a', record: 'S|201|1|5|84||', counter: 'succeeded', attempts: 1, latencyBucket: 90, now: 5 })).toBe(
      'recorded',
    );
    expect(await transitionStatus(redis, k.batch, { to: 'paused', reason: 'paused by operator', from: ['running'] })).toBe('running');
    expect(await ownedLock(redis, '{bu}:schedule:n:lock', { action: 'acquire', owner: 'job-1', ttlMs: 120_000 })).toBe(true);
    expect(await pacerReserve(redis, '{bu}:pacer', 20_400)).toBe(0);
    await pacerPause(redis, '{bu}:pacer', 1_000_000);
    expect(await pacerAdmit(redis, '{bu}:pacer:log', { windowUs: 1_020_000, max: 50, member: 'm-1' })).toBe(0);
    expect(await rateLimited(redis, k, { chatKey: 'g:a', now: 2000, pauseMs: 1500.2, maxRunMs: 60_000, gapMs: 60_000, runningStatus: 'running' })).toEqual({
      since: 1000,
      pauseUntil: 61_000,
    });
    expect(sent).toEqual([
      { name: 'stageRows', args: [k.chats, k.order, 'g:a', '{"line":1}', 'g:a', '{"line":2}'] },
      { name: 'claimChat', args: [k.batch, k.results, k.parked, k.calls, 'g:a', ''] },
      { name: 'recordResult', args: [k.batch, k.results, k.chats, k.latency, k.parked, k.calls, 'g:a', 'S|201|1|5|84||', 'succeeded', '1', '90', '', '5'] },
      { name: 'transitionStatus', args: [k.batch, 'paused', 'paused by operator', 'running'] },
      { name: 'ownedLock', args: ['{bu}:schedule:n:lock', 'acquire', 'job-1', '120000'] },
      { name: 'pacerReserve', args: ['{bu}:pacer', '20400'] },
      { name: 'pacerPause', args: ['{bu}:pacer', '1000000'] },
      { name: 'pacerAdmit', args: ['{bu}:pacer:log', '1020000', '50', 'm-1'] },
      { name: 'rateLimited', args: [k.batch, k.calls, 'g:a', '2000', '1501', '60000', '60000', 'running'] },
    ]);
  });

  it('claimChatCounted asks the claim to count the call, and answers the count on go, the outcome otherwise', async () => {
    const counted = fakeConnection({ claimChat: 3 });
    expect(await claimChatCounted(counted.redis, k, 'g:a')).toBe(3);
    expect(counted.sent).toEqual([{ name: 'claimChat', args: [k.batch, k.results, k.parked, k.calls, 'g:a', '1'] }]);
    for (const outcome of ['done', 'parked', 'cancel', 'gone'] as const) {
      expect(await claimChatCounted(fakeConnection({ claimChat: outcome }).redis, k, 'g:a')).toBe(outcome);
    }
  });

  it('map the documented replies', async () => {
    const outcomes = async (reply: unknown) =>
      recordResult(fakeConnection({ recordResult: reply }).redis, k, {
        chatKey: 'g:a',
        record: 'x',
        counter: 'failed',
        attempts: 2,
        failureReason: 'HTTP 422',
        now: 1,
      });
    expect([await outcomes(-1), await outcomes(0), await outcomes(1)]).toEqual(['duplicate', 'recorded', 'last']);
    expect(await transitionStatus(fakeConnection({ transitionStatus: null }).redis, k.batch, { to: 'paused', reason: '', from: ['running'] })).toBeUndefined();
    expect(await ownedLock(fakeConnection({ ownedLock: 0 }).redis, 'lock', { action: 'extend', owner: 'o', ttlMs: 1 })).toBe(false);
    expect(await stageRows(fakeConnection().redis, k, [])).toEqual([]);
    const run = { chatKey: 'g:a', now: 2000, pauseMs: 1000, maxRunMs: 0, gapMs: 60_000, runningStatus: 'running' } as const;
    expect(await rateLimited(fakeConnection({ rateLimited: [0, 3000] }).redis, k, run)).toEqual({ since: undefined, pauseUntil: 3000 });
  });

  it('claims, releases, creates a rerun and appends a note with the documented keys, arguments and replies', async () => {
    const parent = makeKeys('bu').batch('p1');
    const { redis, sent } = fakeConnection({ claimSource: '', releaseClaim: 1, createChild: 'c0', appendNote: 1 });
    expect(await claimSource(redis, '{bu}:source:abc', { batchId: 'b1', ttlSeconds: 86_400, goneHolder: 'b0' })).toEqual({ claimed: true });
    expect(await releaseClaim(redis, '{bu}:source:abc', 'b1')).toBe(true);
    const child = { childId: 'b1', createdAt: 5, previous: '', fields: { id: 'b1', parent: 'p1', dryRun: 0 }, notes: ['n1', 'n2'] };
    expect(await createChild(redis, { child: k, parent, batchIndex: '{bu}:batches' }, child)).toEqual({ claimed: false, holder: 'c0' });
    expect(await appendNote(redis, k, 'a note')).toBe(true);
    expect(sent).toEqual([
      { name: 'claimSource', args: ['{bu}:source:abc', 'b1', '86400', 'b0'] },
      { name: 'releaseClaim', args: ['{bu}:source:abc', 'b1'] },
      {
        name: 'createChild',
        args: [
          k.batch,
          k.notes,
          '{bu}:batches',
          parent.batch,
          parent.children,
          parent.rerun,
          'b1',
          '5',
          '',
          '3',
          'id',
          'b1',
          'parent',
          'p1',
          'dryRun',
          '0',
          'n1',
          'n2',
        ],
      },
      { name: 'appendNote', args: [k.notes, k.batch, 'a note'] },
    ]);
    expect(await claimSource(fakeConnection({ claimSource: 'b0' }).redis, 's', { batchId: 'b1', ttlSeconds: 1, goneHolder: '' })).toEqual({
      claimed: false,
      holder: 'b0',
    });
    expect(await releaseClaim(fakeConnection({ releaseClaim: 0 }).redis, 's', 'b1')).toBe(false);
    expect(await createChild(fakeConnection({ createChild: '' }).redis, { child: k, parent, batchIndex: 'i' }, child)).toEqual({ claimed: true });
    expect(await appendNote(fakeConnection({ appendNote: 0 }).redis, k, 'x')).toBe(false);
  });

  const BAD: readonly [string, () => Promise<unknown>][] = [
    ['claimSource', () => claimSource(fakeConnection({ claimSource: 1 }).redis, 's', { batchId: 'b1', ttlSeconds: 1, goneHolder: '' })],
    ['releaseClaim', () => releaseClaim(fakeConnection({ releaseClaim: 'OK' }).redis, 's', 'b1')],
    [
      'createChild',
      () =>
        createChild(
          fakeConnection({ createChild: null }).redis,
          { child: k, parent: k, batchIndex: 'i' },
          { childId: 'c', createdAt: 1, previous: '', fields: {}, notes: [] },
        ),
    ],
    ['appendNote', () => appendNote(fakeConnection({ appendNote: 2 }).redis, k, 'x')],
    ['claimChat', () => claimChat(fakeConnection({ claimChat: 'maybe' }).redis, k, 'g:a')],
    ['claimChat', () => claimChat(fakeConnection({ claimChat: '__proto__' }).redis, k, 'g:a')],
    ['claimChat', () => claimChat(fakeConnection({ claimChat: 1 }).redis, k, 'g:a')],
    ['claimChat', () => claimChatCounted(fakeConnection({ claimChat: 'go' }).redis, k, 'g:a')],
    ['claimChat', () => claimChatCounted(fakeConnection({ claimChat: 0 }).redis, k, 'g:a')],
    ['claimChat', () => claimChatCounted(fakeConnection({ claimChat: 1.5 }).redis, k, 'g:a')],
    ['recordResult', () => recordResult(fakeConnection({ recordResult: 2 }).redis, k, { chatKey: 'g:a', record: 'x', counter: 'failed', attempts: 1, now: 1 })],
    [
      'transitionStatus',
      () => transitionStatus(fakeConnection({ transitionStatus: 'runnin' }).redis, k.batch, { to: 'paused', reason: '', from: ['running'] }),
    ],
    [
      'stageRows',
      () =>
        stageRows(fakeConnection({ stageRows: [1] }).redis, k, [
          { chatKey: 'a', input: '{}' },
          { chatKey: 'b', input: '{}' },
        ]),
    ],
    ['stageRows', () => stageRows(fakeConnection({ stageRows: [2] }).redis, k, [{ chatKey: 'a', input: '{}' }])],
    ['ownedLock', () => ownedLock(fakeConnection({ ownedLock: 'OK' }).redis, 'lock', { action: 'acquire', owner: 'o', ttlMs: 1 })],
    ['pacerReserve', () => pacerReserve(fakeConnection({ pacerReserve: -5 }).redis, 'p', 1)],
    ['pacerAdmit', () => pacerAdmit(fakeConnection({ pacerAdmit: '12' }).redis, 'p:log', { windowUs: 1, max: 1, member: 'm' })],
    ['pacerPause', () => pacerPause(fakeConnection({ pacerPause: 0 }).redis, 'p', 1)],
    [
      'rateLimited',
      () => rateLimited(fakeConnection({ rateLimited: [1] }).redis, k, { chatKey: 'g:a', now: 1, pauseMs: 1, maxRunMs: 0, gapMs: 1, runningStatus: 'running' }),
    ],
    [
      'rateLimited',
      () =>
        rateLimited(fakeConnection({ rateLimited: [1, -2] }).redis, k, { chatKey: 'g:a', now: 1, pauseMs: 1, maxRunMs: 0, gapMs: 1, runningStatus: 'running' }),
    ],
  ];
  it.each(BAD)('an undocumented reply from %s is a DataLayoutError naming the script', async (name, call) => {
    await expect(call()).rejects.toThrow(DataLayoutError);
    await expect(call()).rejects.toThrow(new RegExp(`^Lua script ${name} replied .*\\(lua/${name}-\\d\\.lua\\)$`));
  });
});
