/**
 * In a real browser: Debian's chromium (headless, driven by playwright-core; no browser download)
 * logs in, drops fixtures/console.csv on the upload zone, watches the batch finish, downloads failed.csv and
 * presses Rerun. Leaves a screenshot in test-artifacts/console.png.
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
  console.warn(`\n${bar}\n!! console-browser.test.ts SKIPPED: no chromium at ${CHROMIUM}.\n!! Install it (apt-get install -y chromium) or set CHROMIUM_PATH; the web console was NOT tested in a browser.\n${bar}\n`);
}
const browserIt = hasChromium ? it : it.skip;

describe('web console in a browser', () => {
  let env: TestEnv;
  let con: TestConsole;
  let browser: Browser | undefined;
  beforeAll(async () => {
    if (!hasChromium) return;
    env = await makeTestEnv({ api: { faults: FIXTURE_FAULTS }, config: { maxAttempts: 2, rateLimitMax: 20, rateLimitDurationMs: 1000 } });
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

  browserIt('uploads by drag and drop, shows the batch finish, downloads failed.csv, reruns', async () => {
    const context = await (browser as Browser).newContext({ acceptDownloads: true, viewport: { width: 1280, height: 1000 } });
    const page = await context.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(message.text());
    });
    page.on('dialog', (dialog) => void dialog.accept()); // an unexpected alert() would be an injection
    let dialogs = 0;
    page.on('dialog', () => (dialogs += 1));

    // Not logged in: the page sends us to the login form.
    await page.goto(con.url);
    expect(new URL(page.url()).pathname).toBe('/login');
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
    const parentId = (await page.textContent('#b-id')) as string;
    expect(await page.textContent('#b-name')).toBe('<b>fixture</b> <img src=x onerror=alert(1)>');
    expect(await page.locator('#b-name b, #b-name img, #view img').count()).toBe(0);
    const cards = async (): Promise<Record<string, string>> =>
      page.$$eval('#b-counts .count', (els) => Object.fromEntries(els.map((e) => [e.querySelector('.label')?.textContent ?? '', e.querySelector('.value')?.textContent ?? ''])));
    const failed = FIXTURE.permanent + FIXTURE.transient;
    expect(await cards()).toMatchObject({ rows: String(FIXTURE.rows), 'valid chats': '20', 'rejected rows': '1', succeeded: String(20 - failed), failed: String(failed), pending: '0' });
    expect(Object.keys(env.api.stats().unassigned)).toHaveLength(20 - failed);
    const reasons = await page.$$eval('#b-reasons tr', (rows) => rows.map((r) => r.textContent ?? ''));
    expect(reasons).toHaveLength(2);
    expect(reasons.join('\n')).toContain('422');
    await page.waitForSelector('#chart-throughput svg rect');
    expect(await page.locator('#chart-outcomes svg circle').count()).toBeGreaterThanOrEqual(3);

    // failed.csv, downloaded the way a user clicks it.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#dl-failed')]);
    expect(download.suggestedFilename()).toBe(`${parentId}-failed.csv`);
    const failedCsv = readFileSync((await download.path()) as string, 'utf8').trim().split('\r\n');
    expect(failedCsv[0]).toBe('customerPhoneNumber,wabaNumber,note,status,error');
    expect(failedCsv.slice(1).map((line) => line.split(',')[0])).toEqual(["'+91 98123 40003", "'+91 98123 40005", "'+91 98123 40009", "'+91 98123 40011"]);

    // No secret reached the page.
    const html = await page.content();
    expect(html).not.toContain(CONSOLE_TOKEN);
    expect(html).not.toContain(env.config.apiKey as string);

    // The outage is over: Rerun retries the two transient failures as a new, linked batch.
    env.api.setFaults({});
    await page.click('#act-rerun');
    // Polled from here: waitForFunction would eval in the page, which the console's CSP rightly forbids.
    await eventually(async () => (await page.textContent('#b-id')) !== parentId, { timeoutMs: 30_000, intervalMs: 100, message: 'the rerun batch page to open' });
    await page.waitForSelector('#b-status[data-status="finished"]', { timeout: 30_000 });
    expect(await page.textContent('#b-links')).toContain(parentId);
    expect(await cards()).toMatchObject({ 'valid chats': String(FIXTURE.transient), succeeded: String(FIXTURE.transient), failed: '0' });
    expect(env.api.stats().unassigned[`p:${fixturePhone(11)}@919000000000`]).toBe(1);

    // Back to the parent for the screenshot: counts, charts, reasons, downloads and its rerun link.
    await page.goto(`${con.url}/#/batches/${parentId}`);
    await page.waitForSelector('#b-status[data-status="finished"]');
    await page.waitForSelector('#chart-throughput svg rect');
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: `${ARTIFACTS}console.png`, fullPage: true });

    expect(dialogs).toBe(0);
    expect(pageErrors).toEqual([]);
    await context.close();
  });
});
