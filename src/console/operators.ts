/**
 * The console's operators: CONSOLE_TOKEN's (named `console`) and those of CONSOLE_USERS_FILE. The file is re-read
 * when it changes (checked at most once a second), so adding an operator or revoking one (deleting the line)
 * takes effect without a restart. A file that became unreadable or malformed lets none of its operators in until
 * it is fixed (failing closed: a half-edited file must not keep a revoked operator in), and says so in the log.
 */
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';

import { type ConsoleUser, readConsoleUsers } from '../config/console-users.js';
import type { Logger } from '../config/logger.js';
import { DEFAULT_OPERATOR } from './actor.js';

export interface Operator {
  readonly name: string;
  /** SHA-256 of the operator's token, 32 bytes. */
  readonly hash: Buffer;
}

export type OperatorList = () => readonly Operator[];

const RECHECK_MS = 1000;

function fromUser(user: ConsoleUser): Operator {
  return { name: user.name, hash: Buffer.from(user.hash, 'hex') };
}

export function tokenOperator(token: string, name = DEFAULT_OPERATOR): Operator {
  return { name, hash: createHash('sha256').update(token, 'utf8').digest() };
}

export interface OperatorSources {
  /** CONSOLE_TOKEN: operator `console`. */
  readonly token?: string;
  /** CONSOLE_USERS_FILE. */
  readonly usersFile?: string;
  readonly logger?: Pick<Logger, 'error' | 'info'>;
  readonly now?: () => number;
}

export function makeOperatorList(sources: OperatorSources): OperatorList {
  const fixed = sources.token === undefined ? [] : [tokenOperator(sources.token)];
  const { usersFile, logger } = sources;
  if (usersFile === undefined) return () => fixed;
  const now = sources.now ?? Date.now;
  let fromFile: readonly Operator[] = [];
  let version = '';
  let checkedAt = -Infinity;
  const reload = (): void => {
    let current: string;
    try {
      const info = statSync(usersFile);
      current = `${info.ino}:${info.size}:${info.mtimeMs}`;
    } catch (error) {
      current = `missing:${(error as NodeJS.ErrnoException).code ?? ''}`;
    }
    if (current === version) return;
    version = current;
    try {
      fromFile = readConsoleUsers(usersFile).map(fromUser);
      logger?.info({ operators: fromFile.length }, 'console users file read');
    } catch (error) {
      fromFile = [];
      // The message names the file and the line, never its contents.
      logger?.error({ err: (error as Error).message }, 'console users file refused: its operators cannot log in until it is fixed');
    }
  };
  return () => {
    const t = now();
    if (t - checkedAt >= RECHECK_MS) {
      checkedAt = t;
      reload();
    }
    return fromFile.length === 0 ? fixed : [...fixed, ...fromFile];
  };
}
