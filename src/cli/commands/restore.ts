/**
 * `restore <batchId>`: undo a batch — a new batch that assigns every chat it unassigned back to the agent it
 * had (never taking a chat from an agent assigned since). Runs here like `rerun` (in-process workers, wait,
 * report), or with --detach only enqueues it for workers elsewhere.
 */
import type { Flags } from '../args.js';
import { requireApiKey } from '../../config/config.js';
import { cliActor } from '../../config/actor.js';
import { restoreBatch } from '../../ops/restore.js';
import { configFrom, type Io, openContext } from './common.js';
import { batchIdArg } from './inspect.js';
import { finishDryRun, processHere } from './run.js';
import { Status } from '../../domain/lifecycle.js';
import { describeBatch } from '../../app/views.js';

export async function cmdRestore(args: readonly string[], flags: Flags, io: Io): Promise<number> {
  const parentId = batchIdArg(args, 'restore');
  const config = configFrom(flags, io);
  const dryRun = flags['dry-run'] === true;
  if (!dryRun && !flags.detach) requireApiKey(config);
  const ctx = await openContext(config);
  try {
    const child = await restoreBatch(ctx, parentId, {
      actor: cliActor(),
      force: flags.force === true,
      ...(flags.name ? { name: flags.name } : {}),
      dryRun,
    });
    if (child.status === Status.dryRun) return await finishDryRun(ctx, child, flags, io);
    io.err(`restore of ${parentId}: batch ${child.id} gives ${child.counts.valid} chat(s) back to their previous agent`);
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
