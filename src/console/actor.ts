/**
 * The actor behind a console request: the operator who logged in, from the client's address (request.ip:
 * the client when TRUST_PROXY names the proxy in front, else the peer).
 */
import type { FastifyRequest } from 'fastify';

import type { Actor } from '../domain/actor.js';

/** The single operator of CONSOLE_TOKEN. */
export const DEFAULT_OPERATOR = 'console';

export function consoleActor(request: FastifyRequest): Actor {
  return { name: DEFAULT_OPERATOR, via: 'console', from: request.ip };
}
