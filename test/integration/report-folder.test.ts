/**
 * A reports folder that cannot be written never holds a batch: the batch ends `finished` with a note saying
 * the report was not written and why, `run` exits 2 naming the path (an environment error, not an internal
 * one), `report <id>` exits 2 the same way while the folder is bad, and writes the report once it is good.
 * The bad folder is a path under a regular file (ENOTDIR), which refuses even root.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';

import { Status } from '../../src/domain/lifecycle.js';
import { makeTestEnv, phones, type TestEnv } from '../helpers/harness.js';
import { killAllChildren, spawnCli } from '../helpers/processes.js';

const WABA = '919000000000';
let env: TestEnv;

beforeAll(async () => {
  env = await makeTestEnv();
});
afterEach(async () => killAllChildren());
afterAll(async () => env.cleanup());

describe('an unwritable REPORTS_DIR', () => {
  it('finishes the batch, exits 2 naming the path, and `report` writes it later', async () => {
    const blocker = join(env.dir, 'not-a-folder');
    writeFileSync(blocker, 'a file where the reports folder should be');
    const badDir = join(blocker, 'reports');
    const csv = env.csv('chats.csv', ['customerPhoneNumber,wabaNumber', ...phones(20).map((p) => `${p},${WABA}`)].join('\n'));

    const run = spawnCli(env, ['run', csv, '--quiet'], { REPORTS_DIR: badDir });
    const exit = await run.exited;
    expect(exit.code).toBe(2);
    expect(run.output()).toContain(badDir);
    expect(run.output()).not.toContain('internal error');

    const [batch] = await env.ctx.batches.list(1);
    expect(batch?.status).toBe(Status.finished);
    expect(batch?.counts.succeeded).toBe(20);
    expect(batch?.notes.some((n) => n.startsWith('report not written when the batch finished: ') && n.includes('ENOTDIR'))).toBe(true);

    const stillBad = spawnCli(env, ['report', batch?.id ?? ''], { REPORTS_DIR: badDir });
    expect((await stillBad.exited).code).toBe(2);
    expect(stillBad.output()).toContain(badDir);

    const goodDir = join(env.dir, 'reports-later');
    const later = spawnCli(env, ['report', batch?.id ?? ''], { REPORTS_DIR: goodDir });
    expect((await later.exited).code).toBe(0);
    expect(existsSync(join(goodDir, batch?.id ?? '', 'summary.json'))).toBe(true);
    // The report written later tells what happened at the finish, not that it (this very file) does not exist.
    const summary = readFileSync(join(goodDir, batch?.id ?? '', 'summary.md'), 'utf8');
    expect(summary).toContain('report not written when the batch finished: ');
    expect(summary).not.toMatch(/report not written: /);
  });
});
