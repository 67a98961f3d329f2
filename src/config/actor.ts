/**
 * Who is at the command line: BULK_UNASSIGN_ACTOR when set (a shared ops account names the person), else the
 * OS user at this host. Recorded in the audit trail and as a batch's creator.
 */
import { hostname, userInfo } from 'node:os';

import type { Actor } from '../domain/actor.js';

export const ACTOR_ENV = 'BULK_UNASSIGN_ACTOR';

/** Longest actor name kept: a name is a label, not a document. */
const MAX_NAME = 100;

function osUser(): string {
  try {
    return userInfo().username;
  } catch {
    // No passwd entry (some containers run as a bare uid).
    return `uid ${process.getuid?.() ?? '?'}`;
  }
}

/** Control characters and line breaks would forge lines in a printed audit trail. */
function clean(name: string): string {
  return name
    .replace(/[\p{Cc}\p{Cf}\u2028\u2029]/gu, ' ')
    .trim()
    .slice(0, MAX_NAME);
}

export function cliActor(env: Readonly<Record<string, string | undefined>> = process.env): Actor {
  const host = hostname();
  const given = clean(env[ACTOR_ENV] ?? '');
  return { name: given || `${clean(osUser())}@${host}`, via: 'cli', from: host };
}
