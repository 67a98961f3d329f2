/**
 * The API client and the global pacer as every caller of the API gets them: workers, and a schedule run or
 * preview started from the CLI or the console. With RATE_LIMIT_MAX=auto the client's answers are counted by the
 * adaptive limiter and the pacer spaces calls by the rate it learned, so a run started by hand neither ignores
 * what the workers learned nor calls at the ceiling.
 */
import { requireApiKey, type ResolvedConfig } from '../config/config.js';
import type { Logger } from '../config/logger.js';
import type { Keys } from '../store/keys.js';
import type { ScriptedRedis } from '../store/scripts.js';
import { adaptiveSettingsOf, makeAdaptiveLimiter, observedApi } from './adaptive-limiter.js';
import { type DoubleTickApi, makeApiClient } from './api-client.js';
import { makePacer, type Pacer } from './pacer.js';

export interface PacedApi {
  readonly api: DoubleTickApi;
  readonly pacer: Pacer;
  /** Reports the adaptive limiter's last counts and closes the client's sockets. */
  readonly close: () => Promise<void>;
}

export interface PacedApiOptions {
  /** The key the calls use; undefined when none is configured (a source that makes no call). */
  readonly apiKey: string;
  readonly maxSockets?: number;
}

export function makePacedApi(
  redis: ScriptedRedis,
  keys: Keys,
  config: ResolvedConfig,
  logger: Pick<Logger, 'warn'>,
  options: PacedApiOptions = { apiKey: requireApiKey(config) },
): PacedApi {
  const client = makeApiClient({
    baseUrl: config.baseUrl,
    apiKey: options.apiKey,
    requestTimeoutMs: config.requestTimeoutMs,
    ...(options.maxSockets !== undefined ? { maxSockets: options.maxSockets } : {}),
  });
  const adaptive = config.rateLimitAuto
    ? makeAdaptiveLimiter(redis, {
        keys,
        baseUrl: config.baseUrl,
        apiKey: options.apiKey,
        settings: adaptiveSettingsOf(config),
        logger,
        pause: (ms) => pacer.pause(ms),
      })
    : undefined;
  const pacer = makePacer(redis, keys, {
    max: config.rateLimitMax,
    durationMs: config.rateLimitDurationMs,
    ...(adaptive ? { adaptive } : {}),
  });
  return {
    api: adaptive ? observedApi(client, adaptive) : client,
    pacer,
    close: async () => {
      await adaptive?.close();
      client.close();
    },
  };
}
