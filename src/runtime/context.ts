/**
 * Everything a command needs, opened once from a resolved config and closed once.
 */
import type { Queue } from 'bullmq';

import { type AuditStore, makeAuditStore } from '../store/audit-store.js';
import { type BatchStore, makeBatchStore } from '../store/batch-store.js';
import type { ResolvedConfig } from '../config/config.js';
import { type Keys, makeKeys } from '../store/keys.js';
import { type Logger, makeLogger } from '../config/logger.js';
import { type JobPolicy, makeQueue, type QueueJobData } from '../store/queue.js';
import { RETRY_POLICIES } from '../domain/retry-policy.js';
import { connectRedis } from '../store/redis.js';
import { makeResultStore, type ResultStore } from '../store/result-store.js';
import type { ScriptedRedis } from '../store/scripts.js';

export interface Context {
  readonly config: ResolvedConfig;
  /** Our own keys (batches, results, pacer, staging): auto-pipelined, never handed to BullMQ. */
  readonly redis: ScriptedRedis;
  /** The connection BullMQ's Queue and Worker share (BullMQ duplicates it for its blocking commands). */
  readonly queueRedis: ScriptedRedis;
  readonly keys: Keys;
  readonly batches: BatchStore;
  readonly results: ResultStore;
  /** The audit trail: every state-changing action, who took it and when. */
  readonly audit: AuditStore;
  readonly queue: Queue<QueueJobData>;
  readonly logger: Logger;
  readonly policy: JobPolicy;
  close(): Promise<void>;
}

/**
 * Nominal first retry of an unassign job (and of a GET /chats page): 1 s, then 2, 4, 8 … with the jitter of
 * RETRY_POLICIES.unassign / .chatPage, so a 5xx burst of a few seconds is absorbed within MAX_ATTEMPTS.
 */
export const BACKOFF_DELAY_MS = RETRY_POLICIES.unassign.baseMs;

export function makeContext(config: ResolvedConfig, logger: Logger = makeLogger(config.logLevel)): Context {
  const redis = connectRedis(config.redisUrl, 'bulk-unassign', { cluster: config.redisCluster, autoPipelining: true });
  const queueRedis = connectRedis(config.redisUrl, 'bulk-unassign:queue', { cluster: config.redisCluster });
  const keys = makeKeys(config.queuePrefix);
  const queue = makeQueue(queueRedis, keys);
  queue.on('error', (error) => logger.warn({ err: error.message }, 'queue connection error'));
  return {
    config,
    redis,
    queueRedis,
    keys,
    batches: makeBatchStore(redis, keys),
    results: makeResultStore(redis, keys),
    audit: makeAuditStore(redis, keys.audit, config.auditRetentionDays),
    queue,
    logger,
    policy: { maxAttempts: config.maxAttempts, backoffDelayMs: BACKOFF_DELAY_MS },
    close: async () => {
      await queue.close();
      queueRedis.disconnect();
      redis.disconnect();
    },
  };
}
