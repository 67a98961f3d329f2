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

/**
 * The dashboard's policy: everything from this origin, nothing from anywhere else. Its index page
 * (@bull-board/ui dist/index.ejs) needs, besides its own scripts and styles:
 * - inline styles: the loading placeholder has style attributes and a <style> block, and the JSON editor's
 *   CodeMirror adds <style> elements; so style-src allows 'unsafe-inline' (styles cannot run code);
 * - <base href="/admin/queues/">, which its relative static URLs resolve against: base-uri 'self';
 * - a Web Worker (syntax highlighting) loaded from its static files: worker-src 'self'.
 * Its <script id="__UI_CONFIG__" type="application/json"> is data, not a script: script-src needs no 'unsafe-inline'.
 * The page also links IBM Plex from fonts.googleapis.com: that link is taken out (withoutRemoteLinks) and
 * font-src would block it anyway; the dashboard falls back to the system sans-serif and monospace fonts.
 */
export const BOARD_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; font-src 'self' data:; img-src 'self' data:; " +
  "connect-src 'self'; worker-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'self'; object-src 'none'";

/** The page without <link> elements that point at another host (http:, https: or scheme-relative //). */
export function withoutRemoteLinks(html: string): string {
  return html.replace(/<link\b[^>]*\bhref\s*=\s*["']?(?:https?:)?\/\/[^>]*>\s*/gi, '');
}

export async function registerBullBoard(app: FastifyInstance, ctx: Pick<Context, 'queue'>): Promise<void> {
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(BULL_BOARD_PATH);
  createBullBoard({
    queues: [new BullMQAdapter(ctx.queue, { readOnlyMode: true, description: 'one job per chat, plus one finalize job per batch' })],
    serverAdapter,
    options: { uiConfig: { boardTitle: 'bulk-unassign' } },
  });
  // A plugin of its own, so the hook below sees only the dashboard's answers, not the console's.
  await app.register(async (board) => {
    board.addHook('onSend', async (_request, reply, payload) => {
      reply.header('content-security-policy', BOARD_CSP);
      const type = String(reply.getHeader('content-type') ?? '');
      return typeof payload === 'string' && type.startsWith('text/html') ? withoutRemoteLinks(payload) : payload;
    });
    await board.register(serverAdapter.registerPlugin(), { prefix: BULL_BOARD_PATH });
  });
}
