/**
 * The actor behind a console request: the operator who logged in (auth.ts remembers who, per request, once the
 * token or session checked out), from the client's address (request.ip: the client when TRUST_PROXY names the
 * proxy in front, else the peer).
 */
import type { FastifyRequest } from 'fastify';

import type { Actor } from '../domain/actor.js';

/** The single operator of CONSOLE_TOKEN. */
export const DEFAULT_OPERATOR = 'console';

/** Weakly keyed: a request's operator goes with the request. */
const operators = new WeakMap<FastifyRequest, string>();

export function rememberOperator(request: FastifyRequest, operator: string): void {
  operators.set(request, operator);
}

/** Who sent the request. Only routes behind the access check are given one; the fallback is never an operator's. */
export function consoleActor(request: FastifyRequest): Actor {
  return { name: operators.get(request) ?? 'unauthenticated', via: 'console', from: request.ip };
}
