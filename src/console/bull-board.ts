/**
 * Bull Board (the BullMQ dashboard) under /admin/queues, behind the console's token like every other route
 * (the access hook is registered on the root instance before this plugin, so it covers it).
 *
 * Read-only on purpose: a job retried, removed or cleaned from the dashboard would bypass the batch
 * accounting (a removed job leaves its chat without a result, and the batch never finishes). Pause, resume,
 * cancel and rerun go through the console's own actions, which keep the counts exact.
 */
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance } from 'fastify';

import type { Context } from '../runtime/context.js';

export const BULL_BOARD_PATH = '/admin/queues';

export async function registerBullBoard(app: FastifyInstance, ctx: Pick<Context, 'queue'>): Promise<void> {
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(BULL_BOARD_PATH);
  createBullBoard({
    queues: [new BullMQAdapter(ctx.queue, { readOnlyMode: true, description: 'one job per chat, plus one finalize job per batch' })],
    serverAdapter,
    options: { uiConfig: { boardTitle: 'bulk-unassign' } },
  });
  await app.register(serverAdapter.registerPlugin(), { prefix: BULL_BOARD_PATH });
}
