/**
 * The one table that decides what an API answer means: every documented and assumed answer of
 * POST /team-member/unassign, the Retry-After forms, and network failures.
 */
import { describe, expect, it } from '@jest/globals';

import {
  type ApiOutcome,
  classify,
  MAX_RETRY_AFTER_MS,
  messageOf,
  misroutedReason,
  parseRetryAfter,
  rateLimitBackoffMs,
  type Verdict,
} from '../../src/execution/classify.js';
import { delayMs, RETRY_POLICIES } from '../../src/domain/retry-policy.js';

const NOW = Date.parse('2025-11-25T10:00:00.000Z');
const response = (statusCode: number, body?: unknown, retryAfter?: string): ApiOutcome => ({
  kind: 'response',
  statusCode,
  body,
  latencyMs: 5,
  ...(retryAfter === undefined ? {} : { retryAfter }),
});
const network = (code: string): ApiOutcome => ({ kind: 'network', code, message: `request failed: ${code}`, latencyMs: 5 });
const http = (d: Date): string => d.toUTCString();

const TABLE: readonly [string, ApiOutcome, Verdict][] = [
  ['201 (documented success)', response(201, { success: true }), { kind: 'success' }],
  ['200', response(200, { success: true }), { kind: 'success' }],
  [
    '400, message an array (reference)',
    response(400, { statusCode: 400, message: ['customerPhoneNumber must be 7 to 15 digits', 'wabaNumber should not be empty'], error: 'Bad Request' }),
    { kind: 'permanent', reason: 'HTTP 400: customerPhoneNumber must be 7 to 15 digits; wabaNumber should not be empty' },
  ],
  [
    '400, message a string (guide)',
    response(400, { statusCode: 400, message: 'groupId must be a string', error: 'Bad Request' }),
    { kind: 'permanent', reason: 'HTTP 400: groupId must be a string' },
  ],
  ['400 without a body', response(400), { kind: 'permanent', reason: 'HTTP 400' }],
  [
    '401 (documented text)',
    response(401, { message: 'Invalid public api key', error: 'Unauthorized', statusCode: 401 }),
    { kind: 'auth', reason: 'HTTP 401: Invalid public api key' },
  ],
  ["401 (other endpoints' text)", response(401, { statusCode: 401, message: 'Unauthorized' }), { kind: 'auth', reason: 'HTTP 401: Unauthorized' }],
  ['403', response(403, { statusCode: 403, message: 'Forbidden resource' }), { kind: 'auth', reason: 'HTTP 403: Forbidden resource' }],
  [
    '404 (assumed: unknown chat)',
    response(404, { statusCode: 404, message: 'Chat not found', error: 'Not Found' }),
    { kind: 'permanent', reason: 'HTTP 404: Chat not found' },
  ],
  ['408', response(408, { statusCode: 408, message: 'Request Timeout' }), { kind: 'transient', reason: 'HTTP 408: Request Timeout' }],
  ['409 (other 4xx)', response(409, { statusCode: 409, message: 'Conflict' }), { kind: 'permanent', reason: 'HTTP 409: Conflict' }],
  [
    '422 (documented)',
    response(422, { statusCode: 422, message: 'User is not a member of the team' }),
    { kind: 'permanent', reason: 'HTTP 422: User is not a member of the team' },
  ],
  [
    '429 without Retry-After',
    response(429, { statusCode: 429, message: 'Too Many Requests: Rate Limit Exceeded' }),
    { kind: 'rate_limited', reason: 'HTTP 429: Too Many Requests: Rate Limit Exceeded' },
  ],
  ['429, Retry-After seconds', response(429, undefined, '7'), { kind: 'rate_limited', reason: 'HTTP 429', retryAfterMs: 7000 }],
  ['429, Retry-After fractional seconds', response(429, undefined, ' 1.5 '), { kind: 'rate_limited', reason: 'HTTP 429', retryAfterMs: 1500 }],
  ['429, Retry-After HTTP date (IMF)', response(429, undefined, http(new Date(NOW + 3000))), { kind: 'rate_limited', reason: 'HTTP 429', retryAfterMs: 3000 }],
  [
    '429, Retry-After HTTP date (RFC 850)',
    response(429, undefined, 'Tuesday, 25-Nov-25 10:00:04 GMT'),
    { kind: 'rate_limited', reason: 'HTTP 429', retryAfterMs: 4000 },
  ],
  [
    '429, Retry-After HTTP date (asctime, GMT)',
    response(429, undefined, 'Tue Nov 25 10:00:05 2025'),
    { kind: 'rate_limited', reason: 'HTTP 429', retryAfterMs: 5000 },
  ],
  ['429, Retry-After a date in the past → own backoff', response(429, undefined, http(new Date(NOW - 5000))), { kind: 'rate_limited', reason: 'HTTP 429' }],
  ['429, Retry-After 0 → own backoff', response(429, undefined, '0'), { kind: 'rate_limited', reason: 'HTTP 429' }],
  ['429, Retry-After garbage', response(429, undefined, 'soon'), { kind: 'rate_limited', reason: 'HTTP 429' }],
  ['429, Retry-After negative (Date.parse would read a year)', response(429, undefined, '-5'), { kind: 'rate_limited', reason: 'HTTP 429' }],
  ['429, Retry-After empty', response(429, undefined, ''), { kind: 'rate_limited', reason: 'HTTP 429' }],
  ['429, Retry-After huge → capped', response(429, undefined, '86400'), { kind: 'rate_limited', reason: 'HTTP 429', retryAfterMs: MAX_RETRY_AFTER_MS }],
  ['500', response(500, { statusCode: 500, message: 'Internal server error' }), { kind: 'transient', reason: 'HTTP 500: Internal server error' }],
  ['502 with an HTML body', response(502, { message: '<html>Bad Gateway</html>' }), { kind: 'transient', reason: 'HTTP 502: <html>Bad Gateway</html>' }],
  ['503', response(503, { statusCode: 503, message: 'Service Unavailable' }), { kind: 'transient', reason: 'HTTP 503: Service Unavailable' }],
  ['504 without a body', response(504), { kind: 'transient', reason: 'HTTP 504' }],
  [
    '302 without a Location (retried unless the caller stops on it: see below)',
    response(302),
    { kind: 'transient', reason: 'the API answered 302 (a redirect), not an answer of its own — check DOUBLETICK_BASE_URL' },
  ],
  ['204 (not the documented success)', response(204), { kind: 'transient', reason: 'unexpected HTTP 204' }],
  ['ETIMEDOUT', network('ETIMEDOUT'), { kind: 'transient', reason: 'timed out (ETIMEDOUT)' }],
  ['ECONNRESET', network('ECONNRESET'), { kind: 'transient', reason: 'connection reset (ECONNRESET)' }],
  ['ECONNREFUSED', network('ECONNREFUSED'), { kind: 'transient', reason: 'connection refused (ECONNREFUSED)' }],
  ['EPIPE', network('EPIPE'), { kind: 'transient', reason: 'connection closed (EPIPE)' }],
  ['ENOTFOUND', network('ENOTFOUND'), { kind: 'transient', reason: 'host not found (ENOTFOUND)' }],
  ['EAI_AGAIN', network('EAI_AGAIN'), { kind: 'transient', reason: 'DNS lookup failed (EAI_AGAIN)' }],
  ['an unknown network code', network('ERR_SOMETHING_NEW'), { kind: 'transient', reason: 'network error (ERR_SOMETHING_NEW)' }],
];

describe('classify: API answer → what the worker does', () => {
  it.each(TABLE)('%s', (_name, outcome, verdict) => {
    expect(classify(outcome, NOW)).toEqual(verdict);
  });

  it('never uses the network error message (it could name more than the code)', () => {
    const verdict = classify({ kind: 'network', code: 'ECONNRESET', message: 'socket hang up at http://x/?key=secret', latencyMs: 1 }, NOW);
    expect(JSON.stringify(verdict)).not.toContain('secret');
  });
});

describe('parseRetryAfter', () => {
  it.each([
    [undefined, undefined],
    ['1', 1000],
    ['120', 120_000],
    ['0.0001', undefined],
    ['1e3', undefined],
    ['Infinity', undefined],
    ['5 s', undefined],
    ['2025-11-25T10:00:09Z', undefined], // ISO is not an HTTP date
    [http(new Date(NOW + 9000)), 9000],
    [http(new Date(NOW + 2 * 3600_000)), MAX_RETRY_AFTER_MS],
  ])('%p → %p', (header, ms) => {
    expect(parseRetryAfter(header, NOW)).toBe(ms);
  });
});

describe('messageOf', () => {
  it('joins arrays, passes strings, ignores anything else', () => {
    expect(messageOf({ message: ['a', 'b', 3] })).toBe('a; b; 3');
    expect(messageOf({ message: 'x' })).toBe('x');
    expect(messageOf({ message: { nested: true } })).toBeUndefined();
    expect(messageOf('plain text')).toBeUndefined();
    expect(messageOf(null)).toBeUndefined();
  });
});

describe('rateLimitBackoffMs (no usable Retry-After)', () => {
  it('doubles from 1 s up to 60 s with ±25 % jitter', () => {
    expect([1, 2, 3, 7, 8, 30].map((n) => rateLimitBackoffMs(n, () => 0.5))).toEqual([1000, 2000, 4000, 60_000, 60_000, 60_000]);
    expect(rateLimitBackoffMs(1, () => 0)).toBe(750);
    expect(rateLimitBackoffMs(1, () => 1)).toBe(1250);
    expect(rateLimitBackoffMs(7, () => 0)).toBe(45_000); // the cap applies before the jitter
    expect(rateLimitBackoffMs(0, () => 0.5)).toBe(1000);
  });

  it('is RETRY_POLICIES.rateLimited: whole milliseconds, rounded down like every retry wait', () => {
    for (const n of [1, 2, 5, 7, 21]) {
      for (const r of [0, 0.123, 0.5, 0.999999]) expect(rateLimitBackoffMs(n, () => r)).toBe(delayMs(RETRY_POLICIES.rateLimited, n, () => r));
    }
    expect(rateLimitBackoffMs(1, () => 0.999999)).toBe(1249);
  });
});

describe("classify: an answer that is not the API's (a redirect, an HTML page)", () => {
  const page = (statusCode: number, extra: Partial<{ location: string; html: boolean; body: unknown }> = {}): ApiOutcome => ({
    kind: 'response',
    statusCode,
    body: extra.body,
    latencyMs: 5,
    ...extra,
  });
  const BASE = 'check DOUBLETICK_BASE_URL';
  const MISROUTED: readonly [string, ApiOutcome, string][] = [
    [
      '302 to another origin',
      page(302, { location: 'https://evil.example.com/team-member/unassign?key=k' }),
      `the API answered 302 (a redirect to https://evil.example.com), not an answer of its own — ${BASE}`,
    ],
    ['301 with a relative Location', page(301, { location: '/login' }), `the API answered 301 (a redirect), not an answer of its own — ${BASE}`],
    ['307', page(307, { location: 'http://127.0.0.1:9/x' }), `the API answered 307 (a redirect to http://127.0.0.1:9), not an answer of its own — ${BASE}`],
    ['304', page(304), `the API answered 304 (a redirect), not an answer of its own — ${BASE}`],
    [
      '200 HTML page (captive portal)',
      page(200, { html: true, body: { message: '<!DOCTYPE html><html>' } }),
      `the API answered 200 with an HTML page, not JSON (a proxy, a captive portal or a wrong address) — ${BASE}`,
    ],
    ['201 HTML page', page(201, { html: true }), `the API answered 201 with an HTML page, not JSON (a proxy, a captive portal or a wrong address) — ${BASE}`],
  ];

  it.each(MISROUTED)('%s: `misrouted` for a caller that stops on it, `transient` with the same reason otherwise', (_name, outcome, reason) => {
    expect(misroutedReason(outcome)).toBe(reason);
    expect(classify(outcome, NOW, { misrouted: 'stop' })).toEqual({ kind: 'misrouted', reason });
    expect(classify(outcome, NOW)).toEqual({ kind: 'transient', reason });
    expect(classify(outcome, NOW, { misrouted: 'retry' })).toEqual({ kind: 'transient', reason });
  });

  it.each<[string, ApiOutcome, Verdict]>([
    ['201 JSON', page(201, { body: { success: true } }), { kind: 'success' }],
    [
      '502 HTML page from a proxy (an error, not an answer taken for one)',
      page(502, { html: true, body: { message: '<html>Bad Gateway</html>' } }),
      { kind: 'transient', reason: 'HTTP 502: <html>Bad Gateway</html>' },
    ],
    ['401 HTML page', page(401, { html: true }), { kind: 'auth', reason: 'HTTP 401' }],
    ['network error', network('ECONNRESET'), { kind: 'transient', reason: 'connection reset (ECONNRESET)' }],
  ])('%s is not misrouted', (_name, outcome, verdict) => {
    expect(misroutedReason(outcome)).toBeUndefined();
    expect(classify(outcome, NOW, { misrouted: 'stop' })).toEqual(verdict);
  });
});
