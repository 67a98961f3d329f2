/**
 * Reading the audit trail without Redis: --since forms, the filters' checks (the CLI and /api/audit share them),
 * the text and JSON-lines renderings, and which entries a batch's filter finds.
 */
import { describe, expect, it } from '@jest/globals';

import { auditJsonLines, auditQuery, parseSince, renderAudit } from '../../src/app/audit.js';
import { type AuditEntry, matches } from '../../src/store/audit-store.js';
import { UsageError } from '../../src/domain/errors.js';

const NOW = Date.parse('2026-12-03T12:00:00Z');

const entry = (overrides: Partial<AuditEntry>): AuditEntry => ({
  id: `${NOW}-0`,
  at: NOW,
  actor: 'alice',
  via: 'console',
  from: '10.0.0.7',
  action: 'pause',
  batchId: '20261203-120000-abcdef',
  details: {},
  ...overrides,
});

describe('parseSince', () => {
  it.each([
    ['24h', NOW - 24 * 3_600_000],
    ['7d', NOW - 7 * 86_400_000],
    ['30m', NOW - 30 * 60_000],
    ['2w', NOW - 14 * 86_400_000],
    ['2026-11-25', Date.parse('2026-11-25')],
    ['2026-11-25T14:00:00Z', Date.parse('2026-11-25T14:00:00Z')],
    ['2026-11-25T14:00:00+05:30', Date.parse('2026-11-25T14:00:00+05:30')],
  ])('%s', (text, expected) => {
    expect(parseSince(text, NOW)).toBe(expected);
  });

  it.each(['yesterday', '', '24', 'h', '-1d', '1y', '2026-13-45', '1e3h', 'constructor', '__proto__', '9'.repeat(10_000)])(
    'refuses %p, naming the accepted forms',
    (text) => {
      expect(() => parseSince(text, NOW)).toThrow(UsageError);
      expect(() => parseSince(text, NOW)).toThrow(/24h.*7d|7d.*24h/);
    },
  );
});

describe('auditQuery', () => {
  it('turns the filters into a store query', () => {
    expect(auditQuery({ batch: '20261203-120000-abcdef', actor: 'schedule nightly', since: '1h' }, NOW)).toEqual({
      batchId: '20261203-120000-abcdef',
      actor: 'schedule nightly',
      since: NOW - 3_600_000,
      limit: 1000,
    });
    expect(auditQuery({ batch: ' ', actor: '' }, NOW)).toEqual({ limit: 1000 });
  });

  it.each([
    [{ batch: 'constructor' }, /not a batch id/],
    [{ batch: '__proto__' }, /not a batch id/],
    [{ batch: '20261203-120000-ABCDEF' }, /not a batch id/],
    [{ actor: 'a'.repeat(101) }, /not an actor name/],
    [{ actor: 'bob\nforged line' }, /not an actor name/],
    [{ limit: 0 }, /--limit/],
    [{ limit: Number.NaN }, /--limit/],
    [{ limit: Number.POSITIVE_INFINITY }, /--limit/],
  ])('refuses %p', (input, message) => {
    expect(() => auditQuery(input, NOW)).toThrow(message);
  });
});

describe('matches', () => {
  const batch = '20261203-120000-abcdef';
  it('finds a batch’s own entries, a rerun under its parent, and a scheduled run under each batch it started', () => {
    expect(matches(entry({}), { batchId: batch })).toBe(true);
    expect(matches(entry({ action: 'rerun', batchId: '20261203-130000-000001', details: { parent: batch } }), { batchId: batch })).toBe(true);
    expect(matches(entry({ action: 'pause', batchId: '20261203-130000-000001', details: { parent: batch } }), { batchId: batch })).toBe(false);
    const tick = entry({ action: 'schedule-tick', batchId: undefined, details: { batches: `20261203-130000-000001,${batch}` } });
    expect(matches(tick, { batchId: batch })).toBe(true);
    expect(matches(tick, { batchId: '20261203-130000-00000' })).toBe(false); // a prefix of an id is not the id
    expect(matches(entry({}), { actor: 'alice' })).toBe(true);
    expect(matches(entry({}), { actor: 'Alice' })).toBe(false);
  });
});

describe('renderAudit', () => {
  it('aligns the columns, quotes details with spaces, and says when nothing matched', () => {
    const text = renderAudit([
      entry({ details: { from: 'running' } }),
      entry({
        id: `${NOW + 1000}-0`,
        at: NOW + 1000,
        actor: 'schedule nightly',
        via: 'schedule',
        action: 'schedule-tick',
        details: { message: 'inbox: 1 file(s)' },
      }),
      entry({ actor: 'carol@ops-1', via: 'cli', from: 'ops-1', action: 'upload', batchId: undefined, details: { file: 'a b.csv', rows: 3 } }),
    ]);
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^TIME {2,}ACTOR {2,}VIA {2,}ACTION {2,}BATCH {2,}DETAILS$/);
    const actionAt = lines[0]!.indexOf('ACTION');
    expect(lines.slice(1).map((l) => l.slice(actionAt).split(' ')[0])).toEqual(['pause', 'schedule-tick', 'upload']);
    expect(lines[1]).toContain('2026-12-03 12:00:00Z');
    expect(lines[1]).toContain('console 10.0.0.7');
    expect(lines[2]).toContain('message="inbox: 1 file(s)"');
    expect(lines[3]).toMatch(/ - {2,}file="a b.csv" rows=3$/);
    expect(renderAudit([])).toBe('no audit entries match');
  });

  it('JSON lines: one parseable object per entry', () => {
    const lines = auditJsonLines([entry({}), entry({ action: 'resume' })]).split('\n');
    expect(lines.map((l) => JSON.parse(l).action)).toEqual(['pause', 'resume']);
  });
});
