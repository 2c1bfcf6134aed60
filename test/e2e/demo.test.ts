// `drover demo --nodes 12`: twelve virtual Pis arrive in the dashboard (screenshot in
// test-output/demo-fleet.png), boot and run the real agent (alive, metrics moving); one is
// killed from the dashboard and healed by the remediation ladder, whose power-cycle goes
// through the demo's power switch script (test-output/demo-heal.png); stopping the demo
// removes everything it created.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { freePort } from '../helpers/postgres.js';
import { outputDir, prereq } from '../helpers/prereq.js';
import { droverArgv } from '../helpers/server.js';

const CHROMIUM = '/usr/bin/chromium';
const namespaces = () => {
  try {
    return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').filter(Boolean).map((l) => l.split(' ')[0]!);
  } catch {
    return [];
  }
};

describe('drover demo', prereq('Chromium browser', existsSync(CHROMIUM), 'chromium'), () => {
  const tmp = mkdtempSync(join(tmpdir(), 'drover-demo-'));
  let browser: Browser | undefined;
  let demo: ReturnType<typeof spawn> | undefined;
  after(async () => {
    await browser?.close();
    // A failed run still lets the demo remove its namespaces (SIGINT) before the last resort.
    if (demo && demo.exitCode === null) {
      const gone = new Promise((r) => demo!.once('exit', r));
      demo.kill('SIGINT');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 15_000))]);
      if (demo.exitCode === null) demo.kill('SIGKILL');
    }
    rmSync(tmp, { recursive: true, force: true });
  });

  it('shows twelve Pis arriving in the dashboard, then cleans up after itself', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    demo = spawn(process.execPath, [...droverArgv(), 'demo', '--nodes', '12', '--data-dir', join(tmp, 'data'), '--listen', `127.0.0.1:${port}`, '--log-level', 'warn', '--accept-after', '2000'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    demo.stdout!.on('data', (d) => (out += d));
    demo.stderr!.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => demo!.once('exit', (c) => r(c)));

    // Wait for the controller, then for twelve accepted devices that have booted.
    let token = '';
    const deadline = Date.now() + 150_000;
    let devices: any[] = [];
    while (Date.now() < deadline) {
      if (demo.exitCode !== null) assert.fail(`demo exited: ${out}`);
      try {
        token ||= execFileSync('cat', [join(tmp, 'data', 'initial-admin-token')], { encoding: 'utf8' }).trim();
        const r = await fetch(`${url}/api/v1/devices?limit=100`, { headers: { authorization: `Bearer ${token}` } });
        devices = ((await r.json()) as any).items ?? [];
        if (devices.length === 12 && devices.every((d) => d.health?.health === 'alive')) break;
      } catch {
        /* not up yet */
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    assert.equal(devices.length, 12, `twelve devices arrived: ${out}`);
    assert.ok(devices.every((d) => d.state === 'running' && d.health?.health === 'alive'), `all accepted, booted again and running the agent: ${devices.map((d) => `${d.state}/${d.health?.health}`).join(',')}`);
    assert.deepEqual(new Set(devices.map((d) => d.model).filter(Boolean)), new Set(['Raspberry Pi 4', 'Raspberry Pi 5', 'Raspberry Pi 3 Model B+', 'Raspberry Pi 3 Model B'].filter((m) => devices.some((d) => d.model === m))));

    const user = { username: 'demo-operator', password: 'watch the herd arrive', role: 'operator' };
    await fetch(`${url}/api/v1/users`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(user) });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const page = await (await browser.newContext({ viewport: { width: 1440, height: 1000 }, timezoneId: 'UTC' })).newPage();
    page.setDefaultTimeout(15_000);
    await page.goto(url);
    await page.locator('input[name=username]').fill(user.username);
    await page.locator('input[name=password]').fill(user.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Fleet' }).waitFor();
    await page.locator('tr[data-serial]').nth(11).waitFor();
    assert.equal(await page.locator('tr[data-serial]').count(), 12);
    mkdirSync(outputDir, { recursive: true });
    await page.screenshot({ path: join(outputDir, 'demo-fleet.png'), fullPage: true });

    // Kill one from its device page, as a person would, and watch the ladder heal it.
    const victim = devices[3]!;
    const killedAt = Date.now();
    await page.goto(`${url}/devices/${victim.id}`);
    await page.getByRole('button', { name: 'Kill (demo)' }).click();
    await page.getByRole('button', { name: 'Confirm kill' }).click();
    const history = page.getByTestId('health-history');
    await history.getByText('Recovered after power cycle').waitFor({ timeout: 60_000 });
    const healedMs = Date.now() - killedAt;
    for (const t of ['Killed (demo)', 'Health alive → suspect', 'Health suspect → dead', 'Remediation started', 'Skipped reboot', 'Remediation: power cycle', 'Power cycle', 'Health dead → alive']) {
      assert.ok(await history.getByText(t, { exact: false }).count() > 0, `history shows "${t}"`);
    }
    await page.screenshot({ path: join(outputDir, 'demo-heal.png'), fullPage: true });
    process.stderr.write(`# demo: killed ${victim.serial}, healed (visible in the dashboard) after ${(healedMs / 1000).toFixed(1)} s\n`);
    const ev = await fetch(`${url}/api/v1/events?device=${victim.id}&limit=200`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.json() as Promise<{ items: { type: string; data: Record<string, unknown> }[] }>);
    const types = ev.items.reverse().map((e) => (e.type === 'health.changed' ? `health:${String(e.data.to)}` : e.type)).filter((t) => t.startsWith('health') || t.startsWith('power.') || t === 'demo.killed');
    const order = ['demo.killed', 'health:suspect', 'health:dead', 'health.remediation.started', 'health.remediation.step', 'power.cycle', 'health:alive', 'health.recovered'];
    let k = 0;
    for (const t of types) if (t === order[k]) k++;
    assert.equal(k, order.length, `ladder in order: ${types.join(', ')}`);
    const calls = readFileSync(join(tmp, 'data', 'demo-fleet', 'power-requests.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(calls.filter((c) => c.piId === victim.serial), [{ piId: victim.serial, action: 'poweroff' }, { piId: victim.serial, action: 'poweron' }], 'the exec driver ran the power switch script: off, then on');

    demo.kill('SIGINT');
    assert.equal(await exited, 0, out);
    // Other tests may run their own namespaces meanwhile: look only at the demo's.
    const prefix = /network namespaces (drv[0-9a-f]{6})\*/.exec(out)?.[1];
    if (prefix) {
      assert.deepEqual(namespaces().filter((n) => n.startsWith(prefix)), [], 'every namespace the demo created is gone');
      assert.ok(!execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' }).includes(`${prefix}u`), 'and its uplink');
    } else {
      assert.match(out, /over loopback/);
    }
  });
});
