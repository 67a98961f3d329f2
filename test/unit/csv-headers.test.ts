/**
 * Which column is which: header names are matched against aliases ignoring case, spaces, `_`,
 * `-` and `.`; the first matching column of a role wins; cells are keyed by unique names so none is lost.
 */
import { describe, expect, it } from '@jest/globals';

import { agentColumnOf, agentOfCell, aliasesOf, CANONICAL, foldHeader, mapColumns, uniqueHeaderNames } from '../../src/ingest/csv-headers.js';

describe('mapColumns', () => {
  it.each([
    ['customerPhoneNumber', 'phone'],
    ['CUSTOMER PHONE NUMBER', 'phone'],
    ['customer_phone_number', 'phone'],
    ['Customer-Phone.Number', 'phone'],
    ['  Phone  ', 'phone'],
    ['Mobile No', 'phone'],
    ['MSISDN', 'phone'],
    ['WhatsApp Number', 'phone'],
    ['waba', 'waba'],
    ['WABA Number', 'waba'],
    ['business_phone_number', 'waba'],
    ['Integration Number', 'waba'],
    ['group id', 'group'],
    ['GROUP_ID', 'group'],
    ['WhatsApp Group Id', 'group'],
  ])('%j is the %s column', (name, role) => {
    expect(mapColumns(['notes', name])).toEqual({ [role]: 1 });
  });

  it('ignores names that are not aliases', () => {
    expect(mapColumns(['name', 'email', 'phone number 2', 'tel', 'customer'])).toEqual({});
  });

  it('maps each role in one header', () => {
    expect(mapColumns(['Name', 'Customer Phone', 'WABA', 'Group ID'])).toEqual({ phone: 1, waba: 2, group: 3 });
  });

  it('takes the first matching column of a role', () => {
    expect(mapColumns(['phone', 'mobile', 'customerPhoneNumber'])).toEqual({ phone: 0 });
    expect(mapColumns(['x', 'Phone', 'PHONE'])).toEqual({ phone: 1 });
    expect(mapColumns(['waba', 'phone', 'wabaNumber', 'group', 'groupId'])).toEqual({ waba: 0, phone: 1, group: 3 });
  });

  it('every alias folds to a distinct name, and every canonical name is the first alias of its role', () => {
    const folded = (['phone', 'waba', 'group', 'agent'] as const).flatMap((role) => aliasesOf(role).map(foldHeader));
    expect(new Set(folded).size).toBe(folded.length);
    expect(aliasesOf('agent')[0]).toBe(CANONICAL.agent);
    expect(aliasesOf('phone')[0]).toBe(CANONICAL.phone);
    expect(aliasesOf('waba')[0]).toBe(CANONICAL.waba);
    expect(aliasesOf('group')[0]).toBe(CANONICAL.group);
  });
});

describe('foldHeader', () => {
  it('drops case, whitespace, underscores, dashes and dots', () => {
    expect(foldHeader(' Customer Phone_Number-No.\t')).toBe('customerphonenumberno');
  });
});

describe('uniqueHeaderNames', () => {
  it.each<[string, string[], string[]]>([
    ['unique names unchanged', ['phone', 'waba', 'notes'], ['phone', 'waba', 'notes']],
    ['names are trimmed', [' phone ', 'waba\t'], ['phone', 'waba']],
    ['repeats get _2, _3', ['x', 'x', 'x'], ['x', 'x_2', 'x_3']],
    ['blanks become column_<position>', ['phone', '', ' ', 'waba'], ['phone', 'column_2', 'column_3', 'waba']],
    ['a generated suffix skips a name written later', ['a', 'a', 'a_2'], ['a', 'a_3', 'a_2']],
    ['a blank yields to a written column_<n>', ['', 'x', 'column_1'], ['column_1_2', 'x', 'column_1']],
    ['repeats of a written column_<n>', ['column_2', '', 'column_2'], ['column_2', 'column_2_2', 'column_2_3']],
    ['case differs: distinct names', ['Phone', 'phone'], ['Phone', 'phone']],
  ])('%s', (_name, header, expected) => {
    expect(uniqueHeaderNames(header)).toEqual(expected);
  });

  it('always returns distinct names, one per column, and is stable on its own output', () => {
    const headers = [
      ['a', 'a', 'a_2', 'a_2', '', '', 'column_5', 'a_3'],
      ['', '', '', 'column_1', 'column_2', 'column_2_2'],
      ['x_2', 'x', 'x', 'x_2', 'x_3'],
    ];
    for (const header of headers) {
      const names = uniqueHeaderNames(header);
      expect(names).toHaveLength(header.length);
      expect(new Set(names).size).toBe(names.length);
      expect(uniqueHeaderNames(names)).toEqual(names);
    }
  });
});

describe('the agent column (what a restore gives each chat back to)', () => {
  it.each([
    ['assignedUserNumber', 'assignedUserNumber'],
    ['Assigned User Phone', 'Assigned User Phone'],
    ['agent', 'agent'],
    ['Agent Phone', 'Agent Phone'],
    ['agent_number', 'agent_number'],
    ['ASSIGNEE', 'ASSIGNEE'],
    ['Assigned To', 'Assigned To'],
  ])('%j is the agent column', (name, column) => {
    expect(mapColumns(['phone', 'waba', name])).toEqual({ phone: 0, waba: 1, agent: 2 });
    expect(agentColumnOf(['phone', 'waba', name])).toBe(column);
  });

  it('is optional, and never taken for the customer phone', () => {
    expect(agentColumnOf(['phone', 'waba'])).toBeUndefined();
    expect(agentColumnOf(['agent name', 'phone'])).toBeUndefined();
    expect(mapColumns(['Agent Phone', 'Phone'])).toEqual({ agent: 0, phone: 1 });
  });

  it.each([
    ['919811111111', '919811111111'],
    ['+91 98111-11111', '919811111111'],
    ["'919811111111", '919811111111'],
    ['(91) 9811.111.111', '919811111111'],
    ['  919811111111  ', '919811111111'],
  ])('cell %j → agent %j', (cell, agent) => {
    expect(agentOfCell(cell)).toBe(agent);
  });

  it.each([[''], ['Asha'], ['12345'], ['1234567890123456'], ['91981111111a'], ['__proto__'], [undefined]])('cell %j → no agent (not restorable)', (cell) => {
    expect(agentOfCell(cell)).toBeUndefined();
  });
});
