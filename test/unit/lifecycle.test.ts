/**
 * src/domain/lifecycle.ts, the one definition of a batch's statuses and moves. The expected tables below are
 * written out by hand from the lifecycle diagram (not derived from the module), so a change to the lifecycle
 * has to change this spec too. The Lua prelude is parsed back and compared with the TypeScript sets.
 */
import { describe, expect, it } from '@jest/globals';

import {
  ACTIVE,
  allows,
  BATCH_STATUSES,
  type BatchStatus,
  describeStatuses,
  FINAL,
  GUARDS,
  isBatchStatus,
  luaLifecyclePrelude,
  OPERATOR_ACTIONS,
  REPORTABLE,
  Status,
  TRANSITIONS,
  type TransitionName,
  WATCH_ENDS,
} from '../../src/domain/lifecycle.js';

const ALL: readonly BatchStatus[] = [
  'ingesting',
  'awaiting-approval',
  'running',
  'paused',
  'stopped',
  'cancelling',
  'finalizing',
  'finished',
  'cancelled',
  'dry-run',
];

/** The lifecycle diagram as a table: transition → [statuses it moves from, status it moves to]. */
const SPEC: Readonly<Record<TransitionName, readonly [from: readonly BatchStatus[], to: BatchStatus]>> = {
  start: [['ingesting'], 'running'],
  preview: [['ingesting'], 'dry-run'],
  hold: [['ingesting'], 'awaiting-approval'],
  approve: [['awaiting-approval'], 'running'],
  reject: [['awaiting-approval'], 'cancelling'],
  expire: [['awaiting-approval'], 'cancelling'],
  pause: [['running'], 'paused'],
  resume: [['paused', 'stopped'], 'running'],
  stop: [['running'], 'stopped'],
  cancel: [['running', 'paused', 'stopped'], 'cancelling'],
  complete: [['running', 'paused', 'stopped', 'cancelling', 'awaiting-approval'], 'finalizing'],
  finish: [['finalizing'], 'finished'],
  finishCancelled: [['finalizing'], 'cancelled'],
};
const NAMES = Object.keys(SPEC) as TransitionName[];

const sorted = (statuses: Iterable<BatchStatus>): BatchStatus[] => [...statuses].sort();

describe('lifecycle: statuses', () => {
  it('lists every status once, in lifecycle order', () => {
    expect(BATCH_STATUSES).toEqual(ALL);
    expect(new Set(BATCH_STATUSES).size).toBe(BATCH_STATUSES.length);
  });

  it.each(ALL)('Status names %s by itself', (status) => {
    const key = status === 'dry-run' ? 'dryRun' : status === 'awaiting-approval' ? 'awaitingApproval' : status;
    expect(Status[key as keyof typeof Status]).toBe(status);
  });

  it('Status has no other entries', () => {
    expect(sorted(Object.values(Status))).toEqual(sorted(ALL));
  });

  it.each([
    ...ALL.map((s) => [s, true] as const),
    ['queued', false],
    ['', false],
    ['Running', false],
    ['dryRun', false],
    ['dry_run', false],
    [' running', false],
    ['canceled', false],
  ] as const)('isBatchStatus(%j) → %s', (value, expected) => {
    expect(isBatchStatus(value)).toBe(expected);
  });
});

describe('lifecycle: transitions', () => {
  it('has exactly the transitions of the diagram', () => {
    expect(Object.keys(TRANSITIONS).sort()).toEqual([...NAMES].sort());
  });

  it.each(NAMES)('%s moves from and to the statuses of the diagram', (name) => {
    const [from, to] = SPEC[name];
    expect(TRANSITIONS[name].from).toEqual(from);
    expect(TRANSITIONS[name].to).toBe(to);
  });

  it.each(NAMES)('%s keeps an operator reason only for operator moves, the key stop and the brake', (name) => {
    const reasons: Partial<Record<TransitionName, string>> = {
      pause: 'paused by operator',
      stop: 'API key rejected',
      cancel: 'cancelled by operator',
      hold: 'held for approval',
      reject: 'rejected by operator',
      expire: 'approval expired',
    };
    expect(TRANSITIONS[name].reason).toBe(reasons[name] ?? '');
  });

  // The full matrix: every transition against every status.
  const MATRIX = NAMES.flatMap((name) => ALL.map((status) => [name, status, SPEC[name][0].includes(status)] as const));
  it.each(MATRIX)('allows(%s, %s) → %s', (name, status, expected) => {
    expect(allows(name, status)).toBe(expected);
  });

  it('no transition leaves a final status, and every other status has a way forward', () => {
    const leaving = new Set<BatchStatus>(NAMES.flatMap((n) => TRANSITIONS[n].from));
    for (const s of FINAL) expect(leaving.has(s)).toBe(false);
    for (const s of ACTIVE) expect(leaving.has(s)).toBe(true);
  });

  it('every status is reachable from ingesting, and a final status from every status', () => {
    const reach = (start: BatchStatus): Set<BatchStatus> => {
      const seen = new Set<BatchStatus>([start]);
      for (let grew = true; grew;) {
        grew = false;
        for (const n of NAMES) {
          const { from, to } = TRANSITIONS[n];
          if (!seen.has(to) && (from as readonly BatchStatus[]).some((s) => seen.has(s))) {
            seen.add(to);
            grew = true;
          }
        }
      }
      return seen;
    };
    expect(sorted(reach('ingesting'))).toEqual(sorted(ALL));
    for (const s of ALL) expect([...reach(s)].some((r) => FINAL.has(r))).toBe(true);
  });
});

describe('lifecycle: derived sets', () => {
  const SETS: readonly [string, ReadonlySet<BatchStatus> | readonly BatchStatus[], readonly BatchStatus[]][] = [
    ['FINAL', FINAL, ['finished', 'cancelled', 'dry-run']],
    ['WATCH_ENDS', WATCH_ENDS, ['finished', 'cancelled', 'dry-run', 'stopped', 'awaiting-approval']],
    ['REPORTABLE', REPORTABLE, ['finished', 'cancelled', 'dry-run', 'stopped']],
    ['ACTIVE', ACTIVE, ['ingesting', 'awaiting-approval', 'running', 'paused', 'stopped', 'cancelling', 'finalizing']],
    ['GUARDS.rerunFrom', GUARDS.rerunFrom, ['finished', 'cancelled']],
    ['GUARDS.parkChats', GUARDS.parkChats, ['paused', 'stopped', 'awaiting-approval']],
    ['GUARDS.cancelChats', GUARDS.cancelChats, ['cancelling']],
    ['OPERATOR_ACTIONS.pause', OPERATOR_ACTIONS.pause, ['running']],
    ['OPERATOR_ACTIONS.resume', OPERATOR_ACTIONS.resume, ['paused', 'stopped']],
    ['OPERATOR_ACTIONS.cancel', OPERATOR_ACTIONS.cancel, ['running', 'paused', 'stopped']],
    ['OPERATOR_ACTIONS.rerun', OPERATOR_ACTIONS.rerun, ['finished', 'cancelled']],
    ['OPERATOR_ACTIONS.approve', OPERATOR_ACTIONS.approve, ['awaiting-approval']],
    ['OPERATOR_ACTIONS.reject', OPERATOR_ACTIONS.reject, ['awaiting-approval']],
  ];

  it.each(SETS)('%s is exactly %j', (_name, actual, expected) => {
    expect(sorted(actual)).toEqual(sorted(expected));
    expect(new Set(actual).size).toBe([...actual].length);
  });

  it('ACTIVE and FINAL split the statuses', () => {
    expect(sorted([...ACTIVE, ...FINAL])).toEqual(sorted(ALL));
    expect([...ACTIVE].filter((s) => FINAL.has(s))).toEqual([]);
  });

  it.each(Object.keys(OPERATOR_ACTIONS) as (keyof typeof OPERATOR_ACTIONS)[])('operator action %s: the transition (or guard) it stands for', (action) => {
    const source = action === 'rerun' ? GUARDS.rerunFrom : action === 'restore' ? GUARDS.restoreFrom : TRANSITIONS[action].from;
    expect(OPERATOR_ACTIONS[action]).toEqual(source);
  });

  it('a chat of a parked or cancelling batch is never called, and such a batch can still complete', () => {
    for (const s of [...GUARDS.parkChats, ...GUARDS.cancelChats]) expect(allows('complete', s)).toBe(true);
  });

  it('a held batch calls nothing, is not over, ends a watch, and leaves only by approve, reject, expire (or its last chat)', () => {
    const held: BatchStatus = 'awaiting-approval';
    expect(GUARDS.parkChats).toContain(held);
    expect(FINAL.has(held)).toBe(false);
    expect(WATCH_ENDS.has(held)).toBe(true);
    expect(REPORTABLE.has(held)).toBe(false);
    expect(NAMES.filter((n) => allows(n, held)).sort()).toEqual(['approve', 'complete', 'expire', 'reject']);
    expect(TRANSITIONS.reject.to).toBe(TRANSITIONS.cancel.to);
    expect(GUARDS.cancelChats).toContain(TRANSITIONS.expire.to);
  });
});

describe('describeStatuses', () => {
  it.each([
    [[], ''],
    [['running'], 'running'],
    [['paused', 'stopped'], 'paused or stopped'],
    [['running', 'paused', 'stopped'], 'running, paused or stopped'],
    [['running', 'paused', 'stopped', 'cancelling'], 'running, paused, stopped or cancelling'],
  ] as [BatchStatus[], string][])('%j → %j', (statuses, expected) => {
    expect(describeStatuses(statuses)).toBe(expected);
  });
});

describe('luaLifecyclePrelude', () => {
  const lua = luaLifecyclePrelude();
  const lines = lua.split('\n');

  /** `name = {["a"]=true, ["b"]=true},` → the set; `name = "x",` → the string. The only two forms allowed. */
  function parse(text: string): Record<string, string[] | string> {
    const fields: Record<string, string[] | string> = {};
    for (const line of text.split('\n').slice(1, -2)) {
      const set = /^ {2}(\w+) = \{((?:\["[a-z-]+"\]=true(?:, )?)*)\},$/.exec(line);
      const str = /^ {2}(\w+) = "([a-z-]+)",$/.exec(line);
      if (set) fields[set[1]!] = [...set[2]!.matchAll(/\["([a-z-]+)"\]=true/g)].map((m) => m[1]!);
      else if (str) fields[str[1]!] = str[2]!;
      else throw new Error(`not a prelude field: ${JSON.stringify(line)}`);
    }
    return fields;
  }

  it('is one Lua table assignment: `local LIFECYCLE = {` … `}`, then a blank line, braces balanced', () => {
    expect(lines[0]).toBe('local LIFECYCLE = {');
    expect(lines.at(-2)).toBe('}');
    expect(lines.at(-1)).toBe('');
    expect([...lua].filter((c) => c === '{').length).toBe([...lua].filter((c) => c === '}').length);
    // Lua strings only in double quotes, and nothing a Lua parser would choke on.
    expect(lua).not.toMatch(/['`;]|\/\/|\bundefined\b|\bnull\b/);
  });

  it('defines exactly the sets the Lua steps use, equal to the TypeScript ones', () => {
    const fields = parse(lua);
    expect(Object.keys(fields).sort()).toEqual(['cancel', 'complete_from', 'complete_to', 'park']);
    expect(sorted(fields.park as BatchStatus[])).toEqual(sorted(GUARDS.parkChats));
    expect(sorted(fields.cancel as BatchStatus[])).toEqual(sorted(GUARDS.cancelChats));
    expect(sorted(fields.complete_from as BatchStatus[])).toEqual(sorted(TRANSITIONS.complete.from));
    expect(fields.complete_to).toBe(TRANSITIONS.complete.to);
  });

  it('names only real statuses, and every status of the sets it carries', () => {
    const named = new Set([...lua.matchAll(/"([^"]*)"/g)].map((m) => m[1]!));
    for (const name of named) expect(isBatchStatus(name)).toBe(true);
    for (const s of [...GUARDS.parkChats, ...GUARDS.cancelChats, ...TRANSITIONS.complete.from, TRANSITIONS.complete.to]) expect(named.has(s)).toBe(true);
  });

  it('is the same text every time (scripts are cached by SHA)', () => {
    expect(luaLifecyclePrelude()).toBe(lua);
  });
});
