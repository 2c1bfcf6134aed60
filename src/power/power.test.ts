// Power drivers against real peers: a real script following bakery's PPI contract (exec), a
// real HTTP relay-board process speaking Shelly Gen1/Gen2, Tasmota and the Turing Pi 2 BMC API
// (http, tpi), Debian's snmpd with a writable pethPsePortAdminEnable column (snmp-poe). There is
// no USB hub, Cluster HAT or tpi CLI here: for uhubctl, clusterhat and tpi's CLI mode the test
// checks the exact command lines through stand-in programs that print the real tools' output.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { prereq, which } from '../../test/helpers/prereq.js';
import { DroverError } from '../domain/errors.js';
import { createPowerDriver, mergePowerConfig, parsePowerConfig, type PowerDriver } from './index.js';

const T = { deviceId: 'dev_1', serial: 'abcd1234', hostname: 'pi-a' };
const FIXTURES = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'power');
const dir = mkdtempSync(join(tmpdir(), 'drover-power-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const failsWith = (re: RegExp) => (e: unknown) => e instanceof DroverError && e.code === 'DROVER_POWER_FAILED' && re.test(e.message);
const driver = (cfg: unknown): PowerDriver => createPowerDriver(parsePowerConfig(cfg));

function script(name: string, body: string): string {
  const p = join(dir, name);
  writeFileSync(p, `#!/bin/sh\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}

describe('power config', () => {
  it('refuses unknown drivers, missing and unknown fields, wrong types — naming the field', () => {
    for (const [cfg, field] of [
      [{ driver: 'magic' }, 'driver'],
      [{ driver: 'exec' }, 'command'],
      [{ driver: 'exec', command: 'ppi' }, 'command'],
      [{ driver: 'exec', command: ['ppi'], colour: 1 }, 'colour'],
      [{ driver: 'http', preset: 'shelly-gen1' }, 'host'],
      [{ driver: 'http', on: 'http://x/on' }, 'off'],
      [{ driver: 'http', on: 'http://x/on', off: 'http://x/off', expectBody: '(' }, 'expectBody'],
      [{ driver: 'snmp-poe', host: 'sw1' }, 'port'],
      [{ driver: 'tpi', node: 1 }, 'url'],
      [{ driver: 'uhubctl', location: '1-1', port: 'two' }, 'port'],
    ] as const) {
      assert.throws(() => parsePowerConfig(cfg), (e: unknown) => e instanceof DroverError && e.code === 'DROVER_POWER_CONFIG' && e.message.includes(field), JSON.stringify(cfg));
    }
  });

  it('a device overrides its group key by key; another driver drops the group\'s keys', () => {
    assert.equal(mergePowerConfig(undefined, undefined), null);
    assert.deepEqual(mergePowerConfig({ driver: 'uhubctl', location: '1-1', port: 1 }, { port: 3 }), { driver: 'uhubctl', location: '1-1', port: 3 });
    assert.deepEqual(mergePowerConfig({ driver: 'uhubctl', location: '1-1', port: 1 }, { driver: 'clusterhat', node: 2 }), { driver: 'clusterhat', node: 2 });
  });
});

describe('exec driver (bakery PPI)', () => {
  const log = join(dir, 'ppi.log');
  const ppi = script('ppi.sh', `read -r req\necho "$req $DROVER_ACTION $DROVER_HOSTNAME" >> '${log}'\ncase "$req" in *status*) echo on;; *) echo ok;; esac`);

  it('sends {"piId","action"} on stdin; cycle is poweroff then poweron; status reads on/off', async () => {
    const d = driver({ driver: 'exec', command: [ppi], cycleDelayMs: 10 });
    await d.on(T);
    await d.cycle(T);
    assert.equal(await d.status(T), 'on');
    assert.deepEqual(readFileSync(log, 'utf8').trim().split('\n'), [
      '{"piId":"abcd1234","action":"poweron"} poweron pi-a',
      '{"piId":"abcd1234","action":"poweroff"} poweroff pi-a',
      '{"piId":"abcd1234","action":"poweron"} poweron pi-a',
      '{"piId":"abcd1234","action":"status"} status pi-a',
    ]);
  });

  it('a failing exit, a missing "ok", a hang and a missing program are DROVER_POWER_FAILED', async () => {
    await assert.rejects(driver({ driver: 'exec', command: [script('exit3.sh', 'echo relay stuck >&2; exit 3')] }).on(T), failsWith(/exited with 3: relay stuck/));
    await assert.rejects(driver({ driver: 'exec', command: [script('nope.sh', 'echo nope')] }).off(T), failsWith(/printed "nope", not "ok"/));
    await assert.rejects(driver({ driver: 'exec', command: [script('hang.sh', 'sleep 30')], timeoutMs: 300 }).on(T), failsWith(/did not finish within 300 ms/));
    await assert.rejects(driver({ driver: 'exec', command: [join(dir, 'missing')] }).on(T), failsWith(/not found/));
    assert.equal(await driver({ driver: 'exec', command: [script('exit1.sh', 'exit 1')] }).status(T), 'unknown');
  });
});

describe('http and tpi drivers against a relay-board process', () => {
  let relay: ChildProcess;
  let base = '';
  before(async () => {
    relay = spawn(process.execPath, [join(FIXTURES, 'relay-server.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
    const port = await new Promise<string>((resolve) => relay.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim())));
    base = `127.0.0.1:${port}`;
  });
  after(() => relay?.kill('SIGKILL'));
  const get = async (path: string) => (await fetch(`http://${base}${path}`)).json() as Promise<Record<string, unknown>>;

  it('Shelly Gen1, Shelly Gen2 and Tasmota presets switch the relay and read it back', async () => {
    for (const [preset, key] of [['shelly-gen1', 'relay1'], ['shelly-gen2', 'switch1'], ['tasmota', 'POWER2']] as const) {
      const d = driver({ driver: 'http', preset, host: base, relay: 1, cycleDelayMs: 10 });
      await d.on(T);
      assert.equal((await get('/state'))[key], true, preset);
      assert.equal(await d.status(T), 'on', preset);
      await d.off(T);
      assert.equal(await d.status(T), 'off', preset);
      await d.cycle(T);
      assert.equal(await d.status(T), 'on', preset);
    }
  });

  it('URL templates with placeholders, method and auth header; bad status and timeouts fail clearly', async () => {
    const d = driver({ driver: 'http', on: `http://${base}/relay/{{port}}?turn=on&who={{hostname}}`, off: `http://${base}/relay/{{port}}?turn=off`, port: '5', method: 'POST', headers: { authorization: 'Bearer plug-secret' }, expectBody: 'ison' });
    await d.on(T);
    const log = (await (await fetch(`http://${base}/log`)).json()) as { method: string; path: string; auth: string | null }[];
    const last = log[log.length - 2]!; // the last entry is this /log request
    assert.deepEqual(last, { method: 'POST', path: '/relay/5?turn=on&who=pi-a', auth: 'Bearer plug-secret' });
    await fetch(`http://${base}/fail?status=500`);
    await assert.rejects(d.off(T), (e: unknown) => failsWith(/HTTP 500/)(e) && !(e as Error).message.includes('plug-secret'));
    await fetch(`http://${base}/fail?status=0`);
    await assert.rejects(driver({ driver: 'http', on: `http://${base}/slow`, off: `http://${base}/slow`, timeoutMs: 300 }).on(T), failsWith(/no answer within 300 ms/));
  });

  it('Turing Pi 2 BMC API: set and get power per node', async () => {
    const d = driver({ driver: 'tpi', node: 3, url: `http://${base}`, username: 'root', password: 'turing', cycleDelayMs: 10 });
    await d.on(T);
    assert.equal((await get('/state')).node3, true);
    assert.equal(await d.status(T), 'on');
    await d.off(T);
    assert.equal(await d.status(T), 'off');
  });
});

describe('command-line drivers (stand-in programs: no hub, HAT or BMC here)', () => {
  const argvLog = join(dir, 'argv.log');
  it('uhubctl: -l LOC -p PORT -a on|off|cycle -d; status parses the port line', async () => {
    const bin = script('uhubctl', `echo "$@" >> '${argvLog}'\necho "Current status for hub 1-1 [2109:3431 USB2.0 Hub, USB 2.10, 4 ports, ppps]"\necho "  Port 2: 0100 power"\necho "  Port 3: 0000 off"`);
    const d = driver({ driver: 'uhubctl', location: '1-1', port: 3, binary: bin, cycleDelayMs: 2000 });
    await d.on(T);
    await d.off(T);
    await d.cycle(T);
    assert.equal(await d.status(T), 'off');
    assert.equal(await driver({ driver: 'uhubctl', location: '1-1', port: 2, binary: bin }).status(T), 'on');
    assert.deepEqual(readFileSync(argvLog, 'utf8').trim().split('\n').slice(0, 3), ['-l 1-1 -p 3 -a on', '-l 1-1 -p 3 -a off', '-l 1-1 -p 3 -a cycle -d 2']);
  });

  it('clusterhat: clusterctrl on|off pN; status reads pN:1', async () => {
    const log = join(dir, 'cc.log');
    const bin = script('clusterctrl', `echo "$@" >> '${log}'\n[ "$1" = status ] && printf 'clusterhat1:1\\np1:1\\np2:0\\np3:1\\np4:0\\n'\nexit 0`);
    const d = driver({ driver: 'clusterhat', node: 2, binary: bin, cycleDelayMs: 10 });
    await d.cycle(T);
    assert.equal(await d.status(T), 'off');
    assert.deepEqual(readFileSync(log, 'utf8').trim().split('\n'), ['off p2', 'on p2', 'status']);
  });

  it('tpi CLI mode: tpi power on|off -n N', async () => {
    const log = join(dir, 'tpi.log');
    const bin = script('tpi', `echo "$@" >> '${log}'\n[ "$2" = status ] && printf 'node1: On\\nnode2: Off\\n'\nexit 0`);
    const d = driver({ driver: 'tpi', mode: 'cli', node: 1, binary: bin, cycleDelayMs: 10 });
    await d.cycle(T);
    assert.equal(await d.status(T), 'on');
    assert.deepEqual(readFileSync(log, 'utf8').trim().split('\n'), ['power off -n 1', 'power on -n 1', 'power status']);
  });
});

const snmpd = which('snmpd', ['/usr/sbin']);
describe('snmp-poe driver against Debian snmpd', prereq('snmpd and snmpset', snmpd !== null && which('snmpset') !== null, 'snmpd snmp'), () => {
  let proc: ChildProcess;
  let port = 0;
  const sdir = join(dir, 'snmp');
  before(async () => {
    cpSync(FIXTURES, sdir, { recursive: true });
    for (const p of ['1.1', '1.2']) writeFileSync(join(sdir, `state.${p}`), '1\n');
    port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    writeFileSync(join(sdir, 'snmpd.conf'), `agentaddress udp:127.0.0.1:${port}\nrwcommunity sw-secret 127.0.0.1\npass .1.3.6.1.2.1.105.1.1.1.3 /bin/sh ${join(sdir, 'poe-pass.sh')}\n`);
    proc = spawn(snmpd!, ['-f', '-Lo', '-C', '-c', join(sdir, 'snmpd.conf'), '-p', join(sdir, 'snmpd.pid')], { stdio: 'ignore' });
    const d = driver({ driver: 'snmp-poe', host: '127.0.0.1', snmpPort: port, community: 'sw-secret', port: 2 });
    for (let i = 0; i < 50; i++) {
      if ((await d.status(T).catch(() => 'down')) !== 'down') return;
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  after(() => proc?.kill('SIGKILL'));

  it('sets and reads pethPsePortAdminEnable.1.P (1 = on, 2 = off); a wrong community fails without leaking it', async () => {
    const d = driver({ driver: 'snmp-poe', host: '127.0.0.1', snmpPort: port, community: 'sw-secret', port: 2, cycleDelayMs: 10 });
    assert.equal(await d.status(T), 'on');
    await d.off(T);
    assert.equal(readFileSync(join(sdir, 'state.1.2'), 'utf8').trim(), '2');
    assert.equal(await d.status(T), 'off');
    await d.cycle(T);
    assert.equal(readFileSync(join(sdir, 'state.1.2'), 'utf8').trim(), '1');
    const wrong = driver({ driver: 'snmp-poe', host: '127.0.0.1', snmpPort: port, community: 'guessed', port: 2, timeoutMs: 3000 });
    await assert.rejects(wrong.off(T), (e: unknown) => failsWith(/snmpset/)(e) && !(e as Error).message.includes('guessed'));
  });
});
