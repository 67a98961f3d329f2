/**
 * What the CLI needs of the web console: start it on a context and stop it again. The console implements it
 * (src/console/server.ts) and the entry point hands it to the CLI, so neither adapter imports the other.
 */
import type { JobTable } from '../execution/job-table.js';
import type { Context } from '../runtime/context.js';

export interface ConsoleOptions {
  /**
   * The shared secret (CONSOLE_TOKEN, operator `console`); with CONSOLE_USERS_FILE set it may be left out, and
   * each operator uses their own token. Every route but /healthz and /login requires one of them.
   */
  readonly token?: string;
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** @default 3000; 0 picks a free port. */
  readonly port?: number;
  /** The job table of a worker to run in this process, or false for none (workers run elsewhere). */
  readonly worker: JobTable | false;
  /** Accept `/login?token=` (only for --demo on loopback). @default false */
  readonly tokenInUrl?: boolean;
  /** How often a progress stream reads its batch, ms. @default 1000 */
  readonly progressPollMs?: number;
  /** Live progress streams open at once; more are answered 503 with Retry-After. @default 100 */
  readonly maxEventStreams?: number;
}

export interface ConsoleHandle {
  readonly url: string;
  /** Stops the server (open progress streams included), then the worker (jobs in flight finish). */
  close(): Promise<void>;
}

export type StartConsole = (ctx: Context, options: ConsoleOptions) => Promise<ConsoleHandle>;
