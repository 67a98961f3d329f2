/**
 * Named console operators: CONSOLE_USERS_FILE holds one `name:hash` line per operator, where hash is the hex
 * SHA-256 of the operator's token. `bulk-unassign console-user add <name>` makes the token, prints it once and
 * appends only the hash; deleting a line revokes that operator (the console re-reads the file when it changes).
 *
 * Why plain SHA-256 and not a slow password hash (scrypt, argon2): the tokens are 32 random bytes, not words a
 * person chose, so there is no dictionary to run against the file and a fast hash is as strong as a slow one
 * (2^256 guesses either way). A fast hash also keeps every request's Bearer check cheap.
 *
 * Lines may be blank or `#` comments. Errors name the file and the line number, never a line's contents: a
 * hash is not to be shown anywhere.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

import { ConfigError } from '../domain/errors.js';

export interface ConsoleUser {
  readonly name: string;
  /** Hex SHA-256 of the operator's token (64 characters). */
  readonly hash: string;
}

/** Letters, digits and `._-@`, at most 64: a name is printed in the audit trail and on pages as it is. */
export const OPERATOR_NAME = /^[A-Za-z0-9._@-]{1,64}$/;
/** CONSOLE_TOKEN's operator, the workers' name, and the console's names for no one: no operator of the file takes them. */
export const RESERVED_OPERATORS: readonly string[] = ['console', 'bulk-unassign', 'unknown', 'unauthenticated'];
const HASH = /^[0-9a-f]{64}$/;
/** A users file is a few lines per operator: a much bigger one is the wrong path. */
const MAX_FILE_BYTES = 1024 * 1024;

export function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** A new operator token: 32 random bytes, base64url (43 characters, no padding). */
export function newOperatorToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Why `name` cannot be an operator's name, or undefined when it can. */
export function operatorNameProblem(name: string): string | undefined {
  if (!OPERATOR_NAME.test(name)) return 'a name is 1-64 letters, digits, ".", "_", "-" or "@"';
  if (RESERVED_OPERATORS.includes(name)) return `"${name}" is reserved (${RESERVED_OPERATORS.join(', ')})`;
  return undefined;
}

export function formatConsoleUser(user: ConsoleUser): string {
  return `${user.name}:${user.hash}`;
}

/** Parses the file's text. `where` names the file in errors (path and where the setting came from). */
export function parseConsoleUsers(text: string, where: string): ConsoleUser[] {
  const users: ConsoleUser[] = [];
  const seen = new Set<string>();
  const lines = text.split(/\r?\n/);
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fail = (why: string): ConfigError =>
      new ConfigError(`${where}, line ${i + 1}: ${why} (each line is name:sha256-of-token, as \`bulk-unassign console-user add <name>\` writes it)`);
    const colon = line.lastIndexOf(':');
    if (colon < 0) throw fail('no ":" between the name and the hash');
    const name = line.slice(0, colon);
    const hash = line.slice(colon + 1).toLowerCase();
    const problem = operatorNameProblem(name);
    if (problem) throw fail(`not an operator name: ${problem}`);
    if (!HASH.test(hash)) throw fail('the hash is not 64 hex digits');
    if (seen.has(name)) throw fail(`operator ${name} is listed twice`);
    seen.add(name);
    users.push({ name, hash });
  }
  return users;
}

/** Reads and parses the file; an unreadable or malformed one is a ConfigError that says which and why. */
export function readConsoleUsers(path: string, source = 'CONSOLE_USERS_FILE'): ConsoleUser[] {
  const where = `the console users file \`${path}\` (${source})`;
  let text: string;
  try {
    const buffer = readFileSync(path);
    if (buffer.length > MAX_FILE_BYTES) throw new ConfigError(`${where} is larger than ${MAX_FILE_BYTES} bytes: not a users file`);
    text = buffer.toString('utf8');
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? 'read error';
    throw new ConfigError(`Cannot read ${where}: ${code} (create it with \`bulk-unassign console-user add <name> --file ${path}\`, readable by the console)`);
  }
  return parseConsoleUsers(text, where);
}
