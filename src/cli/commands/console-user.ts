/**
 * `console-user add|remove|list`: named console operators in CONSOLE_USERS_FILE (or --file). `add` makes a
 * random token, prints it once and stores only its SHA-256 (config/console-users.ts says why that hash); nobody,
 * this command included, can show it again. A running console re-reads the file within a second.
 *
 * The file is rewritten whole into a temporary file beside it and renamed over it (a reader sees the old file or
 * the new one, never half a line), under an exclusive lock file, so two `add`s at once cannot lose each other's
 * line or both add one name. It is created 0600: the hashes are not secrets a token can be made from, but a list
 * of operators is nobody else's business.
 */
import { randomBytes } from 'node:crypto';
import { chmod, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';

import type { Flags } from '../args.js';
import { ENV_NAMES, readDotEnv } from '../../config/config.js';
import { type ConsoleUser, formatConsoleUser, newOperatorToken, operatorNameProblem, parseConsoleUsers, tokenHash } from '../../config/console-users.js';
import { ConfigError, UsageError } from '../../domain/errors.js';
import type { Io } from './common.js';

const USAGE = 'bulk-unassign console-user add <name> [--file <path>] | remove <name> | list';

/** --file, else CONSOLE_USERS_FILE from the environment or .env. */
function usersFilePath(flags: Flags, io: Io): string {
  const env = ENV_NAMES.consoleUsersFile;
  const path = flags.file ?? (io.env[env] || undefined) ?? readDotEnv(io.cwd)[env];
  if (!path) throw new UsageError(`no users file: pass --file <path>, or set ${env} (the console reads the same file)`);
  return resolve(io.cwd, path);
}

/** The file's operators, or none when it does not exist yet. A malformed file is refused, not rewritten. */
async function readUsers(path: string): Promise<{ users: ConsoleUser[]; header: string[]; mode: number | undefined }> {
  let text: string;
  let mode: number | undefined;
  try {
    text = await readFile(path, 'utf8');
    mode = (await stat(path)).mode & 0o777;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { users: [], header: [], mode: undefined };
    throw new ConfigError(`cannot read the console users file \`${path}\`: ${code ?? 'read error'}`);
  }
  // Comment lines are kept (at the top) when the file is rewritten.
  const header = text.split(/\r?\n/).filter((l) => l.trim().startsWith('#'));
  return { users: parseConsoleUsers(text, `the console users file \`${path}\``), header, mode };
}

async function withLock<T>(path: string, work: () => Promise<T>): Promise<T> {
  const lock = `${path}.lock`;
  let handle;
  try {
    handle = await open(lock, 'wx', 0o600);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST')
      throw new UsageError(`${lock} exists: another console-user command is changing the file (if none is, a crashed one left it: delete it and retry)`);
    throw new ConfigError(`cannot create ${lock} beside the users file: ${code ?? 'error'} (the folder must be writable)`);
  }
  try {
    return await work();
  } finally {
    await handle.close();
    await rm(lock, { force: true });
  }
}

async function writeUsers(path: string, header: readonly string[], users: readonly ConsoleUser[], mode: number | undefined): Promise<void> {
  const temp = join(dirname(path), `.${randomBytes(6).toString('hex')}.console-users.tmp`);
  const text = [...header, ...users.map(formatConsoleUser)].join('\n') + '\n';
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(text, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    if (mode !== undefined) await chmod(temp, mode);
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

function nameArg(name: string | undefined, sub: string): string {
  if (!name) throw new UsageError(`\`console-user ${sub}\` needs an operator name: ${USAGE}`);
  const problem = operatorNameProblem(name);
  if (problem) throw new UsageError(`${JSON.stringify(name)} cannot be an operator name: ${problem}`);
  return name;
}

async function add(name: string, path: string, flags: Flags, io: Io): Promise<number> {
  const token = newOperatorToken();
  await withLock(path, async () => {
    const { users, header, mode } = await readUsers(path);
    if (users.some((u) => u.name === name))
      throw new UsageError(`operator ${name} is already in ${path}: to give them a new token, \`console-user remove ${name}\` first`);
    await writeUsers(path, header, [...users, { name, hash: tokenHash(token) }], mode);
  });
  if (flags.json) io.out(JSON.stringify({ name, file: path, token }));
  else
    io.out(
      [
        `added console operator ${name} to ${path}`,
        `  token: ${token}`,
        `  This is the only time the token is shown: hand it to ${name} over a private channel. Only its hash is stored.`,
        `  ${name} logs in at the console with it (or sends Authorization: Bearer <token>); what they do is recorded under "${name}".`,
        `  A running console picks the change up within a second; remove the operator with \`bulk-unassign console-user remove ${name}\`.`,
      ].join('\n'),
    );
  return 0;
}

async function remove(name: string, path: string, flags: Flags, io: Io): Promise<number> {
  await withLock(path, async () => {
    const { users, header, mode } = await readUsers(path);
    if (!users.some((u) => u.name === name))
      throw new UsageError(`no operator ${name} in ${path} (operators: ${users.map((u) => u.name).join(', ') || 'none'})`);
    await writeUsers(
      path,
      header,
      users.filter((u) => u.name !== name),
      mode,
    );
  });
  io.out(
    flags.json
      ? JSON.stringify({ removed: name, file: path })
      : `removed console operator ${name} from ${path}: their token and sessions stop working within a second`,
  );
  return 0;
}

async function list(path: string, flags: Flags, io: Io): Promise<number> {
  const { users } = await readUsers(path);
  const names = users.map((u) => u.name);
  io.out(flags.json ? JSON.stringify({ file: path, operators: names }) : names.length ? names.join('\n') : `no operators in ${path}`);
  return 0;
}

/** `console-user <add|remove|list> [name]`. */
export async function cmdConsoleUser(args: readonly string[], flags: Flags, io: Io): Promise<number> {
  const [sub, name, extra] = args;
  if (extra !== undefined) throw new UsageError(`\`console-user ${sub}\` takes one operator name, got also ${JSON.stringify(extra)}`);
  if (sub === 'add') return add(nameArg(name, sub), usersFilePath(flags, io), flags, io);
  if (sub === 'remove') return remove(nameArg(name, sub), usersFilePath(flags, io), flags, io);
  if (sub === 'list') return list(usersFilePath(flags, io), flags, io);
  throw new UsageError(`\`console-user\` needs add, remove or list: ${USAGE}`);
}
