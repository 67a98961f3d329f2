/**
 * Decoders of what we read back from Redis (src/store/codecs.ts; the schedule values in src/schedule/store.ts):
 * each takes what this build writes and refuses anything else with a DataLayoutError naming the key and field.
 * JSON members named like Object.prototype's own (`__proto__`, `constructor`) stay plain data.
 */
import { describe, expect, it } from '@jest/globals';

import { DataLayoutError } from '../../src/domain/errors.js';
import {
  type BatchRecord,
  type ChatResult,
  decodeBatchHash,
  decodeRejectedRow,
  decodeResult,
  decodeStoredChat,
  decodeStringArray,
  encodeResult,
  hashField,
} from '../../src/store/codecs.js';
import { checkDataLayout, DATA_LAYOUT_VERSION } from '../../src/store/layout.js';
import { makeKeys } from '../../src/store/keys.js';
import { decodeScheduleDefinition, decodeScheduleRun, decodeWaitingRun } from '../../src/schedule/store.js';

/** Runs `decode` and returns the DataLayoutError's message (fails the test if it did not throw one). */
function layoutError(decode: () => unknown): string {
  try {
    decode();
  } catch (error) {
    expect(error).toBeInstanceOf(DataLayoutError);
    expect((error as DataLayoutError).code).toBe('ERR_DATA_LAYOUT');
    return (error as Error).message;
  }
  throw new Error('expected a DataLayoutError, nothing was thrown');
}

/** Nothing a decoder did may have reached Object.prototype. */
function expectPrototypeClean(): void {
  const probe: Record<string, unknown> = {};
  expect(probe.polluted).toBeUndefined();
  expect(probe.line).toBeUndefined();
  expect(Object.keys(Object.prototype)).toEqual([]);
}

const KEY = '{bu}:batch:20261125-020000-abcdef';

describe('decodeBatchHash', () => {
  const FULL: Record<string, string> = {
    id: 'b1',
    name: 'nightly-2026-11-25',
    kind: 'nightly',
    source: 'GET /chats',
    sha256: 'ab12',
    createdAt: '1764030000000',
    startedAt: '1764030000100',
    finishedAt: '1764030009000',
    status: 'finished',
    reason: '',
    parent: 'b0',
    children: 'c1,c2',
    dryRun: '0',
    header: '["phone","waba"]',
    notes: '["a note"]',
    createdBy: 'alice',
    rows: '10',
    valid: '8',
    rejected: '1',
    duplicates: '1',
    succeeded: '6',
    failed: '2',
    cancelled: '0',
    done: '8',
    attempts: '9',
    rateLimited: '3',
    'reason:HTTP 422': '2',
  };

  it('decodes a full batch hash', () => {
    const expected: BatchRecord = {
      id: 'b1',
      name: 'nightly-2026-11-25',
      kind: 'nightly',
      source: 'GET /chats',
      sha256: 'ab12',
      createdAt: 1764030000000,
      createdBy: 'alice',
      startedAt: 1764030000100,
      finishedAt: 1764030009000,
      status: 'finished',
      reason: '',
      parent: 'b0',
      children: ['c1', 'c2'],
      dryRun: false,
      action: 'unassign',
      captureAssignees: false,
      header: ['phone', 'waba'],
      notes: ['a note'],
      sample: [],
      counts: { rows: 10, valid: 8, rejected: 1, duplicates: 1, succeeded: 6, failed: 2, cancelled: 0, skipped: 0 },
      done: 8,
      attempts: 9,
      rateLimited: 3,
      reasons: { 'HTTP 422': 2 },
    };
    expect(decodeBatchHash(FULL, KEY)).toEqual(expected);
  });

  it('reads children and notes from their lists, after those of a batch written before the lists (hash fields)', () => {
    const { children: _c, notes: _n, ...current } = FULL;
    expect(decodeBatchHash(current, KEY, { children: ['c1', 'c2'], notes: ['a note', 'n2'] })).toMatchObject({
      children: ['c1', 'c2'],
      notes: ['a note', 'n2'],
    });
    expect(decodeBatchHash(FULL, KEY, { children: ['c3'], notes: ['n2'] })).toMatchObject({ children: ['c1', 'c2', 'c3'], notes: ['a note', 'n2'] });
    expect(decodeBatchHash(current, KEY)).toMatchObject({ children: [], notes: [] });
  });

  it('reads absent fields as their zero values (a late HINCRBY can leave a partial hash)', () => {
    const batch = decodeBatchHash({ rateLimited: '1' }, KEY);
    expect(batch).toMatchObject({ id: '', kind: 'csv', status: 'ingesting', header: [], notes: [], children: [], dryRun: false, rateLimited: 1, reasons: {} });
    expect(batch.counts).toEqual({ rows: 0, valid: 0, rejected: 0, duplicates: 0, succeeded: 0, failed: 0, cancelled: 0, skipped: 0 });
    expect('startedAt' in batch || 'finishedAt' in batch || 'parent' in batch).toBe(false);
    const emptied = decodeBatchHash({ ...FULL, dryRun: '1', rows: '', startedAt: '' }, KEY);
    expect(emptied).toMatchObject({ dryRun: true, counts: { rows: 0 } });
    expect('startedAt' in emptied).toBe(false);
  });

  it('keeps a failure reason named __proto__ as data', () => {
    const batch = decodeBatchHash({ ...FULL, 'reason:__proto__': '4', 'reason:constructor': '1' }, KEY);
    expect(Object.getPrototypeOf(batch.reasons)).toBe(Object.prototype);
    expect(Object.entries(batch.reasons)).toEqual([
      ['HTTP 422', 2],
      ['__proto__', 4],
      ['constructor', 1],
    ]);
    expectPrototypeClean();
  });

  const BAD: readonly [string, Record<string, string>, string][] = [
    ['a status this build does not know', { status: 'runnin' }, 'field "status": expected a batch status, got "runnin"'],
    ['a kind this build does not know', { kind: 'xml' }, 'field "kind": expected csv, rerun, nightly or restore, got "xml"'],
    ['a counter that is not a number', { rows: '12abc' }, 'field "rows": expected a number, got "12abc"'],
    ['a time that is not a number', { createdAt: 'yesterday' }, 'field "createdAt": expected a number'],
    ['a reason tally that is not a number', { 'reason:HTTP 500': 'x' }, 'field "reason:HTTP 500": expected a number'],
    ['dryRun neither 0 nor 1', { dryRun: 'true' }, 'field "dryRun": expected 0 or 1, got "true"'],
    ['a header that is not JSON', { header: 'phone,waba' }, 'field "header": expected JSON'],
    ['a header that is not an array', { header: '{"0":"phone"}' }, 'field "header": expected an array of strings, got an object'],
    ['a header with a number in it', { header: '["phone",7]' }, 'field "header"[1]: expected a string, got number 7'],
    ['notes that are a string', { notes: '"a note"' }, 'field "notes": expected an array of strings'],
  ];
  it.each(BAD)('refuses %s', (_name, fields, message) => {
    const text = layoutError(() => decodeBatchHash({ ...FULL, ...fields }, KEY));
    expect(text).toContain(`${KEY} field`);
    expect(text).toContain(message);
  });
});

describe('decodeResult', () => {
  const GOOD: readonly [string, ChatResult][] = [
    ['S|201|1|1764030000000|84||', { state: 'succeeded', httpStatus: 201, attempts: 1, finishedAt: 1764030000000, latencyMs: 84, reason: '' }],
    [
      'F|422|1|5|3.5|permanent|bad number',
      { state: 'failed', httpStatus: 422, attempts: 1, finishedAt: 5, latencyMs: 3.5, failureClass: 'permanent', reason: 'bad number' },
    ],
    [
      'F|0|3|5|0|transient|timeout|after 3 tries',
      { state: 'failed', httpStatus: 0, attempts: 3, finishedAt: 5, latencyMs: 0, failureClass: 'transient', reason: 'timeout|after 3 tries' },
    ],
    ['C|0|0|5|0||batch cancelled', { state: 'cancelled', httpStatus: 0, attempts: 0, finishedAt: 5, latencyMs: 0, reason: 'batch cancelled' }],
  ];
  it.each(GOOD)('decodes %j', (text, result) => {
    expect(decodeResult(text)).toEqual(result);
  });

  it('round-trips what encodeResult writes', () => {
    for (const [, result] of GOOD) expect(decodeResult(encodeResult(result))).toEqual({ ...result, reason: result.reason.replace(/\|/g, ' ') });
  });

  const BAD: readonly [string, string, string][] = [
    ['an empty string', '', 'expected a result record of 7 |-separated parts'],
    ['too few parts', 'S|201|1|5', 'expected a result record of 7 |-separated parts'],
    ['an unknown state code', 'X|201|1|5|0||', '(state): expected S, F, C or K, got "X"'],
    ['a state code that is an Object.prototype member', 'constructor|201|1|5|0||', '(state): expected S, F, C or K'],
    ['an http status that is not an integer', 'S|2o1|1|5|0||', '(http status): expected an integer, got "2o1"'],
    ['attempts that are empty', 'S|201||5|0||', '(attempts): expected an integer, got ""'],
    ['a finish time that is not a number', 'S|201|1|soon|0||', '(finished at): expected a number'],
    ['a latency that is not a number', 'S|201|1|5|NaN||', '(latency): expected a number'],
    ['an unknown failure class', 'F|500|1|5|0|fatal|boom', '(failure class): expected permanent, transient or nothing, got "fatal"'],
  ];
  it.each(BAD)('refuses %s', (_name, text, message) => {
    const where = hashField(`${KEY}:results`, 'p:919812345678@919000000000');
    const error = layoutError(() => decodeResult(text, where));
    expect(error).toContain(where);
    expect(error).toContain(message);
  });
});

describe('decodeStoredChat', () => {
  const WHERE = hashField(`${KEY}:chats`, 'g:grp-1');

  it('decodes a stored row', () => {
    expect(decodeStoredChat('{"line":7,"cells":{"phone":"9198","waba":"9190"}}', WHERE)).toEqual({ line: 7, cells: { phone: '9198', waba: '9190' } });
  });

  it('keeps a __proto__ cell as a cell, and does not read a member through a __proto__ member', () => {
    const chat = decodeStoredChat('{"line":2,"cells":{"__proto__":"x","constructor":"y"}}', WHERE);
    expect(Object.getPrototypeOf(chat.cells)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(chat.cells, '__proto__')?.value).toBe('x');
    expect(chat.cells.constructor).toBe('y');
    expect(layoutError(() => decodeStoredChat('{"__proto__":{"line":3},"cells":{}}', WHERE))).toContain('member "line": expected an integer, got nothing');
    expect(layoutError(() => decodeStoredChat('{"line":1,"cells":{"__proto__":{"polluted":1}}}', WHERE))).toContain(
      'member "cells" member "__proto__": expected a string, got an object',
    );
    expectPrototypeClean();
  });

  it('does not take an inherited member for a missing one', () => {
    expect(layoutError(() => decodeStoredChat('{"line":1}', WHERE))).toContain('member "cells": expected an object of strings, got nothing');
  });

  const BAD: readonly [string, string, string][] = [
    ['not JSON', '{line:1}', 'expected JSON'],
    ['an array', '[1,{}]', 'expected a JSON object, got an array'],
    ['null', 'null', 'expected a JSON object, got null'],
    ['a line that is a string', '{"line":"7","cells":{}}', 'member "line": expected an integer, got "7"'],
    ['a fractional line', '{"line":1.5,"cells":{}}', 'member "line": expected an integer, got number 1.5'],
    ['cells that are an array', '{"line":1,"cells":["a"]}', 'member "cells": expected an object of strings, got an array'],
    ['a cell that is a number', '{"line":1,"cells":{"phone":919}}', 'member "cells" member "phone": expected a string, got number 919'],
  ];
  it.each(BAD)('refuses %s', (_name, text, message) => {
    const error = layoutError(() => decodeStoredChat(text, WHERE));
    expect(error).toContain(WHERE);
    expect(error).toContain(message);
  });
});

describe('decodeRejectedRow', () => {
  const WHERE = `${KEY}:rejected[4]`;

  it.each([
    [
      'with a column',
      '{"line":3,"raw":"12","reason":"too short","cells":{"phone":"12"},"column":"phone"}',
      { line: 3, raw: '12', column: 'phone', reason: 'too short', cells: { phone: '12' } },
    ],
    ['without a column', '{"line":4,"raw":"","reason":"empty row","cells":{}}', { line: 4, raw: '', reason: 'empty row', cells: {} }],
  ])('decodes a row %s', (_name, text, row) => {
    expect(decodeRejectedRow(text, WHERE)).toEqual(row);
  });

  it('drops members this build does not write and keeps __proto__ cells as data', () => {
    const row = decodeRejectedRow('{"line":1,"raw":"x","reason":"r","cells":{"__proto__":"p"},"extra":1,"__proto__":{"polluted":true}}', WHERE);
    expect(Object.keys(row)).toEqual(['line', 'raw', 'reason', 'cells']);
    expect(Object.getOwnPropertyDescriptor(row.cells, '__proto__')?.value).toBe('p');
    expectPrototypeClean();
  });

  const BAD: readonly [string, string, string][] = [
    ['a missing reason', '{"line":1,"raw":"x","cells":{}}', 'member "reason": expected a string, got nothing'],
    ['a raw value that is a number', '{"line":1,"raw":12,"reason":"r","cells":{}}', 'member "raw": expected a string, got number 12'],
    ['a column that is null', '{"line":1,"raw":"x","reason":"r","cells":{},"column":null}', 'member "column": expected a string, got null'],
    ['a negative-looking line that is text', '{"line":"-1","raw":"x","reason":"r","cells":{}}', 'member "line": expected an integer'],
    ['a JSON string', '"line 1: bad"', 'expected a JSON object, got "line 1: bad"'],
  ];
  it.each(BAD)('refuses %s', (_name, text, message) => {
    const error = layoutError(() => decodeRejectedRow(text, WHERE));
    expect(error).toContain(WHERE);
    expect(error).toContain(message);
  });
});

describe('schedule values', () => {
  const WHERE = hashField('{bu}:schedules', 'nightly');
  const DEFINITION = {
    name: 'nightly',
    cron: '0 2 * * *',
    tz: 'Asia/Kolkata',
    overlap: 'wait',
    query: { chatStatus: 'done', idleHours: 12, tags: ['vip'], agent: '919811111111', wabaNumbers: ['919000000000'] },
    inbox: { dir: '/srv/inbox', defaultWaba: '919000000000' },
    createdAt: 1,
    updatedAt: 2,
  };
  const RUN = { tick: 10, manual: false, startedAt: 11, endedAt: 12, outcome: 'dry-run', batchIds: ['b1'], message: '1 batch' };

  it('decodes a definition, a run and a waiting run as written', () => {
    expect(decodeScheduleDefinition(JSON.stringify(DEFINITION), WHERE)).toEqual(DEFINITION);
    const { query: _q, inbox: _i, ...bare } = DEFINITION;
    expect(decodeScheduleDefinition(JSON.stringify({ ...bare, query: {} }), WHERE)).toEqual({ ...bare, query: {} });
    expect(decodeScheduleRun(JSON.stringify(RUN), '{bu}:schedule:nightly:runs[0]')).toEqual(RUN);
    expect(decodeWaitingRun('{"jobId":"repeat:schedule-nightly:10","tick":10,"since":11}', WHERE)).toEqual({
      jobId: 'repeat:schedule-nightly:10',
      tick: 10,
      since: 11,
    });
    expect(decodeStringArray('["b1","b2"]', WHERE)).toEqual(['b1', 'b2']);
    expect(decodeStringArray('[]', WHERE)).toEqual([]);
  });

  it('does not let a __proto__ member stand in for a missing one', () => {
    const { cron: _c, ...noCron } = DEFINITION;
    const text = JSON.stringify(noCron).replace('{', '{"__proto__":{"cron":"* * * * *"},');
    expect(layoutError(() => decodeScheduleDefinition(text, WHERE))).toContain('member "cron": expected a string, got nothing');
    expectPrototypeClean();
  });

  const BAD: readonly [string, () => unknown, string][] = [
    [
      'an unknown overlap rule',
      () => decodeScheduleDefinition(JSON.stringify({ ...DEFINITION, overlap: 'queue' }), WHERE),
      'member "overlap": expected skip or wait, got "queue"',
    ],
    [
      'an unknown chat status',
      () => decodeScheduleDefinition(JSON.stringify({ ...DEFINITION, query: { chatStatus: 'closed' } }), WHERE),
      'member "query" member "chatStatus": expected one of all, unread',
    ],
    [
      'tags that are a string',
      () => decodeScheduleDefinition(JSON.stringify({ ...DEFINITION, query: { tags: 'vip' } }), WHERE),
      'member "query" member "tags": expected an array of strings',
    ],
    [
      'idle hours as text',
      () => decodeScheduleDefinition(JSON.stringify({ ...DEFINITION, query: { idleHours: '12' } }), WHERE),
      'member "idleHours": expected a number, got "12"',
    ],
    [
      'an inbox without a folder',
      () => decodeScheduleDefinition(JSON.stringify({ ...DEFINITION, inbox: {} }), WHERE),
      'member "inbox" member "dir": expected a string, got nothing',
    ],
    [
      'a definition missing its times',
      () => decodeScheduleDefinition(JSON.stringify({ ...DEFINITION, updatedAt: undefined }), WHERE),
      'member "updatedAt": expected a number, got nothing',
    ],
    [
      'an unknown run outcome',
      () => decodeScheduleRun(JSON.stringify({ ...RUN, outcome: 'done' }), WHERE),
      'member "outcome": expected started, empty, skipped, failed or dry-run, got "done"',
    ],
    ['manual as a string', () => decodeScheduleRun(JSON.stringify({ ...RUN, manual: 'no' }), WHERE), 'member "manual": expected true or false, got "no"'],
    [
      'batch ids with a number',
      () => decodeScheduleRun(JSON.stringify({ ...RUN, batchIds: ['b1', 2] }), WHERE),
      'member "batchIds"[1]: expected a string, got number 2',
    ],
    ['a waiting run without a job id', () => decodeWaitingRun('{"tick":10,"since":11}', WHERE), 'member "jobId": expected a string, got nothing'],
    ['last batch ids that are an object', () => decodeStringArray('{"0":"b1"}', WHERE), 'expected an array of strings, got an object'],
    ['last batch ids that are not JSON', () => decodeStringArray('b1,b2', WHERE), 'expected JSON, got "b1,b2"'],
  ];
  it.each(BAD)('refuses %s', (_name, decode, message) => {
    const error = layoutError(decode);
    expect(error).toContain(WHERE);
    expect(error).toContain(message);
  });
});

describe('checkDataLayout', () => {
  const keys = makeKeys('bu');

  /** Just enough of a connection: SET NX and GET on one in-memory map. */
  function fakeRedis(initial?: string) {
    const data = new Map<string, string>(initial === undefined ? [] : [[keys.layout, initial]]);
    const redis = {
      set: async (key: string, value: string, nx: string) => {
        expect(nx).toBe('NX');
        if (data.has(key)) return null;
        data.set(key, value);
        return 'OK';
      },
      get: async (key: string) => data.get(key) ?? null,
    };
    return { data, redis: redis as unknown as Parameters<typeof checkDataLayout>[0] };
  }

  it('claims an empty prefix for this layout, and accepts it again', async () => {
    const { data, redis } = fakeRedis();
    await checkDataLayout(redis, keys);
    expect(keys.layout).toBe('{bu}:layout');
    expect(data.get(keys.layout)).toBe(String(DATA_LAYOUT_VERSION));
    await checkDataLayout(redis, keys);
  });

  it.each([
    [
      'a newer layout',
      String(DATA_LAYOUT_VERSION + 1),
      `this Redis holds bulk-unassign data layout v${DATA_LAYOUT_VERSION + 1} ({bu}:layout), this build understands v${DATA_LAYOUT_VERSION}: upgrade bulk-unassign`,
    ],
    ['something that is not a version', 'v1', '{bu}:layout holds "v1", not a bulk-unassign data layout version'],
  ])('refuses %s', async (_name, stored, message) => {
    const { redis } = fakeRedis(stored);
    await expect(checkDataLayout(redis, keys)).rejects.toThrow(DataLayoutError);
    await expect(checkDataLayout(redis, keys)).rejects.toThrow(message);
  });
});
