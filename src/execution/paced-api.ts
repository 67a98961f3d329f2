/**
 * The API client as every caller of DoubleTick must use it: its calls take a slot of the global pacer, and with
 * RATE_LIMIT_MAX=auto every answer is counted by the adaptive limit and the slots are spaced by the rate it
 * sets. Workers and the runs started from the CLI or the console (`schedule run-now`, a preview) build it the
 * same way, so a listing started by hand is held to the same limit as the workers' calls, and its 429s teach
 * the adaptive limit as theirs do: with a pacer of their own at the fixed ceiling they would outrun it.
 */
import { adaptiveSettingsOf, makeAdaptiveLimiter, observedApi } from './adaptive-limiter.js';
import type { DoubleTickApi } from './api-client.js';
import { makePacer, type Pacer } from './pacer.js';
import type { Context } from '../runtime/context.js';

export interface PacedApi {
  /** The client, its answers counted by the adaptive limit when RATE_LIMIT_MAX=auto. */
  readonly api: DoubleTickApi;
  readonly pacer: Pacer;
  /** Reports what the adaptive limit has not been told yet and stops its timer (the client is not closed). */
  close(): Promise<void>;
}

export function makePacedApi(ctx: Pick<Context, 'config' | 'redis' | 'keys' | 'logger'>, client: DoubleTickApi, apiKey: string): PacedApi {
  const { config } = ctx;
  // BullMQ's limiter (the workers') and the fixed pacer both use rateLimitMax; with auto that is the ceiling,
  // the outer cap, and the pacer follows the adaptive rate instead.
  const adaptive = config.rateLimitAuto
    ? makeAdaptiveLimiter(ctx.redis, {
        keys: ctx.keys,
        baseUrl: config.baseUrl,
        apiKey,
        settings: adaptiveSettingsOf(config),
        logger: ctx.logger,
        pause: (ms) => pacer.pause(ms),
      })
    : undefined;
  const pacer = makePacer(ctx.redis, ctx.keys, {
    max: config.rateLimitMax,
    durationMs: config.rateLimitDurationMs,
    ...(adaptive ? { adaptive } : {}),
  });
  return {
    api: adaptive ? observedApi(client, adaptive) : client,
    pacer,
    close: async () => {
      await adaptive?.close();
    },
  };
}
