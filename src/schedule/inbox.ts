/**
 * The inbox folder source of a schedule: every `*.csv` in the folder becomes one batch (the same reader and
 * ingest as `bulk-unassign upload`). A file that ran moves to `processed/`; a file that cannot run (broken CSV,
 * no valid rows, same content ran within DUPLICATE_WINDOW_HOURS) moves to `rejected/` with `<file>.error.txt`
 * beside it saying why. Either way it leaves the inbox, so the next tick does not read it again.
 *
 * Drop files in atomically (write `x.csv.part` or `.x.csv`, then rename to `x.csv`): only names ending in
 * `.csv` that do not start with a dot are read, so a file still being copied is never half-read.
 */
import { mkdir, readdir, rename, stat, writeFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';

import type { BatchRecord } from '../store/batch-store.js';
import type { ResolvedConfig } from '../config/config.js';
import { openConfiguredCsv } from '../ingest/csv-source.js';
import { ingest, type IngestDeps } from '../ingest/enqueue.js';
import type { IngestBrake } from '../ingest/hold.js';
import { BulkUnassignError } from '../domain/errors.js';

export const PROCESSED_DIR = 'processed';
export const REJECTED_DIR = 'rejected';

export interface InboxOptions {
  readonly dir: string;
  /** Business number for files without a WABA column (the schedule's --waba). */
  readonly defaultWaba?: string;
  /** Batch name for a file. */
  readonly batchName: (file: string) => string;
  /** Notes every batch starts with (which schedule, which tick). */
  readonly notes: readonly string[];
  /** Who starts the batches (BatchRecord.createdBy): the schedule, or the operator of a run-now. */
  readonly createdBy: string;
  /** Validate only: batches are dry runs and no file moves. */
  readonly dryRun?: boolean;
  /** The brake for each file's batch (MAX_BATCH_CHATS, the schedule's --max-chats). */
  readonly brake?: IngestBrake;
  /** Read each chat's agent right before its unassign call (--capture-assignees). */
  readonly captureAssignees?: boolean;
}

export interface InboxFileResult {
  readonly file: string;
  /** The batch made from it (absent when rejected). */
  readonly batch?: BatchRecord;
  /** Why it was rejected. */
  readonly error?: string;
  /** Where the file went ('' on a dry run). */
  readonly movedTo: string;
}

/** `*.csv` regular files in `dir`, by name. Dot files and other extensions are left alone. */
export async function listInboxFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && !e.name.startsWith('.') && extname(e.name).toLowerCase() === '.csv')
    .map((e) => join(dir, e.name))
    .sort();
}

/** Moves `file` into `targetDir`, adding a time stamp to the name if one of that name is already there. */
export async function moveInto(file: string, targetDir: string, now = new Date()): Promise<string> {
  await mkdir(targetDir, { recursive: true });
  const name = basename(file);
  let target = join(targetDir, name);
  const taken = await stat(target).then(
    () => true,
    () => false,
  );
  if (taken) {
    const ext = extname(name);
    target = join(targetDir, `${name.slice(0, name.length - ext.length)}.${now.toISOString().replace(/[-:.]/g, '')}${ext}`);
  }
  await rename(file, target);
  return target;
}

async function ingestOne(deps: IngestDeps & { config: ResolvedConfig }, file: string, opts: InboxOptions): Promise<BatchRecord> {
  const source = await openConfiguredCsv(deps.config, file, opts.defaultWaba);
  return ingest(deps, source, {
    batch: {
      kind: 'nightly',
      source: basename(file),
      name: opts.batchName(basename(file)),
      notes: opts.notes,
      createdBy: opts.createdBy,
      ...(opts.captureAssignees ? { captureAssignees: true } : {}),
    },
    dryRun: opts.dryRun ?? false,
    duplicateWindowHours: deps.config.duplicateWindowHours,
    ...(opts.brake ? { brake: opts.brake } : {}),
  });
}

function errorText(file: string, message: string, opts: InboxOptions, now: Date): string {
  return [
    `${basename(file)} was not run: ${message}`,
    '',
    `time: ${now.toISOString()}`,
    ...opts.notes,
    `Fix the file and put it back in ${opts.dir} to run it on the next tick (or run it by hand: bulk-unassign run <file> --force).`,
    '',
  ].join('\n');
}

/**
 * Reads every CSV in the inbox into its own batch. A file's own problems reject that file and the others
 * still run; anything else (Redis gone, folder unreadable) is thrown and leaves the remaining files in place.
 */
export async function ingestInbox(deps: IngestDeps & { config: ResolvedConfig }, opts: InboxOptions): Promise<InboxFileResult[]> {
  const results: InboxFileResult[] = [];
  for (const file of await listInboxFiles(opts.dir)) {
    try {
      const batch = await ingestOne(deps, file, opts);
      const movedTo = opts.dryRun ? '' : await moveInto(file, join(opts.dir, PROCESSED_DIR));
      results.push({ file, batch, movedTo });
    } catch (error) {
      if (!(error instanceof BulkUnassignError)) throw error;
      let movedTo = '';
      if (!opts.dryRun) {
        movedTo = await moveInto(file, join(opts.dir, REJECTED_DIR));
        await writeFile(`${movedTo}.error.txt`, errorText(file, error.message, opts, new Date()));
      }
      results.push({ file, error: error.message, movedTo });
    }
  }
  return results;
}
