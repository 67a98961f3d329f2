/**
 * The `bulk-unassign` command. Thin on purpose: parse, dispatch to one function per command, and map error
 * codes to exit codes (the only place that does).
 */
import { readFileSync } from 'node:fs';

import { type Flags, HELP, parseCommandLine } from './args.js';
import { cmdBatches, cmdReport, cmdStatus } from './commands/inspect.js';
import { controlCommand } from './commands/control.js';
import { cmdDemo, cmdMockApi } from './commands/demo.js';
import type { Io } from './commands/common.js';
import { cmdRerun } from './commands/rerun.js';
import { cmdRestore } from './commands/restore.js';
import { cmdRun, cmdUpload, cmdWorker } from './commands/run.js';
import { cmdSchedule } from './commands/schedule.js';
import { cmdServe } from './commands/serve.js';
import { cmdAudit } from './commands/audit.js';
import { cmdConsoleUser } from './commands/console-user.js';
import { asEnvironmentError, BulkUnassignError, UsageError } from '../domain/errors.js';

type Command = (args: readonly string[], flags: Flags, io: Io) => Promise<number>;

const COMMANDS: Readonly<Record<string, Command>> = {
  run: cmdRun,
  upload: cmdUpload,
  worker: cmdWorker,
  status: cmdStatus,
  report: cmdReport,
  batches: cmdBatches,
  pause: controlCommand('pause'),
  resume: controlCommand('resume'),
  cancel: controlCommand('cancel'),
  approve: controlCommand('approve'),
  reject: controlCommand('reject'),
  rerun: cmdRerun,
  restore: cmdRestore,
  serve: cmdServe,
  demo: cmdDemo,
  'mock-api': cmdMockApi,
  schedule: cmdSchedule,
  audit: cmdAudit,
  'console-user': cmdConsoleUser,
};

/** Exit code for each deliberate error code. */
const EXIT_CODES: Readonly<Record<string, number>> = {
  ERR_USAGE: 2,
  ERR_CONFIG: 2,
  ERR_CSV_INVALID: 2,
  ERR_NO_VALID_ROWS: 2,
  ERR_DUPLICATE_UPLOAD: 2,
  ERR_BATCH_STATE: 2,
  ERR_REDIS_UNAVAILABLE: 2,
  ERR_ENVIRONMENT: 2,
  ERR_DATA_LAYOUT: 2,
};
export const EXIT_INTERNAL = 70;

function version(): string {
  const pkg: unknown = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'));
  return typeof pkg === 'object' && pkg !== null && 'version' in pkg && typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

export async function main(argv: readonly string[], io: Io): Promise<number> {
  try {
    const { command, args, flags } = parseCommandLine(argv);
    if (flags.version) {
      io.out(version());
      return 0;
    }
    if (flags.help || command === undefined || command === 'help') {
      io.out(HELP);
      return command === undefined && !flags.help ? 2 : 0;
    }
    const run = COMMANDS[command];
    if (!run) throw new UsageError(`unknown command \`${command}\`; commands: ${Object.keys(COMMANDS).join(', ')} (see --help)`);
    return await run(args, flags, io);
  } catch (caught) {
    const error = asEnvironmentError(caught) ?? caught;
    if (error instanceof BulkUnassignError) {
      io.err(`bulk-unassign: ${error.message}`);
      return EXIT_CODES[error.code] ?? 1;
    }
    const message = error instanceof Error ? error.message : String(error);
    io.err(`bulk-unassign: internal error: ${message}${io.env.DEBUG ? '' : ' (set DEBUG=1 for the stack)'}`);
    if (io.env.DEBUG && error instanceof Error) io.err(error.stack ?? '');
    return EXIT_INTERNAL;
  }
}
