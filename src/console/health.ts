/**
 * GET /healthz, the one route open without a token: can batches make progress? That needs Redis to answer and
 * at least one worker connected to the queue (BullMQ `getWorkers()`, which lists the Redis clients named after
 * the queue — this process's own worker, or workers on other hosts when started with --no-worker).
 * 200 when both hold, 503 otherwise; the body says which, and nothing else (no URLs, no counts of anything).
 */
import type { FastifyInstance } from 'fastify';

import type { Context } from '../runtime/context.js';
import { redisAnswers } from '../store/redis.js';

export interface Health {
  readonly ok: boolean;
  readonly redis: 'ok' | 'unreachable';
  /** Workers connected to the queue; null when Redis does not say (down, or CLIENT LIST not allowed). */
  readonly workers: number | null;
}

const PROBE_TIMEOUT_MS = 1500;

function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export async function checkHealth(ctx: Pick<Context, 'config' | 'queue'>): Promise<Health> {
  // A fresh probe connection: the shared one waits for Redis forever by design (maxRetriesPerRequest: null).
  if (!(await redisAnswers(ctx.config.redisUrl, PROBE_TIMEOUT_MS))) return { ok: false, redis: 'unreachable', workers: null };
  const workers = await within(ctx.queue.getWorkersCount(), PROBE_TIMEOUT_MS).catch(() => null);
  return { ok: workers !== null && workers > 0, redis: 'ok', workers };
}

export function registerHealth(app: FastifyInstance, ctx: Context): void {
  app.get('/healthz', async (_request, reply) => {
    const health = await checkHealth(ctx);
    return reply
      .code(health.ok ? 200 : 503)
      .header('cache-control', 'no-store')
      .send(health);
  });
}
