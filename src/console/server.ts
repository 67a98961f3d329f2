/**
 * The console: one Fastify server with the page, the JSON API, live progress, reports, Bull Board, /healthz and
 * /metrics, and (unless told otherwise) an in-process worker. `startConsole` opens it on a context the caller
 * owns and returns `{ url, close }`; `bulk-unassign serve` and `demo --console` use it.
 *
 * The page never receives configuration: no route returns the config, the API key, a console token or a token hash.
 */
import multipart from '@fastify/multipart';
import Fastify, { type FastifyInstance } from 'fastify';

import type { TrustProxy } from '../config/config.js';
import type { Context } from '../runtime/context.js';
import { type RunningWorker, startWorker } from '../execution/worker.js';
import { loadSessionKey, makeConsoleAuth, registerAuth } from './auth.js';
import { makeOperatorList } from './operators.js';
import { registerBatchRoutes } from './batch-routes.js';
import { registerScheduleRoutes } from './schedule-routes.js';
import { registerAuditRoutes } from './audit-routes.js';
import { registerBullBoard } from './bull-board.js';
import { registerEventStream } from './events.js';
import { registerHealth } from './health.js';
import { registerErrorHandling } from './http-errors.js';
import { makeConsoleMetrics } from './metrics.js';
import { registerPage } from './static-files.js';
import type { ConsoleHandle, ConsoleOptions } from '../app/console-port.js';

export type { ConsoleOptions };

export interface RunningConsole extends ConsoleHandle {
  readonly app: FastifyInstance;
}

const MIB = 1024 * 1024;
/** JSON bodies are tiny (rerun options, login); uploads are multipart and have their own limit. */
const JSON_BODY_LIMIT = 64 * 1024;

/**
 * TRUST_PROXY as Fastify's `trustProxy`. Fastify 5 reads a bare number as "trust no proxy" (a hop count cannot
 * tell a proxy from a client that reaches the console directly), so a hop count the operator chose is passed as
 * the equivalent trust function: the nearest `hops` addresses are proxies.
 */
export function fastifyTrustProxy(setting: TrustProxy): boolean | string[] | ((address: string, hop: number) => boolean) {
  if (typeof setting === 'number') return (_address, hop) => hop < setting;
  return typeof setting === 'boolean' ? setting : [...setting];
}

export async function buildConsole(ctx: Context, options: ConsoleOptions): Promise<FastifyInstance> {
  // Fastify's logger stays off: request logs would carry query strings (?token= in demo mode) and file names.
  // trustProxy makes request.ip (login throttling) and request.protocol (Secure cookie) those the proxy saw.
  const app = Fastify({ logger: false, bodyLimit: JSON_BODY_LIMIT, trustProxy: fastifyTrustProxy(ctx.config.trustProxy) });
  registerErrorHandling(app, ctx.logger);
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff').header('referrer-policy', 'no-referrer').header('x-frame-options', 'DENY');
    return payload;
  });
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 }, (_request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(String(body))));
  });
  // One file per upload; the limit is enforced while streaming, before anything reaches the disk in full.
  await app.register(multipart, { limits: { fileSize: ctx.config.maxFileMb * MIB, files: 1, fields: 10, fieldSize: 4096, parts: 12 } });
  const operators = makeOperatorList({
    ...(options.token === undefined ? {} : { token: options.token }),
    ...(ctx.config.consoleUsersFile === undefined ? {} : { usersFile: ctx.config.consoleUsersFile }),
    logger: ctx.logger,
  });
  const auth = makeConsoleAuth(operators, await loadSessionKey(ctx.redis, ctx.keys.consoleSessionKey));
  registerAuth(app, auth, { tokenInUrl: options.tokenInUrl === true, audit: ctx.audit, logger: ctx.logger });
  registerHealth(app, ctx);
  const metrics = makeConsoleMetrics(ctx);
  app.get('/metrics', async (_request, reply) =>
    reply
      .type(metrics.contentType)
      .header('cache-control', 'no-store')
      .send(await metrics.render()),
  );
  registerPage(app);
  registerBatchRoutes(app, ctx);
  registerScheduleRoutes(app, ctx);
  registerAuditRoutes(app, ctx);
  registerEventStream(app, ctx, {
    ...(options.progressPollMs === undefined ? {} : { pollMs: options.progressPollMs }),
    ...(options.maxEventStreams === undefined ? {} : { maxStreams: options.maxEventStreams }),
  });
  await registerBullBoard(app, ctx);
  return app;
}

export async function startConsole(ctx: Context, options: ConsoleOptions): Promise<RunningConsole> {
  const worker: RunningWorker | undefined = options.worker === false ? undefined : startWorker(ctx, options.worker);
  let app: FastifyInstance;
  try {
    app = await buildConsole(ctx, options);
    await app.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 3000 });
  } catch (error) {
    await worker?.close();
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const host = options.host ?? '127.0.0.1';
  const shownHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  return {
    url: `http://${shownHost}:${port}`,
    app,
    close: async () => {
      await app.close();
      await worker?.close();
    },
  };
}
