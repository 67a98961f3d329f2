/** test/helpers/eventually.ts, the one polling primitive of the suite: what it returns, retries and reports. */
import { describe, expect, it } from '@jest/globals';

import { eventually } from '../helpers/eventually.js';

/** A getter that answers `values` in turn (the last one forever), counting its calls. */
function sequence<T>(values: readonly (T | Error)[]): { fn: () => Promise<T>; calls: () => number } {
  let calls = 0;
  return {
    fn: async () => {
      const value = values[Math.min(calls, values.length - 1)] as T | Error;
      calls += 1;
      if (value instanceof Error) throw value;
      return value;
    },
    calls: () => calls,
  };
}

describe('eventually', () => {
  it.each([
    ['true at once', [true], true, 1],
    ['an object after two falsy values', [false, undefined, { id: 1 }], { id: 1 }, 3],
    ['a non-empty array after an empty string and 0', ['', 0, [1]], [1], 3],
    ['a value after two throws', [new Error('a'), new Error('b'), 'ok'], 'ok', 3],
  ] as const)('%s → returns it', async (_name, values, expected, calls) => {
    const s = sequence<unknown>(values as readonly unknown[]);
    expect(await eventually(s.fn, { intervalMs: 1 })).toEqual(expected);
    expect(s.calls()).toBe(calls);
  });

  it('works with a synchronous predicate', async () => {
    let n = 0;
    expect(await eventually(() => (n += 1) >= 3, { intervalMs: 1 })).toBe(true);
    expect(n).toBe(3);
  });

  it.each([
    ['a falsy value', [false], /waiting for the thing; last value: false$/],
    ['null', [null], /last value: null$/],
    ['a thrown error', [new Error('expected 3 to be 4')], /waiting for the thing; last error: expected 3 to be 4$/],
  ] as const)('times out on %s, naming what it waited for and the last outcome', async (_name, values, pattern) => {
    const s = sequence<unknown>(values as readonly unknown[]);
    const started = Date.now();
    const error = (await eventually(s.fn, { timeoutMs: 60, intervalMs: 10, message: 'the thing' }).catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toMatch(/^timed out after \d+ ms \(\d+ tries\) /);
    expect(error.message).toMatch(pattern);
    expect(Date.now() - started).toBeGreaterThanOrEqual(55);
    expect(s.calls()).toBeGreaterThan(1);
    if (values[0] instanceof Error) expect(error.cause).toBe(values[0]);
  });

  it('evaluates a message function only on timeout, with the state of then', async () => {
    let state = 'starting';
    let asked = 0;
    const message = (): string => ((asked += 1), `state ${state}`);
    await expect(
      eventually(
        () => {
          state = 'still going';
          return false;
        },
        { timeoutMs: 20, intervalMs: 5, message },
      ),
    ).rejects.toThrow(/waiting for state still going; last value: false/);
    expect(asked).toBe(1);
  });

  it('calls at least once even with a zero timeout, and never sleeps past the deadline', async () => {
    const s = sequence([false]);
    const started = Date.now();
    await expect(eventually(s.fn, { timeoutMs: 0, intervalMs: 1000 })).rejects.toThrow(/waiting for a condition/);
    expect(s.calls()).toBe(1);
    expect(Date.now() - started).toBeLessThan(500);
  });

  it('keeps a long last outcome short in the message (a thrown non-Error, say)', async () => {
    const error = (await eventually(
      () => {
        // eslint-disable-next-line @typescript-eslint/only-throw-error -- a thrown non-Error is the case under test
        throw { body: 'x'.repeat(5000) };
      },
      { timeoutMs: 0 },
    ).catch((e: unknown) => e)) as Error;
    expect(error.message).toMatch(/last error: \{ body: 'x+/);
    expect(error.message.length).toBeLessThan(1000);
  });
});
