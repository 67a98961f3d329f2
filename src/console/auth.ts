/**
 * Access control for the console: named operators, each with a token of their own (CONSOLE_USERS_FILE), and
 * the shared CONSOLE_TOKEN as the operator `console`. A token is presented either as
 * `Authorization: Bearer <token>` (scripts, Prometheus) or, for browsers, typed once into the login form, which
 * answers with an HttpOnly SameSite=Strict session cookie. The cookie never holds the token or its hash: it is
 * `<operator>.<expiry>.<HMAC(session key, operator, expiry, token hash)>`, so the page cannot read it, it expires
 * on its own, and changing an operator's token (or deleting the operator) logs that operator out. The session key
 * is random and lives in Redis (one per deployment): the users file alone, hashes and all, forges no session.
 * Only /healthz and the login form itself are reachable without a token.
 *
 * Every check compares SHA-256 digests (equal lengths) with timingSafeEqual, against every operator, so neither
 * a token's length nor whose it is shows in the time an answer takes. Log-ins and failed log-ins are recorded in
 * the audit trail (never the token): see `failedLogins` for how a flood of wrong tokens stays a trickle there.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

import { HOUR, MINUTE } from '../config/config.js';
import type { Logger } from '../config/logger.js';
import type { AuditStore } from '../store/audit-store.js';
import type { ScriptedRedis } from '../store/scripts.js';
import { OPERATOR_NAME } from '../config/console-users.js';
import { publicFile } from './static-files.js';
import { type FailureThrottle, makeFailureThrottle } from './throttle.js';
import { rememberOperator } from './actor.js';
import type { Operator, OperatorList } from './operators.js';

export const SESSION_COOKIE = 'bu_console';
/** A login lasts a working day; after that the form asks again. */
export const SESSION_TTL_MS = 12 * HOUR;

/** Paths served without a token: the health check (load balancers) and the way in. */
const PUBLIC_PATHS: ReadonlySet<string> = new Set(['/healthz', '/login']);

export interface Identity {
  readonly how: 'bearer' | 'cookie';
  /** The operator's name (never their token). */
  readonly operator: string;
}

export interface ConsoleAuth {
  /** How the request proved itself and who it is, or undefined. */
  check(request: FastifyRequest): Identity | undefined;
  /** The operator whose token this is, or undefined. */
  identify(candidate: string): string | undefined;
  /** Whether an operator of that name exists now. */
  knows(name: string): boolean;
  /** A fresh session cookie value for the operator (`operator.expiry.mac`); undefined for no such operator. */
  newSession(operator: string, now?: number): string | undefined;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Constant-time comparison of two strings of any length (hashing first makes the lengths equal). */
function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

/**
 * The deployment's session key: made by the first console (SET NX, so two consoles starting together agree) and
 * read by every later one, so sessions survive restarts and work across consoles behind one load balancer.
 */
export async function loadSessionKey(redis: ScriptedRedis, key: string): Promise<Buffer> {
  await redis.set(key, randomBytes(32).toString('base64url'), 'NX');
  const value = await redis.get(key);
  if (!value) throw new Error('the console session key could not be read back from Redis');
  return Buffer.from(value, 'base64url');
}

/** Reads one cookie from the Cookie header (no cookie library: we only ever need this one). */
export function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The token of an `Authorization: Bearer …` header, or undefined when the request has none. */
function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  return header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
}

export function makeConsoleAuth(operators: OperatorList, sessionKey: Buffer): ConsoleAuth {
  const mac = (operator: Operator, expiry: string): string =>
    createHmac('sha256', sessionKey).update(`console-session:${operator.name}:${expiry}:`).update(operator.hash).digest('base64url');
  const byName = (name: string): Operator | undefined => operators().find((o) => o.name === name);
  const identify = (candidate: string): Operator | undefined => {
    const given = digest(candidate);
    let found: Operator | undefined;
    // Every operator is compared, whoever matches: the time taken does not depend on whose token it is.
    for (const operator of operators()) if (timingSafeEqual(given, operator.hash) && found === undefined) found = operator;
    return found;
  };
  const session = (value: string | undefined, now: number): Operator | undefined => {
    if (!value) return undefined;
    // `operator.expiry.mac`: a name may hold dots, the other two parts never do.
    const macAt = value.lastIndexOf('.');
    const expiryAt = value.lastIndexOf('.', macAt - 1);
    if (macAt < 0 || expiryAt <= 0) return undefined;
    const name = value.slice(0, expiryAt);
    const expiry = value.slice(expiryAt + 1, macAt);
    if (!OPERATOR_NAME.test(name) || !/^\d{1,15}$/.test(expiry) || Number(expiry) <= now) return undefined;
    const operator = byName(name);
    if (!operator) return undefined;
    return sameSecret(value.slice(macAt + 1), mac(operator, expiry)) ? operator : undefined;
  };
  return {
    identify: (candidate) => identify(candidate)?.name,
    knows: (name) => byName(name) !== undefined,
    newSession: (name, now = Date.now()) => {
      const operator = byName(name);
      if (!operator) return undefined;
      const expiry = String(now + SESSION_TTL_MS);
      return `${operator.name}.${expiry}.${mac(operator, expiry)}`;
    },
    check: (request) => {
      const bearer = bearerToken(request);
      const byToken = bearer === undefined ? undefined : identify(bearer);
      if (byToken) return { how: 'bearer', operator: byToken.name };
      const byCookie = session(readCookie(request.headers.cookie, SESSION_COOKIE), Date.now());
      return byCookie ? { how: 'cookie', operator: byCookie.name } : undefined;
    },
  };
}

function cookieHeader(value: string, maxAgeSeconds: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${value}; Path=/; Max-Age=${maxAgeSeconds}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}

function wantsHtml(request: FastifyRequest): boolean {
  return request.method === 'GET' && (request.headers.accept ?? '').includes('text/html');
}

/**
 * A cookie-authenticated request that changes something must come from our own pages. SameSite=Strict already
 * keeps the cookie off cross-site requests; checking Origin as well costs nothing (defence in depth).
 */
function crossOrigin(request: FastifyRequest): boolean {
  const origin = request.headers.origin;
  if (!origin || request.method === 'GET' || request.method === 'HEAD') return false;
  try {
    return new URL(origin).host !== request.headers.host;
  } catch {
    return true;
  }
}

const LOGIN_PAGE = readFileSync(publicFile('login.html'), 'utf8');

/** The login page with one of our own fixed messages (never request data) in it. */
function loginPage(message: string): string {
  return LOGIN_PAGE.replace('{{message}}', message);
}

function sendLoginPage(reply: FastifyReply, status: number, message: string): FastifyReply {
  // The login page has no script at all; its inline style is the only thing it needs.
  return reply
    .code(status)
    .header(
      'content-security-policy',
      "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    )
    .type('text/html; charset=utf-8')
    .send(loginPage(message));
}

export interface AuthRouteOptions {
  /** `--demo` only: accept `/login?token=…` so the printed URL logs straight in. */
  readonly tokenInUrl?: boolean;
  /** Counts wrong tokens per client address. @default makeFailureThrottle() */
  readonly throttle?: FailureThrottle;
  /** Where log-ins and failed log-ins are recorded. */
  readonly audit?: AuditStore;
  readonly logger?: Pick<Logger, 'warn'>;
}

/** Failed log-ins recorded one by one per minute, at most; the rest are counted into the next one recorded. */
export const FAILED_LOGINS_PER_MINUTE = 10;

/**
 * Records failed log-ins without letting a flood of them flood the trail: an address the throttle is already
 * slowing down is not recorded again (its first failures were), and past FAILED_LOGINS_PER_MINUTE entries in a
 * minute (many addresses at once) failures are only counted; the next entry says how many went unrecorded.
 * So the stream grows by at most FAILED_LOGINS_PER_MINUTE failed log-ins a minute, whatever comes in.
 */
export function failedLogins(record: (details: Record<string, string | number>) => void, perMinute = FAILED_LOGINS_PER_MINUTE) {
  let windowStart = 0;
  let inWindow = 0;
  let unrecorded = 0;
  return (details: Record<string, string | number>, throttled: boolean, now = Date.now()): void => {
    if (now - windowStart >= MINUTE) {
      windowStart = now;
      inWindow = 0;
    }
    if (throttled || inWindow >= perMinute) {
      unrecorded += 1;
      return;
    }
    inWindow += 1;
    record(unrecorded > 0 ? { ...details, unrecorded } : details);
    unrecorded = 0;
  };
}

/** Whole seconds to put in Retry-After (at least 1: a 429 that says "retry now" invites a tight loop). */
function retryAfterSeconds(waitMs: number): number {
  return Math.max(1, Math.ceil(waitMs / 1000));
}

/** A form field, own property only (a body is request data: `constructor` is not a field we read). */
function formField(body: unknown, field: 'token' | 'name'): unknown {
  return typeof body === 'object' && body !== null && Object.hasOwn(body, field) ? (body as Record<string, unknown>)[field] : undefined;
}

/** The access-control hook (every route but PUBLIC_PATHS) and the login/logout routes. */
export function registerAuth(app: FastifyInstance, auth: ConsoleAuth, options: AuthRouteOptions = {}): void {
  // Keyed by request.ip: the client's address when TRUST_PROXY names the proxy in front, else the peer's.
  // Only wrong tokens are counted, and only after the token was checked: a correct one always gets in.
  const throttle = options.throttle ?? makeFailureThrottle();
  const audit = options.audit;
  const warn = (error: unknown): void => options.logger?.warn({ err: (error as Error).message }, 'audit entry not recorded');
  const recordFailure = failedLogins((details) => {
    void audit?.record({ actor: { name: 'unknown', via: 'console', from: String(details.from) }, action: 'console-login-failed', details }).catch(warn);
  });
  /**
   * A wrong token: counted by the throttle, recorded (within bounds). The name tried is kept only when it is an
   * operator's: anything else typed there might be a token pasted into the wrong field.
   */
  const failed = (request: FastifyRequest, how: string, tried?: unknown): number => {
    const waitMs = throttle.fail(request.ip);
    const name = typeof tried === 'string' ? tried.trim() : '';
    const knownName = name === '' ? undefined : auth.knows(name) ? name : '(not an operator)';
    recordFailure({ from: request.ip, how, ...(knownName ? { tried: knownName } : {}) }, waitMs > 0);
    return waitMs;
  };
  const tooManyTries = (reply: FastifyReply, waitMs: number): FastifyReply => {
    const seconds = retryAfterSeconds(waitMs);
    return sendLoginPage(
      reply.header('retry-after', String(seconds)),
      429,
      `That is not a console token, and there were too many wrong ones from your address: wait ${seconds} s before the next try.`,
    );
  };
  // Secure when the browser speaks https to us or, with TRUST_PROXY, to the proxy in front (X-Forwarded-Proto).
  const logIn = async (request: FastifyRequest, reply: FastifyReply, operator: string, how: string): Promise<FastifyReply> => {
    const session = auth.newSession(operator);
    if (session === undefined) return sendLoginPage(reply, 401, 'That is not a console token.');
    await audit?.record({ actor: { name: operator, via: 'console', from: request.ip }, action: 'console-login', details: { how } }).catch(warn);
    return reply.header('set-cookie', cookieHeader(session, SESSION_TTL_MS / 1000, request.protocol === 'https')).redirect('/', 303);
  };

  app.addHook('onRequest', async (request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    if (PUBLIC_PATHS.has(path)) return;
    const identity = auth.check(request);
    if (identity?.how === 'cookie' && crossOrigin(request)) {
      return reply.code(403).send({ error: 'ERR_FORBIDDEN', message: 'cross-origin request refused' });
    }
    if (identity) {
      rememberOperator(request, identity.operator);
      return;
    }
    // A wrong Bearer token is a guess like a wrong form entry: counted and slowed down the same way.
    if (bearerToken(request) !== undefined) {
      const waitMs = failed(request, 'bearer');
      if (waitMs > 0) {
        return reply
          .code(429)
          .header('retry-after', String(retryAfterSeconds(waitMs)))
          .send({ error: 'ERR_TOO_MANY_ATTEMPTS', message: 'too many wrong console tokens from this address: wait for Retry-After seconds' });
      }
    }
    if (wantsHtml(request)) return reply.redirect('/login', 303);
    return reply
      .code(401)
      .header('www-authenticate', 'Bearer realm="bulk-unassign console"')
      .send({ error: 'ERR_UNAUTHORIZED', message: 'a console token is required: Authorization: Bearer <CONSOLE_TOKEN>, or log in at /login' });
  });

  app.get<{ Querystring: { token?: string } }>('/login', async (request, reply) => {
    const token = request.query.token;
    if (options.tokenInUrl && typeof token === 'string') {
      const operator = auth.identify(token);
      if (operator !== undefined) return logIn(request, reply, operator, 'link');
      const waitMs = failed(request, 'link');
      if (waitMs > 0) return tooManyTries(reply, waitMs);
    }
    if (auth.check(request)) return reply.redirect('/', 303);
    return sendLoginPage(reply, 200, '');
  });

  app.post('/login', async (request, reply) => {
    const token = formField(request.body, 'token');
    const name = formField(request.body, 'name');
    const operator = typeof token === 'string' ? auth.identify(token.trim()) : undefined;
    // A name, when given, must be the token's operator: it confirms the person typed their own token.
    const nameGiven = typeof name === 'string' && name.trim() !== '';
    if (operator !== undefined && (!nameGiven || name.trim() === operator)) return logIn(request, reply, operator, 'form');
    const waitMs = failed(request, 'form', name);
    if (waitMs > 0) return tooManyTries(reply, waitMs);
    return sendLoginPage(reply, 401, nameGiven ? 'That is not the token of that operator.' : 'That is not a console token.');
  });

  app.post('/logout', async (request, reply) => reply.header('set-cookie', cookieHeader('', 0, request.protocol === 'https')).redirect('/login', 303));
}
