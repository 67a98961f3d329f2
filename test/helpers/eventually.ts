/**
 * The one polling primitive of the test suite (no bare sleeps). Every "wait until …" helper
 * (harness `waitFor`, schedule `waitFor`/`waitForRuns`, cluster readiness, console status polls …) is built on it.
 *
 *   const batch = await eventually(async () => {
 *     const b = await ctx.batches.require(id);
 *     return b.done >= 10 && b;
 *   }, { message: `batch ${id} to make progress` });
 *
 * `fn` is called at once, then every `intervalMs` until it returns a truthy value (which is returned) or stops
 * throwing (so `expect(...)` inside `fn` works too: the last assertion error is what the timeout reports).
 * On timeout it throws an Error naming `message`, the time waited and the last value or error (as `cause`).
 * No dependency on Redis, Jest or the code under test: usable from every tier.
 */
import { inspect } from 'node:util';

export interface EventuallyOptions {
  /** Give up after this long (measured from the first call). @default 5000 */
  readonly timeoutMs?: number;
  /** Pause between two calls. @default 50 */
  readonly intervalMs?: number;
  /** What was waited for, for the timeout error ("batch x to finish"); a function is called only on timeout. */
  readonly message?: string | (() => string);
}

/** What `fn` may return: the falsy values mean "not yet". */
type Falsy = false | 0 | '' | null | undefined;

const MAX_DESCRIBED_CHARS = 600;

function describeValue(value: unknown): string {
  const text = inspect(value, { depth: 4, breakLength: Infinity, maxArrayLength: 20, maxStringLength: 200 });
  return text.length > MAX_DESCRIBED_CHARS ? `${text.slice(0, MAX_DESCRIBED_CHARS)}…` : text;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `fn` until it returns a truthy value (returned) or does not throw; see the module comment. */
export async function eventually<T>(fn: () => T | Promise<T>, options: EventuallyOptions = {}): Promise<Exclude<T, Falsy>> {
  const { timeoutMs = 5000, intervalMs = 50 } = options;
  const started = Date.now();
  let last: { kind: 'value'; value: unknown } | { kind: 'error'; error: unknown } | undefined;
  let calls = 0;
  for (;;) {
    calls += 1;
    try {
      const value = await fn();
      if (value) return value as Exclude<T, Falsy>;
      last = { kind: 'value', value };
    } catch (error) {
      last = { kind: 'error', error };
    }
    const waited = Date.now() - started;
    if (waited >= timeoutMs) {
      const what = typeof options.message === 'function' ? options.message() : (options.message ?? 'a condition');
      const lastText =
        last.kind === 'value'
          ? `last value: ${describeValue(last.value)}`
          : `last error: ${last.error instanceof Error ? last.error.message : describeValue(last.error)}`;
      throw new Error(
        `timed out after ${waited} ms (${calls} tries) waiting for ${what}; ${lastText}`,
        last.kind === 'error' ? { cause: last.error } : undefined,
      );
    }
    await sleep(Math.min(intervalMs, Math.max(0, timeoutMs - waited)));
  }
}
