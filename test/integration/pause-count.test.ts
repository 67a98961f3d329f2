/**
 * `pause` says how many waiting chats it took off the queue. BullMQ's remove answers 1 for a job that does not
 * exist too, so counting its answers reported every unfinished chat, even for an empty queue.
 */
import { afterEach, describe, expect, it } from '@jest/globals';

import { pauseBatch } from '../../src/ops/batch-control.js';
import { jobIdFor } from '../../src/store/queue.js';
import { simpleCsv } from '../helpers/accounting.js';
import { makeTestEnv, phones, type TestEnv } from '../helpers/harness.js';
import { TEST_ACTOR } from '../helpers/actor.js';

let env: TestEnv | undefined;
afterEach(async () => {
  await env?.cleanup();
  env = undefined;
});

describe('pause', () => {
  it('counts only the jobs that were on the queue', async () => {
    env = await makeTestEnv();
    const { text, chatKeys } = simpleCsv(phones(30), '919000000000');
    const batch = await env.ingestCsv(env.csv('chats.csv', text));
    // 12 chats lose their job (as a crash could leave them): 18 are really waiting.
    for (const chatKey of chatKeys.slice(0, 12)) await env.ctx.queue.remove(jobIdFor(batch.id, chatKey));
    expect(await pauseBatch(env.ctx, batch.id, TEST_ACTOR)).toBe(18);
    for (const chatKey of chatKeys) expect(await env.ctx.queue.getJobState(jobIdFor(batch.id, chatKey))).toBe('unknown');
  });
});
