/**
 * `pause`, `resume`, `cancel`: steering one batch without stopping the others; `approve`, `reject`: deciding on a
 * batch the brake held for approval (more chats than MAX_BATCH_CHATS or its schedule's --max-chats / --max-share).
 * Each is one compare-and-set on the batch's status: of two operators acting at once, one wins and the other is
 * told what the batch became.
 */
import { approveBatch, rejectBatch } from '../../ops/approval.js';
import { cancelBatch, pauseBatch, resumeBatch } from '../../ops/batch-control.js';
import type { Flags } from '../args.js';
import { configFrom, type Io, openContext } from './common.js';
import { batchIdArg } from './inspect.js';
import { cliActor } from '../../config/actor.js';

const ACTIONS = {
  pause: { run: pauseBatch, done: (n: number) => `paused: ${n} waiting chat(s) taken off the queue; chats in flight finish` },
  resume: { run: resumeBatch, done: (n: number) => `resumed: ${n} chat(s) back on the queue` },
  cancel: { run: cancelBatch, done: (n: number) => `cancelled ${n} waiting chat(s); chats in flight finish, then the report is written` },
  approve: {
    run: approveBatch,
    done: (n: number) => `approved: ${n} chat(s) on the queue; a running worker sends them (start one with \`bulk-unassign worker\` if none runs)`,
  },
  reject: { run: rejectBatch, done: (n: number) => `rejected: nothing was sent, ${n} chat(s) recorded as cancelled; the report is written next` },
} as const;

export function controlCommand(action: keyof typeof ACTIONS) {
  return async (args: readonly string[], flags: Flags, io: Io): Promise<number> => {
    const id = batchIdArg(args, action);
    const ctx = await openContext(configFrom(flags, io));
    try {
      const n = await ACTIONS[action].run(ctx, id, cliActor(io.env));
      io.out(flags.json ? JSON.stringify({ batchId: id, action, chats: n }) : `batch ${id} ${ACTIONS[action].done(n)}`);
      return 0;
    } finally {
      await ctx.close();
    }
  };
}
