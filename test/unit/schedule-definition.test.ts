/**
 * `schedule set` flags → definition (schedule-definition.ts): what a schedule needs, and one clear message per
 * bad input.
 */
import { describe, expect, it } from '@jest/globals';

import { UsageError } from '../../src/domain/errors.js';
import { buildDefinition, type ScheduleInput } from '../../src/schedule/definition.js';
import { decodeScheduleDefinition, schedulerIdFor, tickOfJob } from '../../src/schedule/store.js';

const CTX = { cwd: '/srv/bulk', now: 1_000, defaultTz: 'UTC' };
const build = (input: ScheduleInput, name = 'nightly') => buildDefinition(name, input, CTX);

describe('buildDefinition', () => {
  it('a chat rule schedule', () => {
    expect(
      build({ cron: '0  2 * * *', tz: 'Asia/Kolkata', chatStatus: 'done', idleHours: '12', waba: '+91 90000 00000', tag: 'vip, sales', agent: '919811111111' }),
    ).toEqual({
      name: 'nightly',
      cron: '0 2 * * *',
      tz: 'Asia/Kolkata',
      overlap: 'skip',
      query: { chatStatus: 'done', idleHours: 12, tags: ['vip', 'sales'], agent: '919811111111', wabaNumbers: ['919000000000'] },
      createdAt: 1_000,
      updatedAt: 1_000,
    });
  });

  it("an inbox schedule: relative folder resolved, --waba is the files' business number, no chat query", () => {
    expect(build({ cron: '*/10 * * * * *', inbox: 'inbox', waba: '919000000000', overlap: 'wait' })).toEqual({
      name: 'nightly',
      cron: '*/10 * * * * *',
      tz: 'UTC',
      overlap: 'wait',
      inbox: { dir: '/srv/bulk/inbox', defaultWaba: '919000000000' },
      createdAt: 1_000,
      updatedAt: 1_000,
    });
  });

  it('keeps createdAt of the definition it replaces', () => {
    const existing = build({ cron: '0 2 * * *', chatStatus: 'done' });
    expect(buildDefinition('nightly', { cron: '0 3 * * *', chatStatus: 'done' }, { ...CTX, now: 5_000, existing })).toMatchObject({
      createdAt: 1_000,
      updatedAt: 5_000,
      cron: '0 3 * * *',
    });
  });

  const BAD: readonly [string, ScheduleInput, RegExp, string][] = [
    ['no cron', { chatStatus: 'done' }, /needs --cron/, 'nightly'],
    ['cron with 4 fields', { cron: '0 2 * *', chatStatus: 'done' }, /Expected `--cron` to have 5 fields/, 'nightly'],
    [
      'unknown time zone',
      { cron: '0 2 * * *', tz: 'India/Delhi', chatStatus: 'done' },
      /Expected `--tz` to be an IANA time zone .* got `India\/Delhi`/,
      'nightly',
    ],
    [
      'overlap neither skip nor wait',
      { cron: '0 2 * * *', overlap: 'queue', chatStatus: 'done' },
      /Expected `--overlap` to be skip or wait, got `queue`/,
      'nightly',
    ],
    ['no source', { cron: '0 2 * * *' }, /needs a source/, 'nightly'],
    ['--waba alone is no rule', { cron: '0 2 * * *', waba: '919000000000' }, /needs a source/, 'nightly'],
    ['unknown chat status', { cron: '0 2 * * *', chatStatus: 'closed' }, /Expected `--chat-status` to be one of all, unread/, 'nightly'],
    ['idle hours 0', { cron: '0 2 * * *', idleHours: '0' }, /Expected `--idle-hours` to be a number of hours above 0/, 'nightly'],
    ['idle hours not a number', { cron: '0 2 * * *', idleHours: '12h' }, /got `12h`/, 'nightly'],
    ['empty tag list', { cron: '0 2 * * *', tag: ' , ' }, /Expected `--tag`/, 'nightly'],
    ['two agents', { cron: '0 2 * * *', agent: '919811111111,919822222222' }, /takes one agent number/, 'nightly'],
    ['agent not a phone number', { cron: '0 2 * * *', agent: 'asha' }, /`--agent` "asha": contains characters/, 'nightly'],
    ['inbox with two business numbers', { cron: '0 2 * * *', inbox: '/in', waba: '919000000000,919000000001' }, /give one/, 'nightly'],
    ['bad schedule name', { cron: '0 2 * * *', chatStatus: 'done' }, /Expected the schedule name/, 'night:ly'],
  ];
  it.each(BAD)('refuses: %s', (_what, input, message, name) => {
    expect(() => build(input, name)).toThrow(UsageError);
    expect(() => build(input, name)).toThrow(message);
  });
});

describe('scheduler jobs', () => {
  it('the tick of a scheduler-made job is the planned time in its id', () => {
    expect(tickOfJob({ id: `repeat:${schedulerIdFor('nightly')}:1795721630000`, timestamp: 5, opts: { delay: 7 } })).toBe(1795721630000);
    expect(tickOfJob({ id: 'manual-1', timestamp: 5, opts: { delay: 7 } })).toBe(12);
  });
});

describe('buildDefinition: the brake (--max-chats, --max-share)', () => {
  const base: ScheduleInput = { cron: '0 2 * * *', chatStatus: 'done' };

  it('keeps the limits as numbers, and none when not given (or blank, as an empty form field)', () => {
    expect(build({ ...base, maxChats: '2000', maxShare: '0.2' })).toMatchObject({ maxChats: 2000, maxShare: 0.2 });
    expect(build({ ...base, maxShare: '1' })).toMatchObject({ maxShare: 1 });
    const none = build({ ...base, maxChats: ' ', maxShare: '' });
    expect(none).not.toHaveProperty('maxChats');
    expect(none).not.toHaveProperty('maxShare');
  });

  it.each(['0', '-1', '2.5', '1e3', 'ten', '100000001', '0x10'])('--max-chats %j is refused, naming the flag', (value) => {
    expect(() => build({ ...base, maxChats: value })).toThrow(UsageError);
    expect(() => build({ ...base, maxChats: value })).toThrow(/^Expected `--max-chats` to be a whole number of chats from 1 to 100000000 .*, got `/);
  });

  it.each(['0', '-0.5', '1.01', '20%', 'NaN', 'Infinity', 'half'])('--max-share %j is refused: a fraction in (0, 1]', (value) => {
    expect(() => build({ ...base, maxShare: value })).toThrow(/^Expected `--max-share` to be a fraction above 0 and at most 1 /);
  });
});

describe('--capture-assignees on a schedule', () => {
  it('is kept on the definition only when asked for, and survives the round trip through Redis', () => {
    const asked = build({ cron: '0 2 * * *', inbox: 'drop', waba: '919000000000', captureAssignees: true });
    expect(asked.captureAssignees).toBe(true);
    expect(decodeScheduleDefinition(JSON.stringify(asked), 'x')).toEqual(asked);
    const plain = build({ cron: '0 2 * * *', inbox: 'drop', captureAssignees: false });
    expect('captureAssignees' in plain).toBe(false);
    expect(decodeScheduleDefinition(JSON.stringify(plain), 'x')).toEqual(plain);
    expect(() => decodeScheduleDefinition(JSON.stringify({ ...asked, captureAssignees: 'yes' }), 'x')).toThrow(/captureAssignees/);
  });
});
