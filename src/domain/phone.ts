/**
 * Phone numbers into the API's form: country code + national number, digits only, 7..15 digits
 * (docs/doubletick-api.md). libphonenumber-js decides what can be a number, so "+1 (415) 555-2671",
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
import { type CountryCode, isSupportedCountry, parsePhoneNumberFromString, validatePhoneNumberLength } from 'libphonenumber-js';

export type PhoneResult = { readonly ok: true; readonly digits: string } | { readonly ok: false; readonly reason: string };

/**
 * Characters people and spreadsheets put around digits. Anything else (letters, `*`, `/`) is rejected.
 * Invisible format characters (\p{Cf}) count too: WhatsApp and web pages wrap copied numbers in bidi marks
 * (U+202A … U+202C) and zero-width spaces that nobody can see in the cell.
 */
const DECORATION = /[\s\-.()\u2010-\u2015\p{Cf}]/gu;
/** "9.19876E+11" (or "9,19876E+11" where the decimal mark is a comma): the digits are already lost. */
const SCIENTIFIC = /^\d([.,]\d+)?e\+?\d+$/i;
/**
 * A whole number written as a float by pandas or a spreadsheet ("919876543210.0"). Without this the dot is
 * taken as a separator and the number gains a digit, which can still be a possible (wrong) number.
 */
const FLOAT_ZERO_FRACTION = /^(\+?\d+)\.0+$/;

/** True for an ISO 3166 alpha-2 code libphonenumber knows (e.g. IN, US, GB). */
export function isCountryCode(value: string): value is CountryCode {
  return /^[A-Z]{2}$/.test(value) && isSupportedCountry(value);
}

/** Reasons read after a subject ("phone number is too short"), so they are predicates. */
const LENGTH_REASONS: Record<string, string> = {
  TOO_SHORT: 'is too short',
  TOO_LONG: 'is too long',
  INVALID_LENGTH: 'has the wrong number of digits for its country',
  INVALID_COUNTRY: 'has an unknown country code',
  NOT_A_NUMBER: 'is not a phone number',
};

/**
 * Normalises one phone cell. `raw` is the cell as written (a leading `'` from our own CSV reports is dropped).
 * A rejection's `reason` reads after a subject: "phone number " + reason.
 */
export function normalisePhone(raw: string, defaultCountry?: CountryCode): PhoneResult {
  const text = raw.trim().replace(/^'/, '').trim().replace(FLOAT_ZERO_FRACTION, '$1');
  if (text === '') return { ok: false, reason: 'is empty' };
  if (SCIENTIFIC.test(text)) {
    return { ok: false, reason: 'is in scientific notation (a spreadsheet mangled it: format the column as text)' };
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
    return { ok: false, reason: 'is in national format (leading 0): add the country code or set --default-country' };
  } else international = `+${compact}`;

  // One parse on the common path (a possible number); the length check, a second full parse, only runs to
  // explain a rejection. Both judge the same national number against the same plan, so a possible number never
  // has a length problem (ingest of a million rows spends most of its time in libphonenumber).
  const parsed = parsePhoneNumberFromString(international);
  if (!parsed?.isPossible()) {
    const lengthProblem = validatePhoneNumberLength(international);
    return { ok: false, reason: (lengthProblem && LENGTH_REASONS[lengthProblem]) ?? 'is not a phone number' };
  }
  const digits = parsed.number.slice(1);
  // The API's own schema: 7..15 characters.
  if (digits.length < 7 || digits.length > 15) return { ok: false, reason: 'must be 7 to 15 digits including the country code' };
  return { ok: true, digits };
}

/** Masks a phone number for logs (personal data): keeps the first 4 and last 2 digits. */
export function maskPhone(digits: string): string {
  if (digits.length <= 6) return '*'.repeat(digits.length);
  return `${digits.slice(0, 4)}${'*'.repeat(digits.length - 6)}${digits.slice(-2)}`;
}
