/**
 * `rerun <batchId>`: a new batch of the failed chats of a finished batch. Runs here like `run` (in-process
 * workers, wait, report), or with --detach only enqueues it for workers elsewhere. `restore` is made the same way
 * (`childBatchCommand`).
 */
import type { Flags } from '../args.js';
import { requireApiKey } from '../../config/config.js';
import { rerunBatch } from '../../ops/rerun.js';
import { configFrom, type Io, openContext } from './common.js';
import { batchIdArg } from './inspect.js';
import { finishDryRun, processHere } from './run.js';
import { Status } from '../../domain/lifecycle.js';
import { describeBatch } from '../../app/views.js';
import { cliActor } from '../../config/actor.js';
import type { Context } from '../../runtime/context.js';
import type { BatchRecord } from '../../store/batch-store.js';

/**
 * A command that makes a batch from another one (rerun, restore), then finishes it as a dry run, enqueues it for
 * workers elsewhere (--detach), or runs it here and waits for its report.
 */
export function childBatchCommand(
  name: string,
  make: (ctx: Context, parentId: string, flags: Flags, io: Io) => Promise<BatchRecord>,
  announce: (parentId: string, child: BatchRecord) => string,
) {
  return async (args: readonly string[], flags: Flags, io: Io): Promise<number> => {
    const parentId = batchIdArg(args, name);
    const config = configFrom(flags, io);
    if (flags['dry-run'] !== true && !flags.detach) requireApiKey(config);
    const ctx = await openContext(config);
    try {
      const child = await make(ctx, parentId, flags, io);
      if (child.status === Status.dryRun) return await finishDryRun(ctx, child, flags, io);
      io.err(announce(parentId, child));
      if (flags.detach) {
        io.out(
          flags.json
            ? JSON.stringify(child, null, 2)
            : `${describeBatch(child)}\n  enqueued for workers: follow with \`bulk-unassign status ${child.id} --watch\``,
        );
        return 0;
      }
      return await processHere(ctx, child, flags, io);
    } finally {
      await ctx.close();
    }
  };
}

export const cmdRerun = childBatchCommand(
  'rerun',
  (ctx, parentId, flags, io) =>
    rerunBatch(ctx, parentId, cliActor(io.env), {
      includePermanent: flags['include-permanent'] === true,
      ...(flags['only-reason'] ? { onlyReason: flags['only-reason'] } : {}),
      ...(flags.name ? { name: flags.name } : {}),
      dryRun: flags['dry-run'] === true,
    }),
  (parentId, child) => `rerun of ${parentId}: batch ${child.id} with ${child.counts.valid} chat(s)`,
);
