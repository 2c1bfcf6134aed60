// The snmp-poe driver against Debian's snmpd, started here on 127.0.0.1 with a private config: a
// `pass` script (test/fixtures/power/poe-pass.sh) implements the writable POWER-ETHERNET-MIB
// column pethPsePortAdminEnable for ports 1.1-1.4, keeping each port's state in a file, so a SET
// from the driver really changes what the next GET returns. SNMP v2c (community inline and from a
// file) and v3 (SHA-256/AES); the tools are wrapped to prove no secret reaches their argv.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { prereq, which } from '../../test/helpers/prereq.js';
import { freeUdpPort, stopProcess } from '../../test/fixtures/power/child-process.js';
import { createPowerDriver, parsePowerConfig, type PowerDriver } from './index.js';
import { FIXTURES, T, failsWith } from '../../test/fixtures/power/expect.js';

const OID = '1.3.6.1.2.1.105.1.1.1.3';


const snmpd = which('snmpd', ['/usr/sbin', '/sbin']);
const snmpset = which('snmpset');
const snmpget = which('snmpget');
const haveTools = snmpd !== null && snmpset !== null && snmpget !== null;

describe('snmp-poe driver against Debian snmpd', prereq('snmpd, snmpset and snmpget', haveTools, 'snmpd snmp'), () => {
  const dir = mkdtempSync(join(tmpdir(), 'drover-power-snmpd-'));
  const bin = join(dir, 'bin');
  const argvLog = join(dir, 'argv.log');
  let proc: ChildProcess | undefined;
  let port = 0;
  let env: NodeJS.ProcessEnv = {};

  before(async () => {
    copyFileSync(join(FIXTURES, 'poe-pass.sh'), join(dir, 'poe-pass.sh'));
    mkdirSync(join(dir, 'persist'));
    // snmpset/snmpget wrappers first on the driver's PATH: they record their argv, then run the real tool.
    mkdirSync(bin);
    for (const [name, real] of [['snmpset', snmpset!], ['snmpget', snmpget!]] as const) {
      writeFileSync(join(bin, name), `#!/bin/sh\necho "${name} $*" >> '${argvLog}'\nexec '${real}' "$@"\n`);
      chmodSync(join(bin, name), 0o755);
    }
    env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` };
    port = await freeUdpPort();
    writeFileSync(
      join(dir, 'snmpd.conf'),
      [
        'rwcommunity sw-secret 127.0.0.1',
        'createUser drover SHA-256 "auth pass phrase" AES "priv-pass-1"',
        'rwuser drover priv',
        `pass .${OID} /bin/sh ${join(dir, 'poe-pass.sh')}`,
        '',
      ].join('\n'),
    );
    proc = spawn(snmpd!, ['-f', '-Lo', '-C', '-c', join(dir, 'snmpd.conf'), '-p', join(dir, 'snmpd.pid'), `udp:127.0.0.1:${port}`], {
      stdio: 'ignore',
      env: { ...process.env, SNMP_PERSISTENT_DIR: join(dir, 'persist') },
    });
    writeFileSync(join(dir, 'state.1.1'), '1\n');
    const probe = driver({ ifPort: 1, timeoutMs: 500, retries: 0 });
    for (let i = 0; i < 50; i++) {
      if ((await probe.status(T).catch(() => 'down')) !== 'down') return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`snmpd did not answer on 127.0.0.1:${port}`);
  });
  after(async () => {
    if (proc) await stopProcess(proc);
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    for (const p of [1, 2, 3, 4]) writeFileSync(join(dir, `state.1.${p}`), '1\n');
    rmSync(join(dir, 'sets.log'), { force: true });
    rmSync(argvLog, { force: true });
  });

  function driver(raw: Record<string, unknown>): PowerDriver {
    return createPowerDriver(parsePowerConfig({ driver: 'snmp-poe', host: '127.0.0.1', port, community: 'sw-secret', ...raw }), { env });
  }
  const portState = (p: number) => readFileSync(join(dir, `state.1.${p}`), 'utf8').trim();
  const ourTempDirs = () => readdirSync(tmpdir()).filter((n) => n.startsWith('drover-snmp-')).length;

  it('switches pethPsePortAdminEnable.1.P on the agent and reads it back (1 = on, 2 = off)', async () => {
    const d = driver({ ifPort: 2 });
    assert.equal(await d.status(T), 'on');
    await d.off(T);
    assert.equal(portState(2), '2');
    assert.equal(await d.status(T), 'off');
    assert.equal(portState(1), '1', 'the neighbour port keeps its power');
    await d.on(T);
    assert.equal(portState(2), '1');
  });

  it('cycle is a SET to 2, a pause, a SET to 1', async () => {
    const started = Date.now();
    await driver({ ifPort: 3, cycleDelayMs: 300 }).cycle(T);
    assert.ok(Date.now() - started >= 300);
    assert.deepEqual(readFileSync(join(dir, 'sets.log'), 'utf8').trim().split('\n'), ['1.3 2', '1.3 1']);
  });

  it('keeps the community off the command line and reads it from communityFile', async () => {
    const before = ourTempDirs();
    writeFileSync(join(dir, 'community'), 'sw-secret\n');
    const d = createPowerDriver(parsePowerConfig({ driver: 'snmp-poe', host: '127.0.0.1', port, communityFile: join(dir, 'community'), ifPort: 4 }), { env });
    await d.off(T);
    assert.equal(portState(4), '2');
    const calls = readFileSync(argvLog, 'utf8');
    assert.ok(!calls.includes('sw-secret'), calls);
    assert.match(calls, new RegExp(`^snmpset -v2c -Oqve -t [0-9.]+ -r 1 udp:127\\.0\\.0\\.1:${port} ${OID.replace(/\./g, '\\.')}\\.1\\.4 i 2$`, 'm'));
    assert.equal(ourTempDirs(), before, 'the private snmp.conf directory is removed');
  });

  it('a wrong community times out (the agent stays silent) without the community in the message', async () => {
    await assert.rejects(driver({ ifPort: 2, community: 'guessed-community', timeoutMs: 1000, retries: 0 }).off(T), failsWith(/snmpset udp:127\.0\.0\.1:\d+ .*\.1\.2 = 2 failed \(exit 1\): Timeout: No Response .*wrong community/, 'guessed-community'));
    assert.equal(portState(2), '1');
  });

  it('a port the switch does not have: GET says so, SET is notWritable', async () => {
    await assert.rejects(driver({ ifPort: 9 }).status(T), failsWith(/the switch has no such port \(No Such Instance/));
    await assert.rejects(driver({ ifPort: 9 }).on(T), failsWith(/failed \(exit 2\): .*notWritable/));
  });

  it('SNMPv3 with authentication and privacy; a wrong passphrase is an authentication failure', async () => {
    const v3 = { community: undefined, version: 'v3', user: 'drover', authProtocol: 'SHA-256', privProtocol: 'AES', privPassword: 'priv-pass-1' };
    const d = driver({ ...v3, authPassword: 'auth pass phrase', ifPort: 1 });
    await d.off(T);
    assert.equal(portState(1), '2');
    assert.equal(await d.status(T), 'off');
    const calls = readFileSync(argvLog, 'utf8');
    assert.ok(!calls.includes('auth pass phrase') && !calls.includes('priv-pass-1'), calls);
    await assert.rejects(driver({ ...v3, authPassword: 'wrong phrase!', ifPort: 1, timeoutMs: 2000 }).on(T), failsWith(/Authentication failure/, 'wrong phrase!'));
  });
});
