/**
 * The inbox source of a schedule, through `bulk-unassign schedule run-now` (a CLI subprocess) with an
 * in-process worker: every *.csv becomes a batch and moves to processed/; a file that cannot run moves to
 * rejected/ with <file>.error.txt saying why; other files are left alone.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from '@jest/globals';

import { localDate } from '../../src/schedule/run.js';
import { makeTestEnv, phones, type TestEnv } from '../helpers/harness.js';
import { killAllChildren, spawnCli } from '../helpers/processes.js';

const WABA = '919000000000';
let env: TestEnv | undefined;
afterEach(async () => {
  await killAllChildren();
  await env?.cleanup();
  env = undefined;
});

async function cli(args: string[], extraEnv: Record<string, string> = {}): Promise<{ code: number | null; output: string }> {
  const child = spawnCli(env!, args, extraEnv);
  const { code } = await child.exited;
  return { code, output: child.output() };
}

describe('schedule inbox source', () => {
  it('makes a batch per CSV, moves it to processed/; unreadable files go to rejected/ with a .error.txt', async () => {
    env = await makeTestEnv();
    const inbox = join(env.dir, 'inbox');
    mkdirSync(join(inbox, 'sub'), { recursive: true });
    const good = phones(4, 0);
    const noWaba = phones(3, 10);
    const files: Record<string, string | Buffer> = {
      'good.csv': `customerPhoneNumber,wabaNumber\n${good.map((p) => `+${p},${WABA}`).join('\n')}\n`,
      'nowaba.csv': `phone\n${noWaba.join('\n')}\n`,
      'broken.csv': 'phone\n919812345678\n"919812345679\n919812345680\n',
      'novalid.csv': 'phone\nnot-a-number\n12345\n',
      'sheet.csv': Buffer.from('PK\x03\x04 not really a csv', 'latin1'),
      'notes.txt': 'not a csv\n',
      '.hidden.csv': `phone\n${phones(1, 50)[0]}\n`,
      'sub/deep.csv': `phone\n${phones(1, 60)[0]}\n`,
    };
    for (const [name, body] of Object.entries(files)) writeFileSync(join(inbox, name), body);

    expect((await cli(['schedule', 'set', 'drop', '--cron', '0 3 * * *', '--tz', 'UTC', '--inbox', 'inbox', '--waba', WABA])).code).toBe(0);
    env.worker();
    const first = await cli(['schedule', 'run-now', 'drop', '--wait', '--json']);
    expect(first.code).toBe(0);
    const { run, batches } = JSON.parse(first.output.slice(0, first.output.lastIndexOf('}') + 1));
    expect(run).toMatchObject({ outcome: 'started', manual: true, message: 'inbox: 5 file(s), 2 batch(es), 3 rejected' });
    const date = localDate(run.tick, 'UTC');
    expect(batches.map((b: { name: string; status: string; counts: { succeeded: number } }) => [b.name, b.status, b.counts.succeeded])).toEqual([
      [`drop-${date} good.csv`, 'finished', 4],
      [`drop-${date} nowaba.csv`, 'finished', 3],
    ]);
    expect(batches.every((b: { kind: string }) => b.kind === 'nightly')).toBe(true);
    const expectedKeys = [...good, ...noWaba].map((p) => `p:${p}@${WABA}`).sort();
    expect(Object.keys(env.api.stats().unassigned).sort()).toEqual(expectedKeys);

    expect(readdirSync(join(inbox, 'processed')).sort()).toEqual(['good.csv', 'nowaba.csv']);
    expect(readdirSync(join(inbox, 'rejected')).sort()).toEqual([
      'broken.csv',
      'broken.csv.error.txt',
      'novalid.csv',
      'novalid.csv.error.txt',
      'sheet.csv',
      'sheet.csv.error.txt',
    ]);
    const error = (name: string): string => readFileSync(join(inbox, 'rejected', `${name}.error.txt`), 'utf8');
    expect(error('broken.csv')).toMatch(/^broken\.csv was not run: .*broken\.csv:3(:\d+)?: a quoted cell is never closed/);
    expect(error('novalid.csv')).toContain('no valid rows: 2 row(s) read, 2 rejected');
    expect(error('sheet.csv')).toContain('zip/Excel (.xlsx) file, not CSV');
    expect(error('sheet.csv')).toContain('scheduled run of "drop"');
    // Left alone: other extensions, dot files (half-copied drops), sub-folders.
    expect(readdirSync(inbox).sort()).toEqual(['.hidden.csv', 'notes.txt', 'processed', 'rejected', 'sub']);
    expect(existsSync(join(inbox, 'sub', 'deep.csv'))).toBe(true);

    // Nothing new: an empty run, no batch.
    const second = await cli(['schedule', 'run-now', 'drop']);
    expect(second.code).toBe(0);
    expect(second.output).toContain('run-now of schedule drop: empty — inbox: 0 file(s), 0 batch(es), 0 rejected');

    // The same name again lands beside the first (time-stamped), and the same content within
    // DUPLICATE_WINDOW_HOURS is rejected like a repeated upload.
    writeFileSync(join(inbox, 'good.csv'), files['good.csv'] as string);
    writeFileSync(join(inbox, 'again.csv'), `phone\n${phones(2, 20).join('\n')}\n`);
    writeFileSync(join(inbox, 'zcopy.csv'), `phone\n${phones(2, 20).join('\n')}\n`);
    const third = await cli(['schedule', 'run-now', 'drop', '--wait'], { DUPLICATE_WINDOW_HOURS: '24' });
    expect(third.code).toBe(0);
    expect(third.output).toContain('inbox: 3 file(s), 2 batch(es), 1 rejected');
    expect(readdirSync(join(inbox, 'processed')).filter((f) => /^good\.\d{8}T\d{9}Z\.csv$/.test(f))).toHaveLength(1);
    expect(readFileSync(join(inbox, 'rejected', 'zcopy.csv.error.txt'), 'utf8')).toMatch(/already run as batch \S+ within the last 24 h/);
  });

  it('--dry-run previews the sources: dry-run batches, no API call, no file moves, no run logged', async () => {
    env = await makeTestEnv();
    const inbox = join(env.dir, 'inbox');
    mkdirSync(inbox);
    writeFileSync(join(inbox, 'one.csv'), `phone\n${phones(3).join('\n')}\nbad\n`);
    expect((await cli(['schedule', 'set', '--cron', '0 3 * * *', '--inbox', inbox, '--waba', WABA])).code).toBe(0);
    const preview = await cli(['schedule', 'run-now', '--dry-run']);
    expect(preview.code).toBe(0);
    expect(preview.output).toContain('dry run of schedule nightly: inbox: 1 file(s), 1 batch(es), 0 rejected');
    expect(preview.output).toContain('would send 3 request(s) of POST /team-member/unassign');
    expect(readdirSync(inbox)).toEqual(['one.csv']);
    expect(env.api.stats().requests).toBe(0);
    const show = await cli(['schedule', 'show', '--json']);
    expect(JSON.parse(show.output)[0].runs).toEqual([]);
  });
});
