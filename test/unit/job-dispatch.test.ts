/**
 * The worker's one processor (`dispatch`): a job runs the processor of its name only when this build knows the
 * name and the job's data has that name's shape; anything else fails for good (UnrecoverableError: BullMQ does
 * not retry it) and no processor runs. No Redis: jobs are plain objects of the shape BullMQ hands a processor.
 */
import { describe, expect, it } from '@jest/globals';
import { type Job, UnrecoverableError } from 'bullmq';

import { dispatch, type Processor } from '../../src/execution/job-table.js';
import { decodeJobData, JOB_NAMES, type JobName } from '../../src/store/queue.js';

function jobOf(name: string, data: unknown): Job {
  return { id: '7', name, data } as unknown as Job;
}

/** A table whose processors record which one ran and answer their own name. */
function table(): { ran: string[]; processors: Record<JobName, Processor> } {
  const ran: string[] = [];
  const processors = Object.fromEntries(
    JOB_NAMES.map((name) => [
      name,
      async (job: Job, token?: string) => {
        ran.push(`${name}:${token ?? ''}:${job.id ?? ''}`);
        return name;
      },
    ]),
  ) as Record<JobName, Processor>;
  return { ran, processors };
}

const VALID: Readonly<Record<JobName, unknown>> = {
  unassign: { b: 'b1', k: 'p:919876543210@15550001111' },
  finalize: { b: 'b1' },
  nightly: { s: 'night', w: { since: 1_764_000_000_000, blockedBy: 'b0' } },
  notify: { summary: { batchId: 'b1', succeeded: 3 }, event: 'batch.finished' },
  'expire-approval': { b: 'b1' },
};

describe('dispatch', () => {
  it.each(JOB_NAMES)('%s with its data → its own processor, with the lock token', async (name) => {
    const { ran, processors } = table();
    await expect(dispatch(processors)(jobOf(name, VALID[name]), 'tok')).resolves.toBe(name);
    expect(ran).toEqual([`${name}:tok:7`]);
  });

  it.each(['unasign', 'Unassign', '', 'restore', '__proto__', 'constructor'])('unknown name %j → UnrecoverableError, nothing runs', async (name) => {
    const { ran, processors } = table();
    const run = dispatch(processors)(jobOf(name, VALID.unassign));
    await expect(run).rejects.toBeInstanceOf(UnrecoverableError);
    await expect(run).rejects.toThrow(`unknown job name ${JSON.stringify(name)}`);
    expect(ran).toEqual([]);
  });

  it.each([
    ['unassign', { b: 'b1' }, 'job 7 (unassign) data member "k": expected a string, got nothing'],
    ['unassign', { b: 1, k: 'x' }, 'member "b": expected a string, got number 1'],
    ['unassign', null, 'job 7 (unassign) data: expected a JSON object, got null'],
    ['unassign', ['b1', 'k'], 'expected a JSON object, got an array'],
    ['unassign', 'b1', 'expected a JSON object'],
    ['finalize', {}, 'member "b": expected a string, got nothing'],
    ['expire-approval', { batchId: 'b1' }, 'member "b": expected a string, got nothing'],
    ['nightly', { s: 3 }, 'member "s": expected a string, got number 3'],
    ['nightly', { s: 'night', w: { since: 'yesterday', blockedBy: 'b0' } }, 'member "w" member "since": expected an integer'],
    ['nightly', { s: 'night', w: 'b0' }, 'member "w": expected a JSON object'],
    ['notify', { summary: { succeeded: 3 } }, 'member "summary" member "batchId": expected a string, got nothing'],
    ['notify', { summary: { batchId: 'b1' }, event: 5 }, 'member "event": expected a string, got number 5'],
    ['notify', {}, 'member "summary": expected a JSON object, got nothing'],
  ] as const)('%s with data %j → UnrecoverableError naming the member, nothing runs', async (name, data, message) => {
    const { ran, processors } = table();
    const run = dispatch(processors)(jobOf(name, data));
    await expect(run).rejects.toBeInstanceOf(UnrecoverableError);
    await expect(run).rejects.toThrow(message);
    expect(ran).toEqual([]);
  });
});

describe('decodeJobData', () => {
  it.each(JOB_NAMES)('%s: this build’s data reads back equal', (name) => {
    expect(decodeJobData(name, VALID[name], 'job')).toEqual(VALID[name]);
  });

  it('keeps only the known members (an own "__proto__" member stays a plain field of nothing)', () => {
    const data = JSON.parse('{"b":"b1","k":"g:1","__proto__":{"polluted":true},"extra":1}') as unknown;
    const decoded = decodeJobData('unassign', data, 'job');
    expect(decoded).toEqual({ b: 'b1', k: 'g:1' });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('a nightly job without a wait has no `w`', () => {
    expect(decodeJobData('nightly', { s: 'night' }, 'job')).toEqual({ s: 'night' });
  });
});
