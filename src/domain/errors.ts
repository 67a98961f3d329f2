/**
 * The closed set of errors this tool raises on purpose. Each has a stable `code`; only `cli.ts` maps codes
 * to exit codes. Anything else that escapes is a bug and is reported with its stack under DEBUG.
 */

/** Base class: every deliberate error has a stable string code. */
export class BulkUnassignError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Thrown by `resolveConfig` when a setting is missing or malformed. */
export class ConfigError extends BulkUnassignError {
  constructor(message: string) {
    super('ERR_CONFIG', message);
  }
}

/** Thrown when the command line itself is wrong (unknown command, missing argument). */
export class UsageError extends BulkUnassignError {
  constructor(message: string) {
    super('ERR_USAGE', message);
  }
}

/** Where in an input file a problem is. `line` and `column` are 1-based. */
export interface InputLocation {
  readonly file: string;
  readonly line?: number;
  readonly column?: number;
}

/** Thrown when an input file cannot be read as a whole (broken CSV, no usable header, too large). Nothing is enqueued. */
export class InputError extends BulkUnassignError {
  readonly location: InputLocation;
  constructor(location: InputLocation, message: string, options?: { cause?: unknown }) {
    const where = [location.file, location.line, location.column].filter((p) => p !== undefined).join(':');
    super('ERR_CSV_INVALID', `${where}: ${message}`, options);
    this.location = location;
  }
}

/** Thrown when a file parsed but not one row in it is a chat we could unassign. */
export class NoValidRowsError extends BulkUnassignError {
  constructor(message: string) {
    super('ERR_NO_VALID_ROWS', message);
  }
}

/** Thrown when a batch is asked to do something its state does not allow (rerun while running, unknown id). */
export class BatchStateError extends BulkUnassignError {
  constructor(message: string) {
    super('ERR_BATCH_STATE', message);
  }
}

/** Thrown when the same file content was run recently and `--force` was not given. */
export class DuplicateUploadError extends BulkUnassignError {
  readonly earlierBatchId: string;
  constructor(earlierBatchId: string, message: string) {
    super('ERR_DUPLICATE_UPLOAD', message);
    this.earlierBatchId = earlierBatchId;
  }
}

/** Thrown when Redis cannot be reached at start-up. */
export class RedisUnavailableError extends BulkUnassignError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_REDIS_UNAVAILABLE', message, options);
  }
}

/** GET /chats (a schedule's chat query) could not be read to the end: key rejected, bad filter, API down after retries. Nothing is enqueued. */
export class ChatListError extends BulkUnassignError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_CHAT_LIST', message, options);
  }
}

/**
 * The machine, not the input, is at fault: a folder that cannot be written, a full disk, too many open files.
 * The batch is not to blame and its outcome never depends on it; the operator fixes the environment.
 */
export class EnvironmentError extends BulkUnassignError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_ENVIRONMENT', message, options);
  }
}

/** errno codes that say the file system or process limits refused, not that the program is wrong. */
const ENVIRONMENT_ERRNO: ReadonlySet<string> = new Set([
  'EACCES',
  'EPERM',
  'EROFS',
  'ENOSPC',
  'EDQUOT',
  'EMFILE',
  'ENFILE',
  'ENOTDIR',
  'EISDIR',
  'ENOENT',
  'EEXIST',
  'EIO',
  'ELOOP',
  'ENAMETOOLONG',
]);

/** The error as an EnvironmentError naming the path and errno code, or undefined if it is not one. */
export function asEnvironmentError(error: unknown): EnvironmentError | undefined {
  if (error instanceof EnvironmentError) return error;
  const errno = error as NodeJS.ErrnoException | undefined;
  if (!(error instanceof Error) || typeof errno?.code !== 'string' || !ENVIRONMENT_ERRNO.has(errno.code)) return undefined;
  const where = errno.path ? `${errno.path}: ` : '';
  return new EnvironmentError(`${where}${errno.code} (${errno.syscall ?? 'file system'}): ${error.message.replace(/^[A-Z]+: /, '')}`, { cause: error });
}

/** Normalise whatever a `catch` caught into an Error. */
export function toError(value: unknown): Error {
  if (value instanceof Error) return value;
  return new Error(typeof value === 'string' ? value : JSON.stringify(value));
}

/**
 * Thrown when what Redis holds is not what this build writes: a record or JSON value that does not decode, a Lua
 * reply outside the script's documented set, or another data layout version (`checkDataLayout`). The message
 * names the key, field or script.
 */
export class DataLayoutError extends BulkUnassignError {
  constructor(message: string) {
    super('ERR_DATA_LAYOUT', message);
  }
}
