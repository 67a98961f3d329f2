/**
 * One table decides what an API answer means for a chat. Pure: no I/O, injected clock.
 */
import { delayMs, RETRY_POLICIES } from '../domain/retry-policy.js';

/** What came back from one HTTP attempt, before interpretation. */
export type ApiOutcome =
  | {
      readonly kind: 'response';
      readonly statusCode: number;
      readonly body: unknown;
      /** Raw `Retry-After` header, if any. */
      readonly retryAfter?: string;
      /** Raw `Location` header, if any (a redirect, which is never followed). */
      readonly location?: string;
      /** The body is an HTML page: content-type text/html, or a body that is not JSON and starts with `<`. */
      readonly html?: boolean;
      /** `RateLimit*` / `X-RateLimit-*` headers as sent (lower-case names), if any: RATE_LIMIT_MAX=auto reads them. */
      readonly rateLimitHeaders?: Readonly<Record<string, string>>;
      readonly latencyMs: number;
    }
  | { readonly kind: 'network'; readonly code: string; readonly message: string; readonly latencyMs: number };

/** What the worker does next. */
export type Verdict =
  | { readonly kind: 'success' }
  /** The API refused this chat; retrying cannot help (400, 404, 422, other 4xx). */
  | { readonly kind: 'permanent'; readonly reason: string }
  /** The key is wrong or revoked (401, 403): stop the batch instead of burning every chat. */
  | { readonly kind: 'auth'; readonly reason: string }
  /**
   * Not the API answering (a 3xx, or a 2xx HTML page: a proxy or captive portal, a wrong base URL): stop the batch,
   * as for a rejected key. The reason names DOUBLETICK_BASE_URL.
   */
  | { readonly kind: 'misrouted'; readonly reason: string }
  /** 429: pause every worker for `retryAfterMs` (undefined = no usable header, back off on our own). */
  | { readonly kind: 'rate_limited'; readonly reason: string; readonly retryAfterMs?: number }
  /** 5xx, 408, timeouts, connection errors: retry with backoff up to MAX_ATTEMPTS. */
  | { readonly kind: 'transient'; readonly reason: string };

/** Network error codes worth retrying, with words for the report. Any other code is retried too: a network error is never the chat's fault. */
const NETWORK_REASONS: Readonly<Record<string, string>> = {
  ETIMEDOUT: 'timed out',
  ECONNRESET: 'connection reset',
  ECONNREFUSED: 'connection refused',
  EPIPE: 'connection closed',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'DNS lookup failed',
  ECONNABORTED: 'connection aborted',
  EHOSTUNREACH: 'host unreachable',
  ERR_STREAM_PREMATURE_CLOSE: 'connection closed early',
};

/** `message` is an array in the reference and a string in the guide: accept both. */
export function messageOf(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const message = (body as { message?: unknown }).message;
  if (Array.isArray(message)) return message.map(String).join('; ');
  if (typeof message === 'string') return message;
  return undefined;
}

function httpReason(statusCode: number, body: unknown): string {
  const message = messageOf(body);
  return message ? `HTTP ${statusCode}: ${message}` : `HTTP ${statusCode}`;
}

/**
 * Longest pause a Retry-After may ask for. A longer one is more likely a skewed HTTP date or a daily quota than
 * a real rate window; after this long we ask again, which costs one request.
 */
export const MAX_RETRY_AFTER_MS = 10 * 60_000;

/** The three HTTP-date forms of RFC 9110 §5.6.7: "Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT" … */
const IMF_OR_RFC850_DATE = /^[A-Za-z]{3,9}, \d{1,2}[ -][A-Za-z]{3}[ -]\d{2,4} \d{2}:\d{2}:\d{2} GMT$/;
/** … and "Sun Nov  6 08:49:37 1994". */
const ASCTIME_DATE = /^[A-Za-z]{3} [A-Za-z]{3} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/;

/**
 * `Retry-After` in seconds or as an HTTP date → milliseconds to wait from `now` (capped at MAX_RETRY_AFTER_MS),
 * or undefined if unusable. "0" or a date already past is unusable too: "come back now" would let every worker
 * hammer the API again at once, and BullMQ cannot set a 0 ms rate limit, so the caller backs off on its own.
 * Only full HTTP dates count: V8's Date.parse reads fragments like "-5" as years.
 */
export function parseRetryAfter(header: string | undefined, now: number): number | undefined {
  if (header === undefined) return undefined;
  const trimmed = header.trim();
  let ms: number;
  if (/^\d+(\.\d+)?$/.test(trimmed)) ms = Math.round(Number(trimmed) * 1000);
  else if (IMF_OR_RFC850_DATE.test(trimmed)) ms = Date.parse(trimmed) - now;
  else if (ASCTIME_DATE.test(trimmed))
    ms = Date.parse(`${trimmed} GMT`) - now; // asctime is GMT, V8 would read it as local time
  else return undefined;
  if (!Number.isFinite(ms) || ms <= 0) return undefined;
  return Math.min(ms, MAX_RETRY_AFTER_MS);
}

/** Only the origin of a redirect's target: its path or query may carry a token (a captive portal's session). */
function originOf(location: string | undefined): string | undefined {
  if (location === undefined) return undefined;
  try {
    const origin = new URL(location).origin;
    return origin === 'null' ? undefined : origin;
  } catch {
    return undefined; // relative or garbled: the status says enough
  }
}

/**
 * Why an answer did not come from the API itself, or undefined when it may have. A 3xx is never the API's
 * answer (the client follows no redirect: got would re-send the request, phone numbers and all, to the
 * Location, and count whatever answers there). A 2xx HTML page is a proxy's, a captive portal's, or a web
 * site's at a wrong base URL: taking it for a success would mark chats unassigned that were never touched.
 */
export function misroutedReason(outcome: ApiOutcome): string | undefined {
  if (outcome.kind !== 'response') return undefined;
  const { statusCode } = outcome;
  if (statusCode >= 300 && statusCode < 400) {
    const target = originOf(outcome.location);
    return `the API answered ${statusCode} (a redirect${target ? ` to ${target}` : ''}), not an answer of its own — check DOUBLETICK_BASE_URL`;
  }
  if (statusCode >= 200 && statusCode < 300 && outcome.html === true) {
    return `the API answered ${statusCode} with an HTML page, not JSON (a proxy, a captive portal or a wrong address) — check DOUBLETICK_BASE_URL`;
  }
  return undefined;
}

export interface ClassifyOptions {
  /**
   * What a misrouted answer (see `misroutedReason`) becomes. 'stop': the `misrouted` verdict, for a caller that
   * stops its batch on it. 'retry' (the default): `transient` with the same reason, so a caller that has no stop
   * of its own gives up after its attempts with that reason, and never takes the page for an answer.
   */
  readonly misrouted?: 'stop' | 'retry';
}

/** The table: status code (or network failure) → verdict. */
export function classify(outcome: ApiOutcome, now: number = Date.now(), options: ClassifyOptions = {}): Verdict {
  if (outcome.kind === 'network') {
    const words = NETWORK_REASONS[outcome.code] ?? 'network error';
    return { kind: 'transient', reason: `${words} (${outcome.code})` };
  }
  const misrouted = misroutedReason(outcome);
  if (misrouted !== undefined) return { kind: options.misrouted === 'stop' ? 'misrouted' : 'transient', reason: misrouted };
  const { statusCode, body } = outcome;
  const reason = httpReason(statusCode, body);
  if (statusCode === 201 || statusCode === 200) return { kind: 'success' };
  if (statusCode === 401 || statusCode === 403) return { kind: 'auth', reason };
  if (statusCode === 429) {
    const retryAfterMs = parseRetryAfter(outcome.retryAfter, now);
    return retryAfterMs === undefined ? { kind: 'rate_limited', reason } : { kind: 'rate_limited', reason, retryAfterMs };
  }
  if (statusCode === 408 || statusCode >= 500) return { kind: 'transient', reason };
  if (statusCode >= 400) return { kind: 'permanent', reason };
  // 1xx/other 2xx: not the documented success; retrying is the safe reading.
  return { kind: 'transient', reason: `unexpected ${reason}` };
}

/**
 * Pause after the n-th 429 in a row that carries no usable Retry-After: RETRY_POLICIES.rateLimited (1 s, 2 s,
 * 4 s … capped at 60 s, ±25 % so several processes do not come back in lockstep). `random` is injected for tests.
 */
export function rateLimitBackoffMs(consecutive429s: number, random: () => number = Math.random): number {
  return delayMs(RETRY_POLICIES.rateLimited, consecutive429s, random);
}

/** Reason of a restore's chat that was assigned again since the unassign (see `classifyAssign`). */
export const ASSIGNED_SINCE_REASON = 'left alone: assigned to an agent since the unassign';

/** What an assign call's answer means: the unassign table, plus `skipped` for a chat that has an agent already. */
export type AssignVerdict = Verdict | { readonly kind: 'skipped'; readonly reason: string };

/**
 * An assign call sent with `reassign: false` (a restore) → verdict. 409 is how the API declines to take a chat
 * away from the agent it has now (an assumption: docs/doubletick-api.md): the chat is left alone on purpose, a
 * `skipped` result, never a failure to retry. Every other answer reads as an unassign's would.
 */
export function classifyAssign(outcome: ApiOutcome, now: number = Date.now(), options: ClassifyOptions = {}): AssignVerdict {
  // Only the API's own JSON answer: a proxy's 409 page says nothing about the chat.
  if (outcome.kind === 'response' && outcome.statusCode === 409 && outcome.html !== true) {
    const message = messageOf(outcome.body);
    return { kind: 'skipped', reason: message ? `${ASSIGNED_SINCE_REASON} (HTTP 409: ${message})` : ASSIGNED_SINCE_REASON };
  }
  return classify(outcome, now, options);
}

/**
 * The agent in a GET /customer/details answer's body: `customer.assignedUserNumber` as digits (a leading `+`
 * dropped), null when the chat has none, undefined when the body does not say (not the documented shape).
 */
export function agentInDetails(body: unknown): string | null | undefined {
  if (typeof body !== 'object' || body === null || !Object.hasOwn(body, 'customer')) return undefined;
  const customer = (body as { customer: unknown }).customer;
  if (typeof customer !== 'object' || customer === null || !Object.hasOwn(customer, 'assignedUserNumber')) return undefined;
  const agent = (customer as { assignedUserNumber: unknown }).assignedUserNumber;
  if (agent === null || agent === '') return null;
  if (typeof agent !== 'string' && typeof agent !== 'number') return undefined;
  const digits = String(agent).replace(/^\+/, '');
  return /^\d{7,15}$/.test(digits) ? digits : undefined;
}
