// The http driver against a relay-board process (test/fixtures/power/relay-server.mjs) that
// speaks Shelly Gen1, Shelly Gen2 and Tasmota and records every request: each preset switches and
// reads back its relay, URL/body templates are filled and encoded, auth is sent (and never shown
// in a message), and a bad status, a body without the expected echo, a refused connection and a
// silent peer are DROVER_POWER_FAILED.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { startNodeServer, type Peer } from '../../test/fixtures/power/child-process.js';
import { createPowerDriver, parsePowerConfig, type PowerDriver } from './index.js';
import { FIXTURES, T, failsWith } from '../../test/fixtures/power/expect.js';



interface Logged {
  method: string;
  path: string;
  body: string;
  authorization: string | null;
  contentType: string | null;
}

describe('http driver against a relay-board process', () => {
  let relay: Peer;
  let host = '';
  const dir = mkdtempSync(join(tmpdir(), 'drover-power-http-'));
  before(async () => {
    relay = await startNodeServer(join(FIXTURES, 'relay-server.mjs'));
    host = `127.0.0.1:${relay.port}`;
  });
  after(async () => {
    await relay?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const control = async (path: string) => (await fetch(`http://${host}/_control/${path}`)).json() as Promise<unknown>;
  const state = () => control('state') as Promise<Record<string, boolean>>;
  const log = () => control('log') as Promise<Logged[]>;
  beforeEach(() => control('reset'));
  const driver = (raw: Record<string, unknown>): PowerDriver => createPowerDriver(parsePowerConfig({ driver: 'http', ...raw }));

  for (const [preset, port, key, paths] of [
    ['shelly-gen1', 2, 'shelly1:2', ['/relay/2?turn=on', '/relay/2', '/relay/2?turn=off', '/relay/2?turn=on']],
    ['shelly-gen2', 1, 'shelly2:1', ['/rpc/Switch.Set?id=1&on=true', '/rpc/Switch.GetStatus?id=1', '/rpc/Switch.Set?id=1&on=false', '/rpc/Switch.Set?id=1&on=true']],
    ['tasmota', 3, 'tasmota:POWER3', ['/cm?cmnd=Power3%20On', '/cm?cmnd=Power3', '/cm?cmnd=Power3%20Off', '/cm?cmnd=Power3%20On']],
  ] as const) {
    it(`preset ${preset}: on, status, cycle (off, pause, on) on relay ${port}`, async () => {
      const d = driver({ preset, host, port, cycleDelayMs: 200 });
      await d.on(T);
      assert.equal((await state())[key], true);
      assert.equal(await d.status(T), 'on');
      const started = Date.now();
      await d.cycle(T);
      assert.ok(Date.now() - started >= 200, 'the pause is kept');
      assert.equal((await state())[key], true);
      assert.deepEqual((await log()).map((l) => l.path), paths);
      await d.off(T);
      assert.equal(await d.status(T), 'off');
    });
  }

  it('presets default to the first relay: Shelly 0, Tasmota 1', async () => {
    await driver({ preset: 'shelly-gen1', host }).on(T);
    await driver({ preset: 'tasmota', host }).on(T);
    assert.deepEqual((await log()).map((l) => l.path), ['/relay/0?turn=on', '/cm?cmnd=Power1%20On']);
  });

  it('fills URL and body templates (URL values encoded), with method and headers', async () => {
    const d = driver({
      url: `http://${host}/generic/{{port}}/{{action}}?host={{hostname}}&sn={{serial}}`,
      port: 'out 3',
      method: 'POST',
      body: '{"device":"{{deviceId}}","to":"{{action}}"}',
      headers: { 'content-type': 'application/json', 'x-api-key': 'k-123' },
      off: { method: 'PUT' },
      expectBody: '"done":true',
    });
    await d.on(T);
    await d.off(T);
    const [on, off] = await log();
    assert.deepEqual(on, { method: 'POST', path: '/generic/out%203/on?host=pi-a&sn=abcd1234', body: '{"device":"dev_01","to":"on"}', authorization: null, contentType: 'application/json' });
    assert.equal(off!.method, 'PUT');
    assert.equal(off!.path, '/generic/out%203/off?host=pi-a&sn=abcd1234');
    await assert.rejects(d.on({ ...T, hostname: null }), failsWith(/power\.on uses \{\{hostname\}\} but device dev_01 has no hostname/));
  });

  it('Shelly Gen1 with Basic auth (password from a file); a wrong one is HTTP 401 without the password in the message', async () => {
    await control('basic?user=admin&password=s3cret-pw');
    writeFileSync(join(dir, 'shelly-pw'), 's3cret-pw\n');
    await driver({ preset: 'shelly-gen1', host, auth: { user: 'admin', passwordFile: join(dir, 'shelly-pw') } }).on(T);
    assert.equal((await log())[0]!.authorization, `Basic ${Buffer.from('admin:s3cret-pw').toString('base64')}`);
    await assert.rejects(driver({ preset: 'shelly-gen1', host, auth: { user: 'admin', password: 'wrong-pw' } }).on(T), failsWith(/GET http:\/\/127\.0\.0\.1:\d+\/relay\/0\?turn=on answered HTTP 401 \(expected 2xx\)/, 'wrong-pw'));
  });

  it('Tasmota auth goes in the query; the device ignoring a command (no password) fails on the body, and messages mask the password', async () => {
    await control('tasmota?password=tas-pw-9');
    await driver({ preset: 'tasmota', host, auth: { user: 'admin', password: 'tas-pw-9' } }).on(T);
    assert.equal((await log())[0]!.path, '/cm?cmnd=Power1%20On&user=admin&password=tas-pw-9');
    assert.equal((await state())['tasmota:POWER1'], true);
    await assert.rejects(driver({ preset: 'tasmota', host }).off(T), failsWith(/answered HTTP 200 without .*POWER.*WARNING/));
    await control('fail?status=500');
    await assert.rejects(driver({ preset: 'tasmota', host, auth: { user: 'admin', password: 'tas-pw-9' } }).off(T), failsWith(/user=\*\*\*&password=\*\*\* answered HTTP 500/, 'tas-pw-9'));
  });

  it('an Authorization header is sent and never shown', async () => {
    const d = driver({ url: `http://${host}/generic/{{action}}`, headers: { Authorization: 'Bearer plug-token-77' } });
    await d.on(T);
    assert.equal((await log())[0]!.authorization, 'Bearer plug-token-77');
    await control('fail?status=503');
    await assert.rejects(d.off(T), failsWith(/answered HTTP 503 \(expected 2xx\): .*failing on purpose/, 'plug-token-77'));
  });

  it('expectStatus narrows success; expectBody must match', async () => {
    await assert.rejects(driver({ url: `http://${host}/generic/{{action}}`, expectStatus: [204] }).on(T), failsWith(/answered HTTP 200 \(expected 204\)/));
    await assert.rejects(driver({ url: `http://${host}/generic/{{action}}`, expectBody: '"result":"ok"' }).on(T), failsWith(/without \/"result":"ok"\/ in the body/));
    await driver({ url: `http://${host}/nowhere/{{action}}`, expectStatus: [404] }).on(T);
  });

  it('status is unknown when the body matches neither pattern, and without a status request', async () => {
    const d = driver({ url: `http://${host}/generic/{{action}}`, status: { url: `http://${host}/generic/state`, onPattern: '"relay":"on"', offPattern: '"relay":"off"' } });
    assert.equal(await d.status(T), 'unknown');
    assert.equal(await driver({ url: `http://${host}/generic/{{action}}` }).status(T), 'unknown');
  });

  it('a silent peer times out; a closed port is refused', async () => {
    await control('slow?ms=3000');
    const started = Date.now();
    await assert.rejects(driver({ preset: 'shelly-gen2', host, timeoutMs: 300 }).on(T), failsWith(/Switch\.Set\?id=0&on=true: no answer within 300 ms/));
    assert.ok(Date.now() - started < 2000);
    const closed: Server = createServer();
    const port = await new Promise<number>((resolve) => closed.listen(0, '127.0.0.1', () => resolve((closed.address() as { port: number }).port)));
    await new Promise((r) => closed.close(r));
    await assert.rejects(driver({ url: `http://127.0.0.1:${port}/{{action}}` }).on(T), failsWith(/ECONNREFUSED/));
  });
});
