// The dashboard in a real browser against a real controller: sign in, watch a device appear live
// (no reload), accept it from the table, follow it to its page and events, and watch its boot
// timeline fill in as boot events arrive.
// Needs Chromium (/usr/bin/chromium) and a built dashboard (`npm run build:web`).
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { chromium, type Browser, type Page } from 'playwright-core';
import { loadConfig } from '../../src/config/load.js';
import { startServer, type RunningServer } from '../../src/server/serve.js';
import { outputDir, prereq } from '../helpers/prereq.js';
import { httpApi } from '../helpers/http-api.js';
import { sequentialSteps } from '../helpers/steps.js';

const CHROMIUM = '/usr/bin/chromium';
const webRoot = fileURLToPath(new URL('../../dist/web', import.meta.url));
const USER = { username: 'ops-e2e', password: 'correct horse battery', role: 'operator' } as const;
const SERIAL = '1a2b3c4d';
const HOSTNAME = 'rack1-node1';

const ok = prereq('Chromium browser', existsSync(CHROMIUM), 'chromium');

/** The browser globals used in page.evaluate (the test's tsconfig has no DOM types). */
type Win = {
  document: { querySelector(s: string): { textContent: string | null } | null };
  localStorage: { getItem(k: string): string | null };
  notReloaded?: boolean;
};

describe('dashboard in Chromium', ok, () => {
  let dataDir: string | undefined;
  let server: RunningServer | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let adminToken: string;
  const pageErrors: string[] = [];

  const api = httpApi(() => server!.url, () => adminToken);

  // The steps build on each other: after a failure the rest are skipped, and the page is saved.
  const step = sequentialSteps(() => page?.screenshot({ path: join(outputDir, 'dashboard-failure.png'), fullPage: true }));

  /** Waits until the text of `selector` equals `text`. */
  async function waitForText(selector: string, text: string): Promise<void> {
    await page.waitForFunction(
      ([sel, want]) => (globalThis as unknown as Win).document.querySelector(sel!)?.textContent?.trim() === want,
      [selector, text] as const,
    );
  }

  before(async () => {
    assert.ok(existsSync(join(webRoot, 'index.html')), `${webRoot}/index.html is missing: run \`npm run build:web\` first`);
    mkdirSync(outputDir, { recursive: true });
    dataDir = mkdtempSync(join(tmpdir(), 'drover-e2e-'));
    // An empty config file and no environment: nothing on this machine leaks into the test.
    const configFile = join(dataDir, 'config.yaml');
    writeFileSync(configFile, '');
    const config = loadConfig({ flags: { dataDir, listen: '127.0.0.1:0' }, env: {}, configFile });
    server = await startServer(config, { webRoot, announce: () => {}, logger: pino({ level: 'silent' }) });
    adminToken = readFileSync(join(dataDir, 'initial-admin-token'), 'utf8').trim();
    await api('POST', '/users', USER);
    // An image to assign, straight into the store (the API has no image upload yet).
    await server.store.images.create({
      id: 'img_e2e0000000000001',
      name: 'raspios-lite',
      tag: 'bookworm',
      sha256: null,
      status: 'ready',
      kind: 'ramroot',
      metadata: {},
      createdAt: new Date().toISOString(),
    });

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless=new',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, locale: 'en-GB', timezoneId: 'UTC' });
    page = await context.newPage();
    page.setDefaultTimeout(10_000);
    page.on('pageerror', (err) => pageErrors.push(String(err)));
    page.on('console', (msg) => {
      if (msg.type() === 'error') pageErrors.push(msg.text());
    });
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await server?.close().catch(() => {});
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  step('serves the dashboard without a token', async () => {
    // A browser cannot send a bearer token for the page and its scripts: they must be public.
    const index = await fetch(`${server!.url}/`);
    const html = await index.text();
    assert.equal(index.status, 200, `GET / answered ${index.status}, not the dashboard: ${html.slice(0, 200)}`);
    const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]!);
    assert.ok(assets.length >= 2, `index.html names its script and stylesheet: ${html}`);
    for (const a of assets) {
      const res = await fetch(`${server!.url}${a}`);
      assert.equal(res.status, 200, `GET ${a} answered ${res.status}`);
    }
    const deep = await fetch(`${server!.url}/devices/dev_anything`);
    assert.equal(deep.status, 200, 'client routes fall back to index.html');
  });

  step('signs in with a user name and password and shows the fleet', async () => {
    await page.goto(server!.url);
    await page.locator('input[name=username]').fill(USER.username);
    await page.locator('input[name=password]').fill(USER.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Fleet' }).waitFor();
    await page.getByText('No devices yet.').waitFor();
    await waitForText('[data-tile="incoming"] .tile-count', '0');
    // The live stream is connected, so what happens next arrives without asking.
    await page.locator('[data-live="live"]').waitFor();
    assert.ok(await page.evaluate(() => (globalThis as unknown as Win).localStorage.getItem('drover.token')), 'the session token is kept');
  });

  step('shows a new device in the table without a reload', async () => {
    await page.evaluate(() => {
      (globalThis as unknown as Win).notReloaded = true;
    });
    await api('POST', '/devices', { serial: SERIAL, model: 'Raspberry Pi 4 Model B', hostname: HOSTNAME, state: 'incoming' });
    const row = page.locator(`tr[data-serial="${SERIAL}"]`);
    await row.waitFor();
    assert.match(await row.innerText(), new RegExp(HOSTNAME));
    assert.match(await row.innerText(), /Raspberry Pi 4 Model B/);
    assert.equal(await row.getAttribute('data-state'), 'incoming');
    await waitForText('[data-tile="incoming"] .tile-count', '1');
    assert.equal(await page.evaluate(() => (globalThis as unknown as Win).notReloaded), true, 'the page was not reloaded');
  });

  step('accepts the incoming device from the table', async () => {
    const row = page.locator(`tr[data-serial="${SERIAL}"]`);
    await row.getByRole('button', { name: 'Accept' }).click();
    await page.locator(`tr[data-serial="${SERIAL}"][data-state="accepted"]`).waitFor();
    await waitForText('[data-tile="incoming"] .tile-count', '0');
    await waitForText('[data-tile="accepted"] .tile-count', '1');
    assert.equal(await row.getByRole('button', { name: 'Accept' }).count(), 0, 'no Accept button once accepted');
    await page.screenshot({ path: join(outputDir, 'dashboard-fleet.png'), fullPage: true });
  });

  step('opens the device page with its events, live', async () => {
    await page.locator(`tr[data-serial="${SERIAL}"]`).getByRole('link', { name: HOSTNAME }).click();
    await page.getByRole('heading', { name: HOSTNAME }).waitFor();
    assert.match(page.url(), /\/devices\/dev_/);
    await page.locator('tr[data-event-type="device.created"]').waitFor();
    await page.locator('tr[data-event-type="device.accepted"]').waitFor();

    // Label and image edits go through the API and come back as live events.
    await page.getByLabel('Label key').fill('rack');
    await page.getByLabel('Label value').fill('r1');
    await page.getByRole('button', { name: 'Add label' }).click();
    await page.locator('.labels-edit [data-label="rack"]').waitFor();
    await page.locator('tr[data-event-type="device.updated"]').waitFor();
    await page.locator('select#image').selectOption({ label: 'raspios-lite:bookworm' });
    await page.getByRole('button', { name: 'Assign' }).click();
    await page.locator('tr[data-event-type="device.image-assigned"]').waitFor();

    const types = await page.locator('tr[data-event-type]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-event-type')));
    assert.deepEqual(types, ['device.image-assigned', 'device.updated', 'device.accepted', 'device.created'], 'newest first');
    await page.screenshot({ path: join(outputDir, 'dashboard-device.png'), fullPage: true });
    assert.deepEqual(pageErrors, [], 'no errors in the browser console');
  });

  step('shows the latest network boot as a timeline, live', async () => {
    const card = page.getByTestId('boot-timeline');
    await card.getByText('No network boot seen yet').waitFor();
    assert.equal(await card.locator('[data-phase]').count(), 0, 'no phases before any boot event');
    await page.evaluate(() => {
      (globalThis as unknown as Win).notReloaded = true;
    });
    const deviceId = await page.locator('[data-device-id]').getAttribute('data-device-id');
    assert.ok(deviceId);

    await api('POST', `/devices/${deviceId}/events`, { type: 'boot.dhcp', data: { kind: 'offer', mac: 'dc:a6:32:01:02:03', model: 'pi4', mode: 'proxy' } });
    const dhcp = card.locator('[data-phase="boot.dhcp"][data-status="done"]');
    await dhcp.waitFor();
    assert.match(await dhcp.innerText(), /DHCP/);
    assert.match(await dhcp.innerText(), /offer · proxy mode/);
    assert.equal(await card.locator('[data-phase="boot.tftp"]').getAttribute('data-status'), 'pending', 'TFTP not reached yet');

    await api('POST', `/devices/${deviceId}/events`, { type: 'boot.tftp', data: { files: 16, bytes: 24016326, ms: 3619, failed: 0, names: ['config.txt'] } });
    const tftp = card.locator('[data-phase="boot.tftp"][data-status="done"]');
    await tftp.waitFor();
    assert.match(await tftp.innerText(), /TFTP/);
    assert.match(await tftp.innerText(), /16 files · 24\.0 MB in 3\.6 s/);

    const steps = await card.locator('[data-phase]').evaluateAll((els) => els.map((el) => `${el.getAttribute('data-phase')}:${el.getAttribute('data-status')}`));
    assert.deepEqual(steps, [
      'boot.dhcp:done',
      'boot.tftp:done',
      'boot.initramfs:pending',
      'boot.config:pending',
      'boot.rootfs-download:pending',
      'boot.overlay:pending',
      'boot.switch-root:pending',
      'agent.up:pending',
    ]);
    await page.locator('tr[data-event-type="boot.tftp"]').waitFor();
    assert.equal(await page.evaluate(() => (globalThis as unknown as Win).notReloaded), true, 'the page was not reloaded');
    await page.screenshot({ path: join(outputDir, 'dashboard-boot-timeline.png'), animations: 'disabled' });
    assert.deepEqual(pageErrors, [], 'no errors in the browser console');
  });
});
