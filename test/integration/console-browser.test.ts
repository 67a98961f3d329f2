/**
 * In a real browser: Debian's chromium (headless, driven by playwright-core; no browser download)
 * logs in, drops fixtures/console.csv on the upload zone, watches the batch finish, downloads failed.csv and
 * presses Rerun; then creates, previews and runs a schedule from its page, and feeds the failed-chats filter into a
 * rerun; then uploads with "capture agents" and restores the batch, rejects and approves a held scheduled batch,
 * and reads the Audit page. Leaves screenshots of every page in test-artifacts/ (console-*.png; -narrow at 360 px).
 *
 * Without /usr/bin/chromium the test is SKIPPED, loudly — install it with `apt-get install -y chromium`
 * (.ci/run does). It never passes without having driven the browser.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type Browser, chromium } from 'playwright-core';

import { CONSOLE_TOKEN, FIXTURE, FIXTURE_FAULTS, fixturePhone, fixtureText, startTestConsole, type TestConsole } from '../helpers/console.js';
import { makeTestEnv, type TestEnv } from '../helpers/harness.js';
import { killAllChildren } from '../helpers/processes.js';
import { eventually } from '../helpers/eventually.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) {
  const bar = '!'.repeat(100);
  console.warn(
    `\n${bar}\n!! console-browser.test.ts SKIPPED: no chromium at ${CHROMIUM}.\n!! Install it (apt-get install -y chromium) or set CHROMIUM_PATH; the web console was NOT tested in a browser.\n${bar}\n`,
  );
}
const browserIt = hasChromium ? it : it.skip;

describe('web console in a browser', () => {
  let env: TestEnv;
  let con: TestConsole;
  let browser: Browser | undefined;
  /** The fixture's batch of the first test, whose failed chats the second one filters. */
  let parentId = '';
  beforeAll(async () => {
    if (!hasChromium) return;
    env = await makeTestEnv({ api: { faults: FIXTURE_FAULTS, seedChats: 30 }, config: { maxAttempts: 2, rateLimitMax: 20, rateLimitDurationMs: 1000 } });
    con = await startTestConsole(env);
    // --no-sandbox: CI containers run as root, where chromium's sandbox cannot start.
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  });
  afterAll(async () => {
    await browser?.close();
    await con?.close();
    await killAllChildren();
    await env?.cleanup();
  });

  /**
   * A logged-out page that records its errors and its dialogs: every action asks first (confirm, accepted here);
   * any other dialog (an alert()) would be an injection. `logIn` uses the console token; `shoot` writes a
   * full-page screenshot into test-artifacts/.
   */
  async function watchedPage(options: Parameters<Browser['newContext']>[0]) {
    const context = await (browser as Browser).newContext(options);
    const page = await context.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(message.text());
    });
    const confirms: string[] = [];
    let others = 0;
    page.on('dialog', (dialog) => {
      if (dialog.type() === 'confirm') confirms.push(dialog.message());
      else others += 1;
      void dialog.accept();
    });
    mkdirSync(ARTIFACTS, { recursive: true });
    return {
      context,
      page,
      pageErrors,
      confirms,
      otherDialogs: (): number => others,
      shoot: async (name: string): Promise<void> => {
        await page.screenshot({ path: `${ARTIFACTS}console-${name}.png`, fullPage: true });
      },
      logIn: async (): Promise<void> => {
        await page.goto(`${con.url}/login`);
        await page.fill('#token', CONSOLE_TOKEN);
        await Promise.all([page.waitForURL(`${con.url}/`), page.click('button[type=submit]')]);
      },
    };
  }

  browserIt('uploads by drag and drop, shows the batch finish, downloads failed.csv, reruns', async () => {
    const { context, page, pageErrors, confirms, otherDialogs, shoot } = await watchedPage({ acceptDownloads: true, viewport: { width: 1280, height: 1000 } });

    // Not logged in: the page sends us to the login form.
    await page.goto(con.url);
    expect(new URL(page.url()).pathname).toBe('/login');
    await shoot('login');
    await page.fill('#token', CONSOLE_TOKEN);
    await Promise.all([page.waitForURL(`${con.url}/`), page.click('button[type=submit]')]);
    const cookies = await context.cookies();
    expect(cookies.map((c) => [c.name, c.httpOnly, c.sameSite])).toEqual([['bu_console', true, 'Strict']]);

    // Drop the fixture on the drop zone, as a user dragging a file would.
    await page.waitForSelector('#drop-zone');
    // Page-side code as strings: the tests compile without the DOM library.
    const drop = await page.evaluateHandle(
      `(() => { const t = new DataTransfer(); t.items.add(new File([${JSON.stringify(fixtureText())}], 'console.csv', { type: 'text/csv' })); return t; })()`,
    );
    await page.dispatchEvent('#drop-zone', 'dragenter', { dataTransfer: drop });
    await page.dispatchEvent('#drop-zone', 'drop', { dataTransfer: drop });
    await expect(page.textContent('#chosen-file')).resolves.toContain('console.csv');
    await page.fill('input[name=name]', '<b>fixture</b> <img src=x onerror=alert(1)>');
    await page.click('#upload-button');

    // The batch page follows it live until it finishes.
    await page.waitForSelector('#b-status[data-status="finished"]', { timeout: 30_000 });
    parentId = (await page.textContent('#b-id')) as string;
    expect(await page.textContent('#b-name')).toBe('<b>fixture</b> <img src=x onerror=alert(1)>');
    expect(await page.locator('#b-name b, #b-name img, #view img').count()).toBe(0);
    const cards = async (): Promise<Record<string, string>> =>
      page.$$eval('#b-counts .count', (els) =>
        Object.fromEntries(els.map((e) => [e.querySelector('.label')?.textContent ?? '', e.querySelector('.value')?.textContent ?? ''])),
      );
    const failed = FIXTURE.permanent + FIXTURE.transient;
    expect(await cards()).toMatchObject({
      rows: String(FIXTURE.rows),
      'valid chats': '20',
      'rejected rows': '1',
      succeeded: String(20 - failed),
      failed: String(failed),
      pending: '0',
    });
    expect(Object.keys(env.api.stats().unassigned)).toHaveLength(20 - failed);
    const reasons = await page.$$eval('#b-reasons tr', (rows) => rows.map((r) => r.textContent ?? ''));
    expect(reasons).toHaveLength(2);
    expect(reasons.join('\n')).toContain('422');
    await page.waitForSelector('#chart-throughput svg rect');
    expect(await page.locator('#chart-outcomes svg circle').count()).toBeGreaterThanOrEqual(3);

    // failed.csv, downloaded the way a user clicks it.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#dl-failed')]);
    expect(download.suggestedFilename()).toBe(`${parentId}-failed.csv`);
    const failedCsv = readFileSync((await download.path()) as string, 'utf8')
      .trim()
      .split('\r\n');
    expect(failedCsv[0]).toBe('customerPhoneNumber,wabaNumber,note,status,error');
    expect(failedCsv.slice(1).map((line) => line.split(',')[0])).toEqual(["'+91 98123 40003", "'+91 98123 40005", "'+91 98123 40009", "'+91 98123 40011"]);

    // No secret reached the page.
    const html = await page.content();
    expect(html).not.toContain(CONSOLE_TOKEN);
    expect(html).not.toContain(env.config.apiKey as string);

    // The outage is over: Rerun retries the two transient failures as a new, linked batch.
    env.api.setFaults({});
    await page.click('#act-rerun');
    await eventually(async () => confirms.length === 1, { timeoutMs: 10_000, intervalMs: 50, message: 'the rerun to ask first' });
    expect(confirms[0]).toBe(`Rerun ${FIXTURE.transient} failed chat(s) of this batch as a new batch?`);
    // Polled from here: waitForFunction would eval in the page, which the console's CSP rightly forbids.
    await eventually(async () => (await page.textContent('#b-id')) !== parentId, {
      timeoutMs: 30_000,
      intervalMs: 100,
      message: 'the rerun batch page to open',
    });
    await page.waitForSelector('#b-status[data-status="finished"]', { timeout: 30_000 });
    expect(await page.textContent('#b-links')).toContain(parentId);
    expect(await cards()).toMatchObject({ 'valid chats': String(FIXTURE.transient), succeeded: String(FIXTURE.transient), failed: '0' });
    expect(env.api.stats().unassigned[`p:${fixturePhone(11)}@919000000000`]).toBe(1);

    // Back to the parent for the screenshot: counts, charts, reasons, downloads and its rerun link.
    await page.goto(`${con.url}/#/batches/${parentId}`);
    await page.waitForSelector('#b-status[data-status="finished"]');
    await page.waitForSelector('#chart-throughput svg rect');
    await shoot('batch');

    expect(otherDialogs()).toBe(0);
    expect(pageErrors).toEqual([]);
    await context.close();
  });
  browserIt('creates, previews and runs a schedule from its page; filters failed chats into a rerun; every page fits 360 px', async () => {
    expect(parentId).not.toBe('');
    const { context, page, pageErrors, confirms, otherDialogs, shoot, logIn } = await watchedPage({ viewport: { width: 1280, height: 900 } });
    await logIn();

    // The batch list: filter by kind from the keyboard (labelled controls, Enter submits).
    await page.waitForSelector('#batch-rows tr');
    await page.selectOption('#f-kind', 'rerun');
    await page.focus('#f-name');
    await page.keyboard.press('Enter');
    await eventually(async () => (await page.$$eval('#batch-rows tr', (rows) => rows.length)) === 1, {
      timeoutMs: 10_000,
      intervalMs: 100,
      message: 'the list to show the one rerun',
    });
    expect(await page.textContent('#batch-rows')).toContain(`rerun of ${parentId}`);
    await page.selectOption('#f-kind', '');
    await page.click('#batch-filter button[type=submit]');
    await eventually(async () => (await page.$$eval('#batch-rows tr', (rows) => rows.length)) === 2, {
      timeoutMs: 10_000,
      intervalMs: 100,
      message: 'the list to show both batches',
    });
    await shoot('batches');

    // A schedule: the form, its preview (the dry run), save, run now.
    const vip = env.api.chats().filter((c) => c.tagNames.includes('vip') && c.assignedUserNumber !== null);
    await page.goto(`${con.url}/#/schedules`);
    await page.waitForSelector('#sch-none:not([hidden])');
    await page.click('#sch-new');
    await page.waitForSelector('#sf-form');
    await page.fill('#sf-name', 'vip');
    await page.fill('#sf-cron', '0 2 * *');
    await page.fill('#sf-tz', 'UTC');
    await page.fill('#sf-tag', 'vip');
    await page.click('#sf-save');
    // The same refusal as `schedule set`, shown by the form.
    await page.waitForSelector('#sf-error:not([hidden])');
    expect(await page.textContent('#sf-error')).toContain('Expected `--cron` to have 5 fields');
    await page.fill('#sf-cron', '0 2 * * *');
    await page.focus('#sf-preview');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#sf-preview-card:not([hidden]) .preview-total');
    expect(await page.textContent('.preview-total')).toBe(`In all: ${vip.length} chat(s) selected now.`);
    expect(await page.locator('#sf-preview-body .sample li').count()).toBe(Math.min(5, vip.length));
    expect(Object.keys(env.api.stats().unassigned)).not.toContain(`p:${vip[0]?.phoneNumber}@${vip[0]?.wabaNumber}`);
    await shoot('schedule-form');
    await page.click('#sf-save');
    await page.waitForSelector('#sch-rows tr[data-schedule="vip"]');
    expect(await page.textContent('#sch-rows tr[data-schedule="vip"]')).toContain('chats  GET /chats tags=vip');
    await shoot('schedules-before-run');
    // Run now from the keyboard: Space on the focused button, after a confirmation naming the sources.
    await page.focus('#sch-rows tr[data-schedule="vip"] button[aria-label="Run schedule vip now"]');
    await page.keyboard.press('Space');
    await page.waitForSelector('#sch-status:not([hidden]) a');
    expect(confirms.at(-1)).toContain('Run schedule vip now? It reads:\nchats  GET /chats tags=vip');
    const batchId = (await page.textContent('#sch-status a')) as string;
    await eventually(async () => (await env.ctx.batches.get(batchId))?.status === 'finished', {
      timeoutMs: 30_000,
      intervalMs: 100,
      message: 'the scheduled batch to finish',
    });
    expect((await env.ctx.batches.get(batchId))?.counts.succeeded).toBe(vip.length);
    await page.reload();
    await page.waitForSelector(`#sch-rows tr[data-schedule="vip"] .runs a`);
    expect(await page.textContent('#sch-rows tr[data-schedule="vip"] .runs a')).toBe(batchId);
    await shoot('schedules');

    // The failed chats of the fixture's batch: filter, reveal one number, rerun exactly the filtered ones.
    await page.goto(`${con.url}/#/batches/${parentId}/failures`);
    await page.waitForSelector('#fl-rows tr');
    expect(await page.textContent('#fl-count')).toBe(`${FIXTURE.permanent + FIXTURE.transient} failed chat(s) match this filter.`);
    expect(await page.textContent('#fl-rows')).not.toContain(fixturePhone(3));
    await page.click('#fl-rows tr:first-child button');
    await eventually(async () => ((await page.textContent('#fl-rows tr:first-child td.chat')) ?? '').includes(fixturePhone(3)), {
      timeoutMs: 10_000,
      intervalMs: 100,
      message: 'the number to be revealed',
    });
    await page.fill('#fl-reason', '422');
    await page.selectOption('#fl-class', 'all');
    await page.click('#fl-filter button[type=submit]');
    await eventually(async () => (await page.textContent('#fl-rerun')) === `Rerun these ${FIXTURE.permanent}`, {
      timeoutMs: 10_000,
      intervalMs: 100,
      message: 'the rerun button to count the filter',
    });
    expect(await page.$$eval('#fl-rows tr', (rows) => rows.length)).toBe(FIXTURE.permanent);
    await shoot('failures');
    await page.click('#fl-rerun');
    await eventually(async () => /^#\/batches\/[0-9-a-f]+$/.test(new URL(page.url()).hash) && !page.url().includes(parentId), {
      timeoutMs: 10_000,
      intervalMs: 100,
      message: 'the rerun batch page to open',
    });
    expect(confirms.at(-1)).toBe(`Rerun these ${FIXTURE.permanent} failed chat(s) as a new batch?`);
    await page.waitForSelector('#b-status[data-status="finished"]', { timeout: 30_000 });
    expect(
      await page.$$eval(
        '#b-counts .count',
        (els) => els.find((e) => e.querySelector('.label')?.textContent === 'valid chats')?.querySelector('.value')?.textContent,
      ),
    ).toBe(String(FIXTURE.permanent));

    // A 360 px phone: no page scrolls sideways (wide tables scroll inside their own box).
    await page.setViewportSize({ width: 360, height: 780 });
    for (const [name, hash, ready] of [
      ['batches', '#/', '#batch-rows tr'],
      ['batch', `#/batches/${parentId}`, '#b-status[data-status="finished"]'],
      ['failures', `#/batches/${parentId}/failures`, '#fl-rows tr'],
      ['schedules', '#/schedules', '#sch-rows tr'],
      ['schedule-form', '#/schedules/vip/edit', '#sf-form'],
      ['audit', '#/audit', '#audit-rows tr'],
    ] as const) {
      await page.goto(`${con.url}/${hash}`);
      await page.waitForSelector(ready);
      const width = (await page.evaluate('document.documentElement.scrollWidth')) as number;
      expect({ name, width }).toEqual({ name, width: 360 });
      await shoot(`${name}-narrow`);
    }

    expect(otherDialogs()).toBe(0);
    // The one refused save (the bad cron) is logged by the browser as a 400; nothing else went wrong.
    expect(pageErrors).toEqual(['Failed to load resource: the server responded with a status of 400 (Bad Request)']);
    await context.close();
  });
  browserIt('captures agents on upload and restores them; holds a scheduled batch, rejects and approves it; shows the audit trail', async () => {
    const { context, page, pageErrors, confirms, otherDialogs, shoot, logIn } = await watchedPage({ viewport: { width: 1280, height: 900 } });
    await logIn();
    const status = async (): Promise<string | undefined> => page.getAttribute('#b-status', 'data-status').then((s) => s ?? undefined);

    // Undo of a CSV batch: three chats that have an agent, their numbers written without the country code (the
    // form's default country supplies it), uploaded with "capture each chat's agent" ticked.
    const picked = env.api
      .chats()
      .filter((c) => c.phoneNumber !== null && c.assignedUserNumber !== null && c.phoneNumber.startsWith('91'))
      .slice(0, 3);
    expect(picked).toHaveLength(3);
    const agents = new Map(picked.map((c) => [`p:${c.phoneNumber}@${c.wabaNumber}`, c.assignedUserNumber]));
    const csv = ['customerPhoneNumber,wabaNumber', ...picked.map((c) => `${(c.phoneNumber as string).slice(2)},${c.wabaNumber}`)].join('\n');
    await page.waitForSelector('#drop-zone');
    await page.setInputFiles('#file-input', { name: 'undo.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
    await page.fill('input[name=name]', 'undo me');
    await page.fill('input[name=defaultCountry]', 'IN');
    await page.check('input[name=captureAssignees]');
    await page.click('#upload-button');
    await page.waitForSelector('#b-status[data-status="finished"]', { timeout: 30_000 });
    const undoId = (await page.textContent('#b-id')) as string;
    for (const key of agents.keys()) expect(env.api.stats().unassigned[key]).toBe(1);
    expect(env.api.chats().filter((c) => agents.has(`p:${c.phoneNumber}@${c.wabaNumber}`) && c.assignedUserNumber !== null)).toEqual([]);
    await page.waitForSelector('#b-restore:not([hidden])');
    expect(await page.textContent('#b-restorable')).toBe('3 chat(s) can go back to their previous agent');
    await shoot('batch-restore');
    await page.fill('#restore-name', 'undo of undo me');
    await page.focus('#act-restore');
    await page.keyboard.press('Enter');
    await eventually(async () => (await page.textContent('#b-id')) !== undoId, {
      timeoutMs: 10_000,
      intervalMs: 100,
      message: 'the restore batch page to open',
    });
    expect(confirms.at(-1)).toMatch(/^Restore 3 chat\(s\) of this batch to the agent each had before it was unassigned\?/);
    await page.waitForSelector('#b-status[data-status="finished"]', { timeout: 30_000 });
    expect(await page.textContent('#b-name')).toBe('undo of undo me');
    // Nothing failed and a restore is not restored: neither form is offered.
    expect([await page.isVisible('#b-rerun'), await page.isVisible('#b-restore')]).toEqual([false, false]);
    expect(await page.textContent('#b-links')).toContain(`restore of ${undoId}`);
    const back = env.api.chats().filter((c) => agents.has(`p:${c.phoneNumber}@${c.wabaNumber}`));
    expect(new Map(back.map((c) => [`p:${c.phoneNumber}@${c.wabaNumber}`, c.assignedUserNumber]))).toEqual(agents);
    await page.waitForSelector('#chart-throughput svg rect');
    await shoot('batch-restored');

    // The brake: a schedule holding any run above one chat, made with the page's form, run from its page.
    await page.goto(`${con.url}/#/schedules/new`);
    await page.waitForSelector('#sf-form');
    await page.fill('#sf-name', 'braked');
    await page.fill('#sf-cron', '0 3 * * *');
    await page.fill('#sf-tz', 'UTC');
    await page.selectOption('#sf-chatStatus', 'all');
    await page.fill('#sf-maxChats', '1');
    await page.click('#sf-save');
    await page.waitForSelector('#sch-rows tr[data-schedule="braked"]');
    const held = env.api.chats().filter((c) => c.assignedUserNumber !== null).length;
    expect(held).toBeGreaterThan(1);
    const runHeld = async (): Promise<string> => {
      await page.goto(`${con.url}/#/schedules`);
      await page.click('#sch-rows tr[data-schedule="braked"] button[aria-label="Run schedule braked now"]');
      await page.waitForSelector('#sch-status:not([hidden]) a');
      const id = (await page.textContent('#sch-status a')) as string;
      await page.click('#sch-status a');
      await page.waitForSelector('#b-status[data-status="awaiting-approval"]');
      await page.waitForSelector('#act-approve:not([hidden])');
      return id;
    };
    const rejectedId = await runHeld();
    expect(await page.textContent('#b-held-chats')).toBe(String(held));
    expect(await page.locator('#b-held-sample li').count()).toBeGreaterThan(0);
    // Only Approve and Reject: nothing was sent, so there is nothing to rerun or restore, and no Cancel.
    const shown = async (): Promise<string[]> =>
      page.$$eval('#act-pause, #act-resume, #act-cancel, #act-approve, #act-reject, #act-rerun, #act-restore', (buttons) =>
        buttons.filter((b) => (b as unknown as { offsetParent: unknown }).offsetParent !== null).map((b) => b.id),
      );
    expect(await shown()).toEqual(['act-approve', 'act-reject']);
    await shoot('batch-held');
    await page.click('#act-reject');
    await eventually(async () => (await status()) === 'cancelled', { timeoutMs: 20_000, intervalMs: 100, message: 'the rejected batch to end cancelled' });
    expect(confirms.at(-1)).toBe(`Reject this batch? Nothing is sent: its ${held} chat(s) are recorded as cancelled.`);
    expect(await page.isHidden('#act-approve')).toBe(true);
    expect(env.api.chats().filter((c) => c.assignedUserNumber !== null)).toHaveLength(held);

    const approvedId = await runHeld();
    expect(approvedId).not.toBe(rejectedId);
    await page.click('#act-approve');
    await page.waitForSelector('#b-status[data-status="finished"]', { timeout: 30_000 });
    expect(confirms.at(-1)).toBe(`Approve this batch? Its ${held} chat(s) are sent to DoubleTick now.`);
    expect(env.api.chats().filter((c) => c.assignedUserNumber !== null)).toEqual([]);
    await page.waitForSelector('#chart-throughput svg rect');
    await shoot('batch-approved');

    // Who did what: the batch page links to its own entries (the approve, by the console's operator).
    await page.click('#b-audit');
    await page.waitForSelector('#audit-rows tr[data-action="approve"]');
    expect(await page.textContent('#audit-rows tr[data-action="approve"]')).toContain('console');
    expect(await page.inputValue('#a-batch')).toBe(approvedId);
    await page.goto(`${con.url}/#/audit`);
    await page.fill('#a-limit', '40');
    await page.press('#a-limit', 'Enter');
    await page.waitForURL(/#\/audit\?limit=40$/);
    await page.waitForSelector('#audit-rows tr');
    const actions = await page.$$eval('#audit-rows tr', (rows) => rows.map((r) => r.getAttribute('data-action')));
    expect(await page.textContent(`#audit-rows tr[data-action="upload"]:has(a[href$="${undoId}"])`)).toContain('defaultCountry=IN captureAssignees=true');
    for (const action of ['upload', 'restore', 'schedule-set', 'schedule-run-now', 'reject', 'approve', 'console-login'])
      expect({ action, found: actions.includes(action) }).toEqual({ action, found: true });
    await shoot('audit');

    // The two pages the other tests do not narrow: log-in and audit at 360 px.
    await page.setViewportSize({ width: 360, height: 780 });
    await page.goto(`${con.url}/#/batches/${rejectedId}`);
    await page.waitForSelector('#b-status[data-status="cancelled"]');
    await shoot('batch-rejected-narrow');
    await context.clearCookies();
    await page.goto(`${con.url}/login`);
    await page.waitForSelector('#token');
    expect((await page.evaluate('document.documentElement.scrollWidth')) as number).toBe(360);
    await shoot('login-narrow');

    expect(otherDialogs()).toBe(0);
    expect(pageErrors).toEqual([]);
    await context.close();
  });
});
