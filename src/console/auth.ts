/**
 * Access control for the console: one shared token (CONSOLE_TOKEN), presented either as
 * `Authorization: Bearer <token>` (scripts, Prometheus) or, for browsers, typed once into the login form, which
 * answers with an HttpOnly SameSite=Strict session cookie. The cookie never holds the token itself: it is
 * `<expiry>.<HMAC(token, expiry)>`, so the page cannot read it, it expires on its own, and changing the token
 * logs everyone out. Only /healthz and the login form itself are reachable without it.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

import { HOUR } from '../config/config.js';
import { publicFile } from './static-files.js';
import { type FailureThrottle, makeFailureThrottle } from './throttle.js';

export const SESSION_COOKIE = 'bu_console';
/** A login lasts a working day; after that the form asks again. */
export const SESSION_TTL_MS = 12 * HOUR;

/** Paths served without a token: the health check (load balancers) and the way in. */
const PUBLIC_PATHS: ReadonlySet<string> = new Set(['/healthz', '/login']);

export interface ConsoleAuth {
  /** How the request proved itself, or undefined. */
  check(request: FastifyRequest): 'bearer' | 'cookie' | undefined;
  tokenMatches(candidate: string): boolean;
  /** A fresh session cookie value (`expiry.mac`). */
  newSession(now?: number): string;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Constant-time comparison of two strings of any length (hashing first makes the lengths equal). */
function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
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

export function makeConsoleAuth(token: string): ConsoleAuth {
  const mac = (expiry: string): string => createHmac('sha256', token).update(`console-session:${expiry}`).digest('base64url');
  const sessionValid = (value: string | undefined, now: number): boolean => {
    if (!value) return false;
    const [expiry = '', given = ''] = value.split('.');
    if (!/^\d{1,15}$/.test(expiry) || Number(expiry) <= now) return false;
    return sameSecret(given, mac(expiry));
  };
  return {
    tokenMatches: (candidate) => sameSecret(candidate, token),
    newSession: (now = Date.now()) => {
      const expiry = String(now + SESSION_TTL_MS);
      return `${expiry}.${mac(expiry)}`;
    },
    check: (request) => {
      const bearer = bearerToken(request);
      if (bearer !== undefined && sameSecret(bearer, token)) return 'bearer';
      if (sessionValid(readCookie(request.headers.cookie, SESSION_COOKIE), Date.now())) return 'cookie';
      return undefined;
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
}

/** Whole seconds to put in Retry-After (at least 1: a 429 that says "retry now" invites a tight loop). */
function retryAfterSeconds(waitMs: number): number {
  return Math.max(1, Math.ceil(waitMs / 1000));
}

/** The form field `token`, own property only (a body is request data: `constructor` is not a field we read). */
function formToken(body: unknown): unknown {
  return typeof body === 'object' && body !== null && Object.hasOwn(body, 'token') ? (body as { token: unknown }).token : undefined;
}

/** The access-control hook (every route but PUBLIC_PATHS) and the login/logout routes. */
export function registerAuth(app: FastifyInstance, auth: ConsoleAuth, options: AuthRouteOptions = {}): void {
  // Keyed by request.ip: the client's address when TRUST_PROXY names the proxy in front, else the peer's.
  // Only wrong tokens are counted, and only after the token was checked: a correct one always gets in.
  const throttle = options.throttle ?? makeFailureThrottle();
  const tooManyTries = (reply: FastifyReply, waitMs: number): FastifyReply => {
    const seconds = retryAfterSeconds(waitMs);
    return sendLoginPage(
      reply.header('retry-after', String(seconds)),
      429,
      `That is not the console token, and there were too many wrong ones from your address: wait ${seconds} s before the next try.`,
    );
  };
  // Secure when the browser speaks https to us or, with TRUST_PROXY, to the proxy in front (X-Forwarded-Proto).
  const logIn = (request: FastifyRequest, reply: FastifyReply): FastifyReply =>
    reply.header('set-cookie', cookieHeader(auth.newSession(), SESSION_TTL_MS / 1000, request.protocol === 'https')).redirect('/', 303);

  app.addHook('onRequest', async (request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    if (PUBLIC_PATHS.has(path)) return;
    const how = auth.check(request);
    if (how === 'cookie' && crossOrigin(request)) {
      return reply.code(403).send({ error: 'ERR_FORBIDDEN', message: 'cross-origin request refused' });
    }
    if (how) return;
    // A wrong Bearer token is a guess like a wrong form entry: counted and slowed down the same way.
    if (bearerToken(request) !== undefined) {
      const waitMs = throttle.fail(request.ip);
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
      if (auth.tokenMatches(token)) return logIn(request, reply);
      const waitMs = throttle.fail(request.ip);
      if (waitMs > 0) return tooManyTries(reply, waitMs);
    }
    if (auth.check(request)) return reply.redirect('/', 303);
    return sendLoginPage(reply, 200, '');
  });

  app.post('/login', async (request, reply) => {
    const token = formToken(request.body);
    if (typeof token === 'string' && auth.tokenMatches(token.trim())) return logIn(request, reply);
    const waitMs = throttle.fail(request.ip);
    if (waitMs > 0) return tooManyTries(reply, waitMs);
    return sendLoginPage(reply, 401, 'That is not the console token.');
  });

  app.post('/logout', async (request, reply) => reply.header('set-cookie', cookieHeader('', 0, request.protocol === 'https')).redirect('/login', 303));
}
