/**
 * Live progress of one batch as server-sent events. The batch record in Redis is the single source of truth
 * (workers on any host move its counters), so the stream polls it and sends an event only when it changed:
 * `progress` with the batch view, `end` once the batch reached a terminal status (then the stream closes).
 * A comment line every HEARTBEAT_MS keeps proxies from closing a quiet stream.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';

import { WATCH_ENDS } from '../domain/lifecycle.js';
import { watchBatch } from '../app/watch.js';
import type { Context } from '../runtime/context.js';
import { type BatchView, batchView } from '../app/views.js';

const HEARTBEAT_MS = 15_000;

export interface EventStreamOptions {
  /** How often each stream reads the batch record. @default 1000 */
  readonly pollMs?: number;
}

function write(reply: FastifyReply, event: string, data: unknown): void {
  reply.raw.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

export function registerEventStream(app: FastifyInstance, ctx: Context, options: EventStreamOptions = {}): void {
  const pollMs = options.pollMs ?? 1000;
  const open = new Set<() => void>();
  // Streams never end on their own while a batch runs: close them first, or app.close() would wait for them.
  app.addHook('preClose', async () => {
    for (const stop of [...open]) stop();
  });

  app.get<{ Params: { id: string } }>('/api/batches/:id/events', async (request, reply) => {
    const first = await ctx.batches.get(request.params.id);
    if (!first) return reply.code(404).send({ error: 'ERR_NOT_FOUND', message: `no batch with id ${request.params.id}` });
    reply.hijack();
    reply.raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no', // nginx: do not buffer the stream
    });
    let last = '';
    let lastWrite = Date.now();
    const watching = new AbortController();
    const stop = (): void => {
      watching.abort();
      open.delete(stop);
      if (!reply.raw.writableEnded) reply.raw.end();
    };
    open.add(stop);
    request.raw.on('close', stop);
    // A Redis hiccup is not the end of the batch: the watch reads again on the next interval.
    for await (const batch of watchBatch(ctx.batches, request.params.id, { intervalMs: pollMs, signal: watching.signal })) {
      if (watching.signal.aborted) break; // the client left while the record was being read
      if (!batch) {
        write(reply, 'gone', { id: request.params.id });
        break;
      }
      const view: BatchView = batchView(batch);
      const text = JSON.stringify({ ...view, ratePerSecond: 0, etaSeconds: 0 }); // changes in rate alone are not news
      if (text !== last) {
        last = text;
        write(reply, 'progress', view);
        lastWrite = Date.now();
      } else if (Date.now() - lastWrite >= HEARTBEAT_MS) {
        reply.raw.write(': keep-alive\n\n');
        lastWrite = Date.now();
      }
      if (WATCH_ENDS.has(batch.status)) write(reply, 'end', { id: batch.id, status: batch.status });
    }
    stop();
  });
}
