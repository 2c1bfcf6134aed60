// Health and self-healing in the dashboard, in a real browser against a real controller with a
// real device agent (src/agent/agent.ts, synthetic metrics) connected over its WebSocket: the
// fleet row turns alive with a phi, the device page charts samples as they arrive, a command
// runs on the agent with its output streamed live and its exit code, a reboot shows up in the
// health history, a missing power driver is a clear error, and viewers see no actions.
// Needs Chromium (/usr/bin/chromium) and a built dashboard (`npm run build:web`).
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { Agent, type MetricsSource } from '../../src/agent/agent.js';
import type { Metrics } from '../../src/agent/protocol.js';
import { loadConfig } from '../../src/config/load.js';
import { startServer, type RunningServer } from '../../src/server/serve.js';
import { outputDir, prereq } from '../helpers/prereq.js';
import { httpApi } from '../helpers/http-api.js';
import { sequentialSteps } from '../helpers/steps.js';

const CHROMIUM = '/usr/bin/chromium';
const webRoot = fileURLToPath(new URL('../../dist/web', import.meta.url));
const OPERATOR = { username: 'ops-health', password: 'correct horse battery', role: 'operator' } as const;
const VIEWER = { username: 'viewer-health', password: 'battery staple horse', role: 'viewer' } as const;
const SERIAL = '5e6f7a8b';
const HOSTNAME = 'rack2-node7';
/** Heartbeats every 300 ms (the server tells the agent in its welcome), so the test is quick. */
const HEARTBEAT_MS = 300;

const ok = prereq('Chromium browser', existsSync(CHROMIUM), 'chromium');

/** The browser globals used in page.evaluate (the test's tsconfig has no DOM types). */
type Win = {
  document: { querySelector(s: string): { getAttribute(n: string): string | null; textContent: string | null } | null };
};

/** A Pi that is not there: a slow sine on CPU and temperature, steady memory. */
function syntheticPi(): MetricsSource {
  let n = 0;
  return {
    async sample(): Promise<Metrics> {
      n++;
      const wave = Math.sin(n / 5);
      return {
        cpu: [0.3 + 0.2 * wave, 0.2 + 0.1 * wave, 0.25, 0.1],
        load: [0.8 + 0.3 * wave, 0.7, 0.6],
        mem: [4_000_000_000, 2_600_000_000],
        disk: [32_000_000_000, 20_000_000_000],
        temp: 48 + 4 * wave,
        throttled: 0,
        net: [n * 1000, n * 500],
        uptime: 100 + n,
      };
    },
    bootId: async () => 'boot-e2e-health-1',
    imageId: async () => null,
  };
}

describe('dashboard health and self-healing in Chromium', ok, () => {
  const dirs: string[] = [];
  let server: RunningServer | undefined;
  let browser: Browser | undefined;
  let agent: Agent | undefined;
  let context: BrowserContext;
  let page: Page;
  let adminToken: string;
  let deviceId: string;
  const pageErrors: string[] = [];

  const api = httpApi(() => server!.url, () => adminToken);

  // The steps build on each other: after a failure the rest are skipped, and the page is saved.
  const step = sequentialSteps(() => page?.screenshot({ path: join(outputDir, 'dashboard-health-failure.png'), fullPage: true }));

  async function signIn(p: Page, user: { username: string; password: string }): Promise<void> {
    await p.goto(server!.url);
    await p.locator('input[name=username]').fill(user.username);
    await p.locator('input[name=password]').fill(user.password);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.getByRole('heading', { name: 'Fleet' }).waitFor();
    await p.locator('[data-live="live"]').waitFor();
  }

  /** The number of points the chart of `metric` draws now. */
  async function points(metric: string): Promise<number> {
    return Number(await page.locator(`[data-testid="metrics"] [data-metric="${metric}"] svg`).getAttribute('data-points'));
  }

  before(async () => {
    assert.ok(existsSync(join(webRoot, 'index.html')), `${webRoot}/index.html is missing: run \`npm run build:web\` first`);
    mkdirSync(outputDir, { recursive: true });
    const dataDir = mkdtempSync(join(tmpdir(), 'drover-e2e-health-'));
    dirs.push(dataDir);
    // An empty config file and no environment: nothing on this machine leaks into the test.
    const configFile = join(dataDir, 'config.yaml');
    writeFileSync(configFile, '');
    const config = loadConfig({ flags: { dataDir, listen: '127.0.0.1:0' }, env: {}, configFile });
    // The setting takes whole seconds; a test wants a faster beat than any real fleet.
    config.agent.heartbeatMs = HEARTBEAT_MS;
    server = await startServer(config, { webRoot, announce: () => {}, logger: pino({ level: 'silent' }) });
    adminToken = readFileSync(join(dataDir, 'initial-admin-token'), 'utf8').trim();
    await api('POST', '/users', OPERATOR);
    await api('POST', '/users', VIEWER);

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    context = await browser.newContext({ viewport: { width: 1440, height: 900 }, locale: 'en-GB', timezoneId: 'UTC' });
    page = await context.newPage();
    page.setDefaultTimeout(10_000);
    page.on('pageerror', (err) => pageErrors.push(String(err)));
    page.on('console', (msg) => {
      if (msg.type() === 'error') pageErrors.push(msg.text());
    });
  });

  after(async () => {
    await agent?.stop().catch(() => {});
    await browser?.close().catch(() => {});
    await server?.close().catch(() => {});
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  step('a device whose agent connects turns alive with a phi in the fleet table, live', async () => {
    await signIn(page, OPERATOR);
    const device = await api('POST', '/devices', { serial: SERIAL, model: 'Raspberry Pi 5 Model B', hostname: HOSTNAME });
    deviceId = device.id;
    const row = page.locator(`tr[data-serial="${SERIAL}"]`);
    await row.waitFor();
    assert.equal(await row.getAttribute('data-health'), 'unknown', 'no agent yet');
    assert.equal((await row.locator('[data-col="phi"]').innerText()).trim(), '—');

    const stateDir = mkdtempSync(join(tmpdir(), 'drover-e2e-agent-'));
    dirs.push(stateDir);
    const token = await server!.services.deviceTokens.tokenFor((await server!.store.devices.get(deviceId))!);
    agent = new Agent({
      server: server!.url,
      node: deviceId,
      token,
      stateDir,
      heartbeatMs: HEARTBEAT_MS,
      metrics: syntheticPi(),
      // A reboot that does no harm: the agent answers, then runs this.
      commands: { reboot: ['true'], shutdown: ['true'] },
      jobs: { powerDelayMs: 50 },
      client: { backoff: { baseMs: 50, capMs: 500, resetAfterMs: 60_000 } },
    });
    await agent.start();

    const alive = page.locator(`tr[data-serial="${SERIAL}"][data-health="alive"]`);
    await alive.waitFor();
    assert.equal((await alive.locator('[data-col="health"] [data-health]').innerText()).trim(), 'alive');
    const phi = await alive.locator('[data-col="phi"] [data-phi]').getAttribute('data-phi');
    assert.ok(phi !== null && phi !== '' && Number.isFinite(Number(phi)), `a phi value, got ${JSON.stringify(phi)}`);
    assert.match((await alive.locator('[data-col="phi"]').innerText()).trim(), /^\d+(\.\d+)?$/);
    await page.locator(`tr[data-serial="${SERIAL}"][data-state="running"]`).waitFor();
    await page.screenshot({ path: join(outputDir, 'dashboard-health-fleet.png'), fullPage: true });
  });

  step('the device page charts the samples and grows as new ones arrive', async () => {
    await page.locator(`tr[data-serial="${SERIAL}"]`).getByRole('link', { name: HOSTNAME }).click();
    await page.getByRole('heading', { name: HOSTNAME }).waitFor();
    await page.locator('[data-testid="health"][data-health="alive"]').waitFor();
    await page.locator('[data-testid="health"] [data-agent="connected"]').waitFor();

    const metrics = page.getByTestId('metrics');
    assert.equal(await metrics.getAttribute('data-range'), '1h');
    // (attached, not visible: a flat line such as steady memory has a zero-height box)
    for (const metric of ['cpu', 'load', 'mem', 'temp']) await metrics.locator(`[data-metric="${metric}"] path.chart-line`).waitFor({ state: 'attached' });
    const d = await metrics.locator('[data-metric="cpu"] path.chart-line').getAttribute('d');
    assert.match(d ?? '', /^M[\d.]+ [\d.]+/, 'an SVG path from the samples');
    const before = await points('cpu');
    assert.ok(before >= 1, `points drawn: ${before}`);
    // New heartbeats arrive on the device's stream and extend the line without a reload.
    await page.waitForFunction(
      (n) => Number((globalThis as unknown as Win).document.querySelector('[data-testid="metrics"] [data-metric="cpu"] svg')?.getAttribute('data-points')) >= n + 3,
      before,
    );
    assert.ok((await points('temp')) > before, 'every chart grows');
    const label = await metrics.locator('[data-metric="cpu"] svg').getAttribute('aria-label');
    assert.match(label ?? '', /^CPU, last hour, live: \d+ points, latest [\d.]+ %/);

    // Longer ranges come from one-minute rollups (none may have closed yet in a quick test).
    await metrics.getByRole('button', { name: '24 h' }).click();
    await page.locator('[data-testid="metrics"][data-range="24h"][data-resolution="minute"]').waitFor();
    await metrics.getByRole('button', { name: '1 h' }).click();
    await page.locator('[data-testid="metrics"][data-range="1h"][data-resolution="raw"]').waitFor();
    await metrics.locator('[data-metric="cpu"] path.chart-line').waitFor({ state: 'attached' });
    assert.deepEqual(pageErrors, [], 'no errors in the browser console');
  });

  step('runs a command on the agent: output streams in, then the exit code', async () => {
    const actions = page.getByTestId('device-actions');
    await actions.getByLabel('Run command', { exact: true }).fill('echo hello-from-agent; sleep 0.3; echo second-line');
    await actions.getByRole('button', { name: 'Run', exact: true }).click();
    const output = actions.getByLabel('Command output');
    await output.getByText('hello-from-agent').waitFor();
    await actions.locator('[data-exit-code="0"]').waitFor();
    assert.equal((await actions.locator('[data-exit-code]').innerText()).trim(), 'exit code 0');
    assert.equal(await actions.locator('[data-job-state]').getAttribute('data-job-state'), 'succeeded');
    assert.match(await output.innerText(), /hello-from-agent\nsecond-line/);

    // The brief's own command, once more: a second run replaces the first.
    await actions.getByLabel('Run command', { exact: true }).fill('echo hello-from-agent');
    await actions.getByRole('button', { name: 'Run', exact: true }).click();
    await page.waitForFunction(() => {
      const doc = (globalThis as unknown as Win).document;
      return doc.querySelector('[data-testid="device-actions"] [data-exit-code]')?.getAttribute('data-exit-code') === '0' && doc.querySelector('[data-testid="device-actions"] pre')?.textContent?.trim() === 'hello-from-agent';
    });
    const history = page.getByTestId('health-history');
    await history.locator('li[data-history-type="job.finished"]', { hasText: 'Job succeeded: exec' }).first().waitFor();
    await history.locator('li[data-history-type="job.queued"]', { hasText: '$ echo hello-from-agent' }).first().waitFor();
    assert.deepEqual(pageErrors, [], 'no errors in the browser console');
  });

  step('Reboot sends a job to the agent and it shows in the health history', async () => {
    const actions = page.getByTestId('device-actions');
    await actions.getByRole('button', { name: 'Reboot', exact: true }).click();
    await actions.getByRole('button', { name: 'Confirm reboot' }).click();
    await actions.getByRole('status').getByText(/Reboot sent to the agent \(job_/).waitFor();
    const history = page.getByTestId('health-history');
    await history.locator('li[data-history-type="job.queued"]', { hasText: 'Job queued: reboot' }).waitFor();
    await history.locator('li[data-history-type="job.finished"]', { hasText: 'Job succeeded: reboot' }).waitFor();
    const jobs = await api('GET', `/devices/${deviceId}/jobs`);
    assert.ok(jobs.items.some((j: { kind: string; state: string }) => j.kind === 'reboot' && j.state === 'succeeded'), 'the API has the reboot job');
    assert.deepEqual(pageErrors, [], 'no errors in the browser console');
  });

  step('Power cycle without a power driver says so with the error code', async () => {
    const actions = page.getByTestId('device-actions');
    await actions.getByRole('button', { name: 'Power cycle', exact: true }).click();
    await actions.getByRole('button', { name: 'Confirm power cycle' }).click();
    const alert = actions.getByRole('alert');
    await alert.getByText('DROVER_POWER_NOT_CONFIGURED').waitFor();
    assert.match(await alert.innerText(), /has no power driver/);
    // Still alive and still charting after all of that.
    await page.locator('[data-testid="health"][data-health="alive"]').waitFor();
    await page.screenshot({ path: join(outputDir, 'dashboard-health-device.png'), fullPage: true });
    // The 409 itself is logged by Chromium ("Failed to load resource"); nothing else may be.
    assert.deepEqual(pageErrors.filter((e) => !/Failed to load resource: the server responded with a status of 409/.test(e)), []);
  });

  step('a viewer sees health, metrics and history but no actions', async () => {
    const viewerContext = await browser!.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-GB', timezoneId: 'UTC' });
    try {
      const viewer = await viewerContext.newPage();
      viewer.setDefaultTimeout(10_000);
      await signIn(viewer, VIEWER);
      await viewer.locator(`tr[data-serial="${SERIAL}"][data-health="alive"]`).waitFor();
      await viewer.goto(`${server!.url}/devices/${deviceId}`);
      await viewer.getByRole('heading', { name: HOSTNAME }).waitFor();
      await viewer.locator('[data-testid="health"][data-health="alive"]').waitFor();
      await viewer.locator('[data-testid="metrics"] [data-metric="cpu"] path.chart-line').waitFor({ state: 'attached' });
      await viewer.locator('[data-testid="health-history"] li[data-history-type="job.finished"]').first().waitFor();
      assert.equal(await viewer.getByTestId('device-actions').count(), 0, 'no actions card');
      assert.equal(await viewer.getByRole('button', { name: 'Reboot' }).count(), 0);
      assert.equal(await viewer.getByLabel('Run command').count(), 0);
    } finally {
      await viewerContext.close();
    }
  });
});
