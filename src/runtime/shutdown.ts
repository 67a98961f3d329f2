/**
 * Two-stage shutdown: the first SIGINT/SIGTERM asks for a graceful stop (stop taking jobs,
 * let the ones in flight finish or release them); a second signal, or the grace period running out, forces
 * the exit. Registering twice is a no-op.
 */
export interface ShutdownOptions {
  /** Graceful work to do on the first signal. */
  readonly onSignal: (signal: NodeJS.Signals) => Promise<void>;
  /** Hard deadline after the first signal, ms. */
  readonly graceMs: number;
  readonly log: (message: string) => void;
  /** Exit code used when forced. */
  readonly forcedExitCode?: number;
}

let registered = false;

export function registerShutdown(options: ShutdownOptions): void {
  if (registered) return;
  registered = true;
  let stopping = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (stopping) {
      options.log(`${signal} again: forcing exit`);
      process.exit(options.forcedExitCode ?? 130);
    }
    stopping = true;
    options.log(`${signal}: finishing jobs in flight (up to ${Math.round(options.graceMs / 1000)} s); press Ctrl-C again to force`);
    // The watchdog is unref'd: it never keeps a process alive that is otherwise done.
    setTimeout(() => {
      options.log('grace period over: forcing exit');
      process.exit(options.forcedExitCode ?? 130);
    }, options.graceMs).unref();
    void options.onSignal(signal).catch((error: unknown) => {
      options.log(`shutdown failed: ${String(error)}`);
      process.exit(options.forcedExitCode ?? 130);
    });
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}
