/**
 * `serve`: the web console and HTTP API (src/console/), with an in-process worker unless --no-worker.
 * Refuses to start without CONSOLE_TOKEN, except `--demo` on a loopback address, which makes a throwaway
 * token and prints a URL that logs straight in.
 */
import { randomBytes } from 'node:crypto';

import type { Flags } from '../args.js';
import { ConfigError, UsageError } from '../../domain/errors.js';
import type { Context } from '../../runtime/context.js';
import type { ConsoleHandle } from '../../app/console-port.js';
import { registerShutdown } from '../../runtime/shutdown.js';
import { configFrom, type Io, openContext } from './common.js';

export const DEFAULT_CONSOLE_PORT = 3000;
const DEFAULT_HOST = '127.0.0.1';

export interface ServeOptions {
  readonly host: string;
  readonly port: number;
  readonly demo: boolean;
  readonly worker: boolean;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

export function serveOptions(flags: Flags): ServeOptions {
  const port = flags.port === undefined ? DEFAULT_CONSOLE_PORT : Number(flags.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`Expected \`--port\` to be a port number, got \`${flags.port}\``);
  return { host: flags.host ?? DEFAULT_HOST, port, demo: flags.demo === true, worker: flags['no-worker'] !== true };
}

/**
 * The console token to use (none when only CONSOLE_USERS_FILE's operators log in), and whether we made it up
 * (demo only).
 */
export function consoleToken(configured: string | undefined, options: ServeOptions, usersFile?: string): { token: string | undefined; generated: boolean } {
  if (options.demo && !isLoopback(options.host)) {
    throw new UsageError(`--demo only binds to a loopback address (127.0.0.1, ::1, localhost), not ${options.host}: set CONSOLE_TOKEN to serve on a network`);
  }
  if (configured !== undefined || usersFile !== undefined) return { token: configured, generated: false };
  if (options.demo) return { token: randomBytes(24).toString('base64url'), generated: true };
  throw new ConfigError(
    'CONSOLE_TOKEN (or CONSOLE_TOKEN_FILE) is not set, nor CONSOLE_USERS_FILE: the console needs an access token (e.g. export CONSOLE_TOKEN=$(openssl rand -hex 24)) or named operators (bulk-unassign console-user add <name>), or use --demo on loopback',
  );
}

async function listen(ctx: Context, options: ServeOptions, token: { token: string | undefined; generated: boolean }, io: Io): Promise<ConsoleHandle> {
  try {
    return await io.startConsole(ctx, {
      ...(token.token === undefined ? {} : { token: token.token }),
      host: options.host,
      port: options.port,
      worker: options.worker ? io.jobs : false,
      tokenInUrl: token.generated,
    });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new UsageError(`port ${options.port} on ${options.host} is in use: pick another with --port`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new UsageError(`cannot listen on ${options.host}: not an address of this machine`);
    throw error;
  }
}

/** Serves the console on an open context until SIGINT/SIGTERM, then closes it (the context stays the caller's). */
export async function serveUntilSignal(ctx: Context, options: ServeOptions, io: Io): Promise<void> {
  const token = consoleToken(ctx.config.consoleToken, options, ctx.config.consoleUsersFile);
  const running = await listen(ctx, options, token, io);
  const where = options.worker
    ? `with a worker (limit ${ctx.config.rateLimitMax} per ${ctx.config.rateLimitDurationMs} ms, global)`
    : 'without a worker (--no-worker)';
  io.err(`console listening on ${running.url} ${where}; Bull Board at ${running.url}/admin/queues; Ctrl-C stops it`);
  // The generated token is printed once, to the terminal that started the demo; it is never stored or served.
  if (token.generated) io.out(`open ${running.url}/login?token=${token.token}`);
  await new Promise<void>((resolve) => {
    registerShutdown({ graceMs: ctx.config.requestTimeoutMs + 5000, log: io.err, onSignal: async () => resolve() });
  });
  await running.close();
  io.err('console stopped');
}

export async function cmdServe(_args: readonly string[], flags: Flags, io: Io): Promise<number> {
  const options = serveOptions(flags);
  const config = configFrom(flags, io);
  consoleToken(config.consoleToken, options, config.consoleUsersFile); // refuse before touching Redis
  if (options.worker && config.apiKey === undefined) {
    throw new ConfigError('DOUBLETICK_API_KEY is not set, and the console runs a worker: set the key, or pass --no-worker when workers run elsewhere');
  }
  const ctx = await openContext(config);
  try {
    await serveUntilSignal(ctx, options, io);
    return 0;
  } finally {
    await ctx.close();
  }
}
