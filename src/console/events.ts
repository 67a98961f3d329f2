/**
 * Live progress of one batch as server-sent events. The batch record in Redis is the single source of truth
 * (workers on any host move its counters), so the stream polls it and sends an event only when it changed:
 * `progress` with the batch view, `infra` with the Redis write problem (or null) when it changes, `end` once
 * the batch reached a terminal status (then the stream closes).
 * A comment line every HEARTBEAT_MS keeps proxies from closing a quiet stream.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';

import { WATCH_ENDS } from '../domain/lifecycle.js';
import { probeRedisWrites, watchBatch } from '../app/watch.js';
import type { Context } from '../runtime/context.js';
import { apiPauseOf, type BatchView, batchView, readApiRate } from '../app/views.js';
import { pausedUntil } from '../execution/pacer.js';
import { BATCH_ID } from './batch-routes.js';

const HEARTBEAT_MS = 15_000;
/** Streams one process keeps open at once (each holds a socket and polls Redis). */
export const DEFAULT_MAX_STREAMS = 100;
/** What a client over the cap is told to wait, in seconds. */
const BUSY_RETRY_AFTER_S = 10;

export interface EventStreamOptions {
  /** How often each stream reads the batch record. @default 1000 */
  readonly pollMs?: number;
  /** Streams open at once; one more is answered 503 with Retry-After. @default DEFAULT_MAX_STREAMS */
  readonly maxStreams?: number;
}

function write(reply: FastifyReply, event: string, data: unknown): void {
  reply.raw.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

/** How long one write probe's answer serves every open stream: one probe per process, not per stream. */
const PROBE_EVERY_MS = 2000;

export function registerEventStream(app: FastifyInstance, ctx: Context, options: EventStreamOptions = {}): void {
  const pollMs = options.pollMs ?? 1000;
  let probed: { at: number; problem: Promise<string | undefined> } | undefined;
  // Reads keep working while Redis refuses writes: without this the page would show a batch standing still.
  const redisProblem = (): Promise<string | undefined> => {
    if (!probed || Date.now() - probed.at >= PROBE_EVERY_MS) probed = { at: Date.now(), problem: probeRedisWrites(ctx.redis, ctx.keys.writeProbe) };
    return probed.problem;
  };
  const maxStreams = options.maxStreams ?? DEFAULT_MAX_STREAMS;
  const open = new Set<() => void>();
  /** Slots taken: streams open, plus requests between taking a slot and opening (reading the batch). */
  let taken = 0;
  // Streams never end on their own while a batch runs: close them first, or app.close() would wait for them.
  app.addHook('preClose', async () => {
    for (const stop of [...open]) stop();
  });

  app.get<{ Params: { id: string } }>('/api/batches/:id/events', async (request, reply) => {
    const { id } = request.params;
    // The same id check as every other batch route (batch-routes.ts): a malformed id never reaches a Redis key.
    if (!BATCH_ID.test(id)) return reply.code(404).send({ error: 'ERR_NOT_FOUND', message: `no batch with id ${id}` });
    // The slot is taken before the first await, so a burst of requests cannot all pass the check together.
    if (taken >= maxStreams) {
      return reply
        .code(503)
        .header('retry-after', String(BUSY_RETRY_AFTER_S))
        .send({ error: 'ERR_BUSY', message: `too many live progress streams open (${maxStreams}): try again in ${BUSY_RETRY_AFTER_S} s` });
    }
    taken += 1;
    let released = false;
    const release = (): void => {
      if (!released) taken -= 1;
      released = true;
    };
    const first = await ctx.batches.get(id).catch((error: unknown) => {
      release();
      throw error;
    });
    if (!first) {
      release();
      return reply.code(404).send({ error: 'ERR_NOT_FOUND', message: `no batch with id ${id}` });
    }
    reply.hijack();
    reply.raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no', // nginx: do not buffer the stream
    });
    let last = '';
    let lastProblem: string | undefined;
    let infraSent = false;
    let lastWrite = Date.now();
    const watching = new AbortController();
    const stop = (): void => {
      watching.abort();
      open.delete(stop);
      release();
      if (!reply.raw.writableEnded) reply.raw.end();
    };
    open.add(stop);
    // 'close' fires however the stream ends (client gone, server closing, response ended): the slot comes back.
    reply.raw.on('close', stop);
    // The client may have left while the batch was being read: then 'close' has already fired.
    if (reply.raw.destroyed || request.raw.socket?.destroyed !== false) stop();
    try {
      // A Redis hiccup is not the end of the batch: the watch reads again on the next interval.
      for await (const batch of watchBatch(ctx.batches, id, { intervalMs: pollMs, signal: watching.signal })) {
        if (watching.signal.aborted) break; // the client left while the record was being read
        if (!batch) {
          write(reply, 'gone', { id });
          break;
        }
        const problem = await redisProblem();
        // Sent on the first read too: a page that reconnects may still show a problem that cleared meanwhile.
        if ((!infraSent || problem !== lastProblem) && !watching.signal.aborted) {
          write(reply, 'infra', { problem: problem ?? null });
          infraSent = true;
        }
        lastProblem = problem;
        // The global pause (another batch's 429 may have set it) holds this batch's workers too: `status` says so as well.
        const view: BatchView = { ...batchView(batch), pausedByApiUntil: apiPauseOf(batch, Date.now(), await pausedUntil(ctx.redis, ctx.keys)) };
        const text = JSON.stringify({ ...view, ratePerSecond: 0, etaSeconds: 0 }); // changes in rate alone are not news
        if (text !== last) {
          last = text;
          write(reply, 'progress', { ...view, apiRate: await readApiRate(ctx.redis, ctx.keys, ctx.config) });
          lastWrite = Date.now();
        } else if (Date.now() - lastWrite >= HEARTBEAT_MS) {
          reply.raw.write(': keep-alive\n\n');
          lastWrite = Date.now();
        }
        if (WATCH_ENDS.has(batch.status)) write(reply, 'end', { id: batch.id, status: batch.status });
      }
    } catch (error) {
      // The headers are out: an error can only end the stream (the page's EventSource reconnects).
      ctx.logger.error({ err: error instanceof Error ? error.message : String(error) }, 'progress stream failed');
    } finally {
      stop();
    }
  });
}
