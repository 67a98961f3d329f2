/**
 * src/execution/call-slots.ts: how many jobs a worker holds for its WORKER_CONCURRENCY, and the slots that keep
 * its calls in flight at that number.
 */
import { describe, expect, it } from '@jest/globals';

import { CallSlotWithdrawnError, jobsHeldFor, makeCallSlots } from '../../src/execution/call-slots.js';

/** A step that runs until `finish` is called, noting when it started. */
function heldStep(started: string[], name: string): { step: () => Promise<string>; finish: (fail?: boolean) => void } {
  let finish: (fail?: boolean) => void = () => undefined;
  const step = (): Promise<string> => {
    started.push(name);
    return new Promise<string>((resolve, reject) => {
      finish = (fail) => (fail ? reject(new Error(`${name} failed`)) : resolve(name));
    });
  };
  return { step, finish: (fail) => finish(fail) };
}

/** Lets every queued continuation run. */
const settle = async (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('jobsHeldFor', () => {
  it('holds a quarter more jobs than calls, at least one more', () => {
    expect([1, 2, 4, 5, 16, 100].map(jobsHeldFor)).toEqual([2, 3, 5, 7, 20, 125]);
  });
});

describe('makeCallSlots', () => {
  it('runs at most `n` steps at once; the next waiting step starts, in arrival order, when one ends, failed or not', async () => {
    const slots = makeCallSlots(2);
    const started: string[] = [];
    const steps = ['a', 'b', 'c', 'd'].map((name) => heldStep(started, name));
    const results = steps.map(({ step }) => slots.take(step).catch((error: unknown) => (error as Error).message));
    await settle();
    expect(started).toEqual(['a', 'b']);

    steps[1]!.finish(true);
    await settle();
    expect(started).toEqual(['a', 'b', 'c']);

    steps[0]!.finish();
    await settle();
    expect(started).toEqual(['a', 'b', 'c', 'd']);

    steps[2]!.finish();
    steps[3]!.finish();
    await expect(Promise.all(results)).resolves.toEqual(['a', 'b failed', 'c', 'd']);
  });

  it('withdrawWaiting: the steps holding a slot finish; the waiting ones and any asked for later never run and are refused', async () => {
    const slots = makeCallSlots(1);
    const started: string[] = [];
    const [running, waiting] = ['running', 'waiting'].map((name) => heldStep(started, name));
    const first = slots.take(running!.step);
    const second = slots.take(waiting!.step);
    await settle();
    slots.withdrawWaiting();
    await expect(second).rejects.toBeInstanceOf(CallSlotWithdrawnError);
    await expect(slots.take(async () => 'late')).rejects.toBeInstanceOf(CallSlotWithdrawnError);
    running!.finish();
    await expect(first).resolves.toBe('running');
    expect(started).toEqual(['running']);
  });

  it("a step's own failure is its own, never mistaken for a withdrawal", async () => {
    const slots = makeCallSlots(1);
    const failing = slots.take(async () => {
      slots.withdrawWaiting();
      throw Object.assign(new Error('aborted by the step'), { name: 'AbortError' });
    });
    await expect(failing).rejects.toThrow('aborted by the step');
  });
});
