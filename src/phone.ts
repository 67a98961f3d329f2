/**
 * Phone numbers into the API's form: country code + national number, digits only, 7..15 digits
 * (doubletick-api.md). libphonenumber-js decides what can be a number, so "+1 (415) 555-2671",
 * "0044 20 7946 0958", "91-98765.43210" all work and "12345" or "call me" are rejected with a reason.
 *
 * Rule for numbers without `+` / `00`: with a default country (DEFAULT_COUNTRY / --default-country) a number
 * that is possible as a national number of that country is read as one; otherwise the digits are taken to
 * already start with the country code (the form DoubleTick itself exports). A leading 0 without a default
 * country is a national trunk prefix we cannot resolve, so it is rejected instead of guessed.
 *
 * We check "possible" (length for the country) rather than "valid" (assigned ranges): new number ranges
 * appear faster than metadata updates, and the API answers 4xx for a number it does not know anyway.
 */
import {
  type CountryCode,
  isSupportedCountry,
  parsePhoneNumberFromString,
  validatePhoneNumberLength,
} from 'libphonenumber-js';

export type PhoneResult = { readonly ok: true; readonly digits: string } | { readonly ok: false; readonly reason: string };

/** Characters people and spreadsheets put around digits. Anything else (letters, `*`, `/`) is rejected. */
const DECORATION = /[\s\-.()\u00a0\u2010-\u2015]/g;
const SCIENTIFIC = /^\d(\.\d+)?e\+?\d+$/i;

/** True for an ISO 3166 alpha-2 code libphonenumber knows (e.g. IN, US, GB). */
export function isCountryCode(value: string): value is CountryCode {
  return /^[A-Z]{2}$/.test(value) && isSupportedCountry(value);
}

const LENGTH_REASONS: Record<string, string> = {
  TOO_SHORT: 'too short for a phone number',
  TOO_LONG: 'too long for a phone number',
  INVALID_LENGTH: 'wrong number of digits for its country',
  INVALID_COUNTRY: 'unknown country code',
  NOT_A_NUMBER: 'not a phone number',
};

/** Normalises one phone cell. `raw` is the cell as written (a leading `'` from our own CSV reports is dropped). */
export function normalisePhone(raw: string, defaultCountry?: CountryCode): PhoneResult {
  const text = raw.trim().replace(/^'/, '').trim();
  if (text === '') return { ok: false, reason: 'empty' };
  if (SCIENTIFIC.test(text)) {
    return { ok: false, reason: 'written in scientific notation (a spreadsheet mangled it; format the column as text)' };
  }
  const compact = text.replace(DECORATION, '');
  if (!/^(\+|00)?\d+$/.test(compact)) return { ok: false, reason: 'contains characters that are not part of a phone number' };

  let international: string | undefined;
  if (compact.startsWith('+')) international = compact;
  else if (compact.startsWith('00')) international = `+${compact.slice(2)}`;
  else if (defaultCountry) {
    const national = parsePhoneNumberFromString(compact, defaultCountry);
    if (national?.isPossible()) return { ok: true, digits: national.number.slice(1) };
    international = `+${compact}`;
  } else if (compact.startsWith('0')) {
    return { ok: false, reason: 'national format (leading 0): add the country code or set --default-country' };
  } else international = `+${compact}`;

  // One parse on the common path (a possible number); the length check, a second full parse, only runs to
  // explain a rejection. Both judge the same national number against the same plan, so a possible number never
  // has a length problem (ingest of a million rows spends most of its time in libphonenumber).
  const parsed = parsePhoneNumberFromString(international);
  if (!parsed?.isPossible()) {
    const lengthProblem = validatePhoneNumberLength(international);
    return { ok: false, reason: (lengthProblem && LENGTH_REASONS[lengthProblem]) ?? 'not a phone number' };
  }
  const digits = parsed.number.slice(1);
  // The API's own schema: 7..15 characters.
  if (digits.length < 7 || digits.length > 15) return { ok: false, reason: 'must be 7 to 15 digits with country code' };
  return { ok: true, digits };
}

/** Masks a phone number for logs (personal data): keeps the first 4 and last 2 digits. */
export function maskPhone(digits: string): string {
  if (digits.length <= 6) return '*'.repeat(digits.length);
  return `${digits.slice(0, 4)}${'*'.repeat(digits.length - 6)}${digits.slice(-2)}`;
}
