/**
 * `rerun <batchId>`: a new batch of the failed chats of a finished batch. Runs here like `run` (in-process
 * workers, wait, report), or with --detach only enqueues it for workers elsewhere.
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

export async function cmdRerun(args: readonly string[], flags: Flags, io: Io): Promise<number> {
  const parentId = batchIdArg(args, 'rerun');
  const config = configFrom(flags, io);
  const dryRun = flags['dry-run'] === true;
  if (!dryRun && !flags.detach) requireApiKey(config);
  const ctx = await openContext(config);
  try {
    const child = await rerunBatch(ctx, parentId, cliActor(io.env), {
      includePermanent: flags['include-permanent'] === true,
      ...(flags['only-reason'] ? { onlyReason: flags['only-reason'] } : {}),
      ...(flags.name ? { name: flags.name } : {}),
      dryRun,
    });
    if (child.status === Status.dryRun) return await finishDryRun(ctx, child, flags, io);
    io.err(`rerun of ${parentId}: batch ${child.id} with ${child.counts.valid} chat(s)`);
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
}
