/**
 * Phone normalisation: every way people and spreadsheets write a number becomes the API's form
 * (country code + national number, digits only, 7..15 digits), and everything else is rejected with a reason
 * that reads after "phone number " in rejected.csv.
 */
import { describe, expect, it } from '@jest/globals';
import type { CountryCode } from 'libphonenumber-js';

import { isCountryCode, maskPhone, normalisePhone } from '../../src/domain/phone.js';

const NBSP = '\u00a0';

describe('normalisePhone: accepted forms', () => {
  it.each<[string, string, CountryCode | undefined, string]>([
    ['plus and spaces', '+91 98765 43210', undefined, '919876543210'],
    ['00 international prefix', '0091 98765 43210', undefined, '919876543210'],
    ['00 with dashes', '0091-98765-43210', undefined, '919876543210'],
    ['digits with country code', '919876543210', undefined, '919876543210'],
    ['dashes and dots', '91-98765.43210', undefined, '919876543210'],
    ['dots only', '91.98765.43210', undefined, '919876543210'],
    ['parenthesised country code', '(+91) 9876543210', undefined, '919876543210'],
    ['US style parentheses', '+1 (415) 555-2671', undefined, '14155552671'],
    ['UK via 00', '0044 20 7946 0958', undefined, '442079460958'],
    ['non-breaking spaces', `+91${NBSP}98765${NBSP}43210`, undefined, '919876543210'],
    ['unicode dashes (en dash, hyphen)', '+91\u201398765\u201043210', undefined, '919876543210'],
    ['tab and newline around it', '\t919876543210\n', undefined, '919876543210'],
    ['surrounding spaces', '  +91 98765 43210  ', undefined, '919876543210'],
    ["our failed.csv formula guard (leading ')", "'+919876543210", undefined, '919876543210'],
    ["leading ' then spaces", "' +91 98765 43210", undefined, '919876543210'],
    ['bidi marks WhatsApp puts around a copied number', '\u202a+91 98765 43210\u202c', undefined, '919876543210'],
    ['zero-width space', '91\u200b9876543210', undefined, '919876543210'],
    ['float written by pandas/Excel (.0)', '919876543210.0', undefined, '919876543210'],
    ['IN national, 10 digits', '9876543210', 'IN', '919876543210'],
    ['IN national with trunk 0', '09876543210', 'IN', '919876543210'],
    ['IN national with spaces', '98765 43210', 'IN', '919876543210'],
    ['IN default still takes a number with country code', '919876543210', 'IN', '919876543210'],
    ['IN default still takes +', '+14155552671', 'IN', '14155552671'],
    ['US national', '(415) 555-2671', 'US', '14155552671'],
    ['US national with leading 1', '1 415 555 2671', 'US', '14155552671'],
    ['GB national landline', '020 7946 0958', 'GB', '442079460958'],
    ['GB national mobile', '07911 123456', 'GB', '447911123456'],
    ['GB default, number already with 44', '447911123456', 'GB', '447911123456'],
    ['float with default country', '9876543210.0', 'IN', '919876543210'],
  ])('%s: %j (%s) → %s', (_name, raw, country, digits) => {
    expect(normalisePhone(raw, country)).toEqual({ ok: true, digits });
  });
});

describe('normalisePhone: rejected forms, each with its reason', () => {
  it.each<[string, string, CountryCode | undefined, RegExp]>([
    ['empty', '', undefined, /^is empty$/],
    ['blank', '   ', undefined, /^is empty$/],
    ['only the guard', "'", undefined, /^is empty$/],
    ['leading 0 without default country', '09876543210', undefined, /national format \(leading 0\).*--default-country/],
    ['leading 0 UK without default country', '020 7946 0958', undefined, /national format/],
    ['letters', 'call me', undefined, /characters that are not part of a phone number/],
    ['digits with a letter', '91987654321x', undefined, /characters that are not part/],
    ['extension text', '+91 98765 43210 ext 5', undefined, /characters that are not part/],
    ['double plus', '++919876543210', undefined, /characters that are not part/],
    ['a slash', '91/9876543210', undefined, /characters that are not part/],
    ['plus alone', '+', undefined, /characters that are not part/],
    ['scientific notation', '9.19876E+11', undefined, /scientific notation.*format the column as text/],
    ['scientific notation, lower case, no +', '9.19876e11', undefined, /scientific notation/],
    ['scientific notation, comma decimal mark', '9,19876E+11', undefined, /scientific notation/],
    ['scientific notation even with default country', '9.19876E+11', 'IN', /scientific notation/],
    ['too short', '12345', undefined, /^is too short$/],
    ['too long', '+91 98765 43210 12345', undefined, /too long|wrong number of digits/],
    ['unknown country code', '+999 1234567', undefined, /unknown country code/],
    ['only 00', '00', undefined, /^is /],
    ['impossible length for its country', '+683 40021', undefined, /wrong number of digits/],
  ])('%s: %j (%s)', (_name, raw, country, reason) => {
    const result = normalisePhone(raw, country);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toMatch(reason);
  });
});

describe('normalisePhone: the API schema allows 7 to 15 digits with the country code', () => {
  it('accepts 7 digits (Niue: +683 and 4 digits)', () => {
    expect(normalisePhone('+683 4002')).toEqual({ ok: true, digits: '6834002' });
  });

  it('rejects 6 digits', () => {
    expect(normalisePhone('+683 400')).toMatchObject({ ok: false });
  });

  it('accepts 15 digits (a German number at the maximum)', () => {
    expect(normalisePhone('+49 30 12345678901')).toEqual({ ok: true, digits: '493012345678901' });
  });

  it('rejects 16 digits even where libphonenumber calls the number possible', () => {
    expect(normalisePhone('+49 30 123456789012')).toEqual({ ok: false, reason: 'must be 7 to 15 digits including the country code' });
    expect(normalisePhone('+4930123456789012')).toMatchObject({ ok: false, reason: /7 to 15 digits/ });
  });

  it('never returns anything but digits, 7 to 15 of them', () => {
    const samples = ['+91 98765 43210', '0044 20 7946 0958', '+1 (415) 555-2671', '+683 4002', '+49 30 12345678901', '+7 912 345 67 89'];
    for (const raw of samples) {
      const r = normalisePhone(raw);
      expect(r.ok).toBe(true);
      if (r.ok) expect(r.digits).toMatch(/^\d{7,15}$/);
    }
  });
});

describe('isCountryCode', () => {
  it.each([
    ['IN', true],
    ['US', true],
    ['GB', true],
    ['in', false],
    ['IND', false],
    ['XX', false],
    ['', false],
  ])('%j → %s', (value, expected) => {
    expect(isCountryCode(value)).toBe(expected);
  });
});

describe('maskPhone', () => {
  it.each([
    ['919876543210', '9198******10'],
    ['14155552671', '1415*****71'],
    ['6834002', '6834*02'],
    ['123456', '******'],
    ['12', '**'],
    ['', ''],
  ])('%j → %j', (digits, masked) => {
    expect(maskPhone(digits)).toBe(masked);
  });

  it('keeps the length and never shows more than 6 digits', () => {
    const digits = '491234567890123';
    const masked = maskPhone(digits);
    expect(masked).toHaveLength(digits.length);
    expect(masked.replace(/\*/g, '')).toHaveLength(6);
  });
});
