/**
 * `restore <batchId>`: undo a batch — a new batch that assigns every chat it unassigned back to the agent it
 * had (never taking a chat from an agent assigned since). Runs here like `rerun` (in-process workers, wait,
 * report), or with --detach only enqueues it for workers elsewhere.
 */
import { cliActor } from '../../config/actor.js';
import { restoreBatch } from '../../ops/restore.js';
import { childBatchCommand } from './rerun.js';

export const cmdRestore = childBatchCommand(
  'restore',
  (ctx, parentId, flags, io) =>
    restoreBatch(ctx, parentId, {
      actor: cliActor(io.env),
      force: flags.force === true,
      ...(flags.name ? { name: flags.name } : {}),
      dryRun: flags['dry-run'] === true,
    }),
  (parentId, child) => `restore of ${parentId}: batch ${child.id} gives ${child.counts.valid} chat(s) back to their previous agent`,
);
