/**
 * src/ingest/enqueue.ts `enqueueStaged` from source: the staged chat keys become jobs in file order, in chunks,
 * with at most CHUNKS_IN_FLIGHT `addBulk` calls out at once, and after a failed `addBulk` no further chunk is
 * taken. Redis is an in-memory list (LLEN / LRANGE / DEL) and the queue a recorder whose `addBulk` calls the test
 * answers one by one, so what is in flight at each moment is known. No Redis, no BullMQ queue.
 */
import { describe, expect, it } from '@jest/globals';

import { CHUNKS_IN_FLIGHT, ENQUEUE_CHUNK_SIZE, enqueueStaged, type IngestDeps } from '../../src/ingest/enqueue.js';
import { makeKeys } from '../../src/store/keys.js';
import { JOB_UNASSIGN, unassignJobOptions } from '../../src/store/queue.js';

const BATCH = 'b1';
const POLICY = { maxAttempts: 3, backoffDelayMs: 1000 };
const keys = makeKeys('test');
const ORDER = keys.batch(BATCH).order;

interface AddBulkCall {
  readonly jobs: readonly { name: string; data: { b: string; k: string }; opts: unknown }[];
  readonly answer: (error?: Error) => void;
}

/** The staged order list in memory, and a queue whose `addBulk` calls wait until the test answers them. */
function harness(staged: number) {
  const list = new Map<string, string[]>([[ORDER, Array.from({ length: staged }, (_, i) => `p:${910_000_000_000 + i}@919000000000`)]]);
  const calls: AddBulkCall[] = [];
  const ranges: number[] = [];
  let waiting: (() => void) | undefined;
  const redis = {
    llen: async (key: string) => list.get(key)?.length ?? 0,
    lrange: async (key: string, start: number, stop: number) => {
      ranges.push(start);
      return (list.get(key) ?? []).slice(start, stop + 1);
    },
    del: async (key: string) => Number(list.delete(key)),
  };
  const queue = {
    addBulk: (jobs: AddBulkCall['jobs']) =>
      new Promise<unknown[]>((resolve, reject) => {
        calls.push({ jobs, answer: (error) => (error ? reject(error) : resolve([])) });
        waiting?.();
      }),
  };
  const deps = { redis, keys, queue, policy: POLICY } as unknown as IngestDeps;
  /** Resolves once `n` addBulk calls have been made in all. */
  const callsMade = async (n: number): Promise<void> => {
    while (calls.length < n) await new Promise<void>((resolve) => (waiting = resolve));
  };
  const inFlight = (): number => calls.filter((c) => !answered.has(c)).length;
  const answered = new Set<AddBulkCall>();
  const answer = (call: AddBulkCall, error?: Error): void => {
    answered.add(call);
    call.answer(error);
  };
  return { list, calls, ranges, deps, callsMade, inFlight, answer };
}

describe('enqueueStaged', () => {
  it(`adds every staged chat once, in file order, ${ENQUEUE_CHUNK_SIZE} per addBulk, never more than ${CHUNKS_IN_FLIGHT} calls out at once`, async () => {
    const chats = ENQUEUE_CHUNK_SIZE * (CHUNKS_IN_FLIGHT + 3) + 7; // a short last chunk
    const h = harness(chats);
    const staged = [...h.list.get(ORDER)!];
    const progress: number[] = [];
    const done = enqueueStaged(h.deps, BATCH, (n) => progress.push(n));
    const chunks = Math.ceil(chats / ENQUEUE_CHUNK_SIZE);
    let maxInFlight = 0;
    for (let answeredCount = 0; answeredCount < chunks; answeredCount += 1) {
      await h.callsMade(Math.min(chunks, answeredCount + CHUNKS_IN_FLIGHT));
      maxInFlight = Math.max(maxInFlight, h.inFlight());
      h.answer(h.calls[answeredCount]!);
    }
    expect(await done).toBe(chats);
    expect(maxInFlight).toBe(CHUNKS_IN_FLIGHT);
    expect(h.calls).toHaveLength(chunks);
    // Every chat once, each with its file position; the chunks are the file's consecutive slices.
    const jobs = h.calls.flatMap((c) => c.jobs);
    expect(jobs.map((j) => j.data.k)).toEqual(staged);
    jobs.forEach((job, position) => {
      expect(job).toEqual({
        name: JOB_UNASSIGN,
        data: { b: BATCH, k: staged[position] },
        opts: unassignJobOptions(BATCH, staged[position]!, position, POLICY),
      });
    });
    expect(h.calls.map((c) => c.jobs.length)).toEqual([...Array.from({ length: chunks - 1 }, () => ENQUEUE_CHUNK_SIZE), chats % ENQUEUE_CHUNK_SIZE]);
    expect(progress.at(-1)).toBe(chats);
    expect(h.list.has(ORDER)).toBe(false); // the staging list goes once every chat has its job
  });

  it('after a failed addBulk takes no further chunk, and throws only once the chunks already sent are answered', async () => {
    const h = harness(ENQUEUE_CHUNK_SIZE * (CHUNKS_IN_FLIGHT * 3));
    let settled = false;
    const done = enqueueStaged(h.deps, BATCH).finally(() => (settled = true));
    const outcome = done.then(
      () => 'resolved',
      (error: unknown) => error,
    );
    await h.callsMade(CHUNKS_IN_FLIGHT);
    const failure = new Error('OOM command not allowed when used memory > maxmemory');
    h.answer(h.calls[0]!, failure);
    // The others are still out: nothing is thrown yet, and no new chunk is read or sent meanwhile.
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(settled).toBe(false);
    for (const call of h.calls.slice(1)) h.answer(call);
    expect(await outcome).toBe(failure);
    expect(h.calls).toHaveLength(CHUNKS_IN_FLIGHT);
    expect(h.ranges).toEqual(Array.from({ length: CHUNKS_IN_FLIGHT }, (_, i) => i * ENQUEUE_CHUNK_SIZE));
    expect(h.list.has(ORDER)).toBe(true); // kept: the caller deletes the batch and its staging
  });
});
