// The tpi driver. API mode against a BMC process (test/fixtures/power/bmc-server.mjs) answering
// like bmcd: over https with a self-signed certificate (trusted through caFile, or insecureTls,
// refused otherwise), Basic auth, per-node power set/get and the 0-based reset; plain http as on
// firmware 1.x; a BMC that never answers. CLI mode through a stand-in `tpi` on PATH
// (test/fixtures/power/fake-tpi.sh): there is no Turing Pi here, so only the exact command lines
// and the parsing of tpi's output are checked.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { prereq, which } from '../../test/helpers/prereq.js';
import { startNodeServer, type Peer } from '../../test/fixtures/power/child-process.js';
import { parseTpiStatus } from './drivers/tpi.js';
import { createPowerDriver, parsePowerConfig, type PowerDriver } from './index.js';
import { FIXTURES, T, failsWith } from '../../test/fixtures/power/expect.js';



interface BmcLog {
  state: Record<string, boolean>;
  requests: { method: string; path: string; authorized: boolean }[];
}

describe('tpi driver, api mode, against a BMC process over https', prereq('openssl', which('openssl') !== null, 'openssl'), () => {
  const dir = mkdtempSync(join(tmpdir(), 'drover-power-tpi-'));
  const logFile = join(dir, 'bmc.json');
  const cert = join(dir, 'bmc.pem');
  let bmc: Peer;
  let host = '';
  before(async () => {
    // A self-signed certificate like the BMC's, for the address the test talks to.
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=turingpi', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', cert], { stdio: 'ignore' });
    bmc = await startNodeServer(join(FIXTURES, 'bmc-server.mjs'), ['--tls', cert, join(dir, 'key.pem'), '--auth', 'root:turing-pw', '--log', logFile]);
    host = `127.0.0.1:${bmc.port}`;
  });
  after(async () => {
    await bmc?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const bmcLog = () => JSON.parse(readFileSync(logFile, 'utf8')) as BmcLog;
  const driver = (raw: Record<string, unknown>): PowerDriver =>
    createPowerDriver(parsePowerConfig({ driver: 'tpi', host, user: 'root', password: 'turing-pw', caFile: cert, ...raw }));

  it('switches one node and reads it back, trusting the BMC\'s certificate through caFile', async () => {
    const d = driver({ node: 3 });
    await d.on(T);
    assert.equal(bmcLog().state.node3, true);
    assert.equal(bmcLog().state.node1, false, 'other nodes keep their power');
    assert.equal(await d.status(T), 'on');
    await d.off(T);
    assert.equal(await d.status(T), 'off');
    assert.deepEqual(bmcLog().requests.map((r) => r.path), [
      '/api/bmc?opt=set&type=power&node3=1',
      '/api/bmc?opt=get&type=power',
      '/api/bmc?opt=set&type=power&node3=0',
      '/api/bmc?opt=get&type=power',
    ]);
    assert.ok(bmcLog().requests.every((r) => r.authorized));
  });

  it('cycle is off, pause, on; cycleMode reset asks the BMC to reset node N-1', async () => {
    await driver({ node: 2, cycleDelayMs: 150 }).cycle(T);
    assert.deepEqual(bmcLog().requests.slice(-2).map((r) => r.path), ['/api/bmc?opt=set&type=power&node2=0', '/api/bmc?opt=set&type=power&node2=1']);
    await driver({ node: 2, cycleMode: 'reset' }).cycle(T);
    assert.equal(bmcLog().requests.at(-1)!.path, '/api/bmc?opt=set&type=reset&node=1');
  });

  it('insecureTls accepts the self-signed certificate; without caFile or insecureTls it is refused with a hint', async () => {
    const creds = { user: 'root', password: 'turing-pw' };
    await createPowerDriver(parsePowerConfig({ driver: 'tpi', host, node: 1, ...creds, insecureTls: true })).on(T);
    assert.equal(bmcLog().state.node1, true);
    await assert.rejects(createPowerDriver(parsePowerConfig({ driver: 'tpi', host, node: 1, ...creds })).on(T), failsWith(/SELF_SIGNED.*set caFile/));
  });

  it('a wrong password is HTTP 401 without the password in the message; a password file works', async () => {
    await assert.rejects(driver({ node: 1, password: 'not-the-pw' }).on(T), failsWith(/answered HTTP 401 \(check user and password\)/, 'not-the-pw'));
    writeFileSync(join(dir, 'bmc-pw'), 'turing-pw\n');
    await createPowerDriver(parsePowerConfig({ driver: 'tpi', host, node: 4, user: 'root', passwordFile: join(dir, 'bmc-pw'), caFile: cert })).on(T);
    assert.equal(bmcLog().state.node4, true);
  });
});

describe('tpi driver, api mode, firmware 1.x style and a silent BMC', () => {
  let bmc: Peer;
  const dir = mkdtempSync(join(tmpdir(), 'drover-power-tpi1-'));
  let silent: ReturnType<typeof createServer>;
  const sockets: Socket[] = [];
  before(async () => {
    bmc = await startNodeServer(join(FIXTURES, 'bmc-server.mjs'), ['--log', join(dir, 'bmc.json')]);
    silent = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  });
  after(async () => {
    await bmc?.stop();
    for (const s of sockets) s.destroy();
    await new Promise((r) => silent.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('speaks plain http without auth', async () => {
    const d = createPowerDriver(parsePowerConfig({ driver: 'tpi', host: `127.0.0.1:${bmc.port}`, scheme: 'http', node: 1 }));
    await d.on(T);
    assert.equal(await d.status(T), 'on');
  });

  it('a BMC that accepts but never answers fails at the time limit', async () => {
    const port = (silent.address() as { port: number }).port;
    const started = Date.now();
    await assert.rejects(createPowerDriver(parsePowerConfig({ driver: 'tpi', host: `127.0.0.1:${port}`, scheme: 'http', node: 1, timeoutMs: 300 })).off(T), failsWith(/no answer within 300 ms/));
    assert.ok(Date.now() - started < 2000);
  });
});

describe('tpi driver, cli mode (stand-in tpi: no BMC here)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'drover-power-tpicli-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const bin = join(dir, 'bin');
  const stateDir = join(dir, 'state');
  mkdirSync(bin);
  mkdirSync(stateDir);
  copyFileSync(join(FIXTURES, 'fake-tpi.sh'), join(bin, 'tpi'));
  chmodSync(join(bin, 'tpi'), 0o755);
  const logFile = join(dir, 'argv.log');
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}`, FAKE_LOG: logFile, FAKE_STATE: stateDir, FAKE_PASSWORD: 'bmc-pw-1' };
  const driver = (raw: Record<string, unknown>) => createPowerDriver(parsePowerConfig({ driver: 'tpi', mode: 'cli', ...raw }), { env });
  const argv = () => readFileSync(logFile, 'utf8').trim().split('\n');
  beforeEach(() => rmSync(logFile, { force: true }));

  it('runs tpi [--host] [--user --password] power on|off -n N and reads "nodeN: On"', async () => {
    const d = driver({ node: 2, host: 'turingpi.lan', user: 'root', password: 'bmc-pw-1', cycleDelayMs: 100 });
    await d.on(T);
    assert.equal(await d.status(T), 'on');
    await d.cycle(T);
    await d.off(T);
    assert.equal(await d.status(T), 'off');
    const creds = '--host turingpi.lan --user root --password bmc-pw-1';
    assert.deepEqual(argv(), [`${creds} power on -n 2`, `${creds} power status`, `${creds} power off -n 2`, `${creds} power on -n 2`, `${creds} power off -n 2`, `${creds} power status`]);
  });

  it('cycleMode reset runs tpi power reset -n N; a failing tpi is DROVER_POWER_FAILED without the password', async () => {
    await driver({ node: 3, user: 'root', password: 'bmc-pw-1', cycleMode: 'reset' }).cycle(T);
    assert.deepEqual(argv(), ['--user root --password bmc-pw-1 power reset -n 3']);
    await assert.rejects(driver({ node: 3, user: 'root', password: 'guess-pw' }).on(T), failsWith(/tpi power on -n 3 failed \(exit 1\): Error: Unauthorized/, 'guess-pw'));
  });

  it('parses tpi power status output', () => {
    const out = 'node1: On\nnode2: off\nnode3: Off\nnode4: On\n';
    assert.deepEqual([1, 2, 3, 4].map((n) => parseTpiStatus(out, n)), ['on', 'off', 'off', 'on']);
    assert.equal(parseTpiStatus('error: connection refused', 1), 'unknown');
  });
});
