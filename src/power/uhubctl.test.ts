// The uhubctl driver. There is no USB hub with per-port power here, so a stand-in uhubctl
// (test/fixtures/power/fake-uhubctl.sh, found on PATH or through `binary`) records the exact
// command lines and prints what uhubctl 2.5 prints; the status parser is checked on real output
// shapes (USB2 lines, a USB3 companion hub). Where Debian's real uhubctl is installed, its
// answer for a hub that is not there is checked too.
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, beforeEach, describe, it } from 'node:test';
import { which } from '../../test/helpers/prereq.js';
import { parseUhubctlStatus } from './drivers/uhubctl.js';
import { createPowerDriver, parsePowerConfig } from './index.js';
import { FIXTURES, T, failsWith } from '../../test/fixtures/power/expect.js';



describe('uhubctl driver (stand-in uhubctl: no USB hub here)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'drover-power-uhubctl-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const bin = join(dir, 'bin');
  const stateDir = join(dir, 'state');
  mkdirSync(bin);
  mkdirSync(stateDir);
  copyFileSync(join(FIXTURES, 'fake-uhubctl.sh'), join(bin, 'uhubctl'));
  chmodSync(join(bin, 'uhubctl'), 0o755);
  const logFile = join(dir, 'argv.log');
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}`, FAKE_LOG: logFile, FAKE_STATE: stateDir, FAKE_HUB: '1-1.3' };
  const driver = (raw: Record<string, unknown>) => createPowerDriver(parsePowerConfig({ driver: 'uhubctl', location: '1-1.3', port: 2, ...raw }), { env });
  const argv = () => readFileSync(logFile, 'utf8').trim().split('\n');
  beforeEach(() => rmSync(logFile, { force: true }));

  it('runs uhubctl -l LOC -p PORT -a on|off and reads the port line back', async () => {
    const d = driver({});
    await d.off(T);
    assert.equal(await d.status(T), 'off');
    await d.on(T);
    assert.equal(await d.status(T), 'on');
    assert.deepEqual(argv(), ['-l 1-1.3 -p 2 -a off', '-l 1-1.3 -p 2', '-l 1-1.3 -p 2 -a on', '-l 1-1.3 -p 2']);
  });

  it('cycle is uhubctl\'s own: -a cycle -d SECONDS, with the delay inside the time limit', async () => {
    const started = Date.now();
    await driver({ cycleDelayMs: 250 }).cycle(T);
    assert.ok(Date.now() - started >= 250);
    // 300 ms alone would not cover uhubctl's 600 ms pause: the limit is timeout + delay.
    await driver({ cycleDelayMs: 600, timeoutMs: 300, exact: true, binary: join(bin, 'uhubctl') }).cycle(T);
    assert.deepEqual(argv(), ['-l 1-1.3 -p 2 -a cycle -d 0.25', '-l 1-1.3 -p 2 -e -a cycle -d 0.6']);
  });

  it('a hub that is not there is DROVER_POWER_FAILED with uhubctl\'s message', async () => {
    await assert.rejects(driver({ location: '1-1.4' }).on(T), failsWith(/uhubctl on of hub 1-1\.4 port 2 failed \(exit 1\): No compatible devices detected at location 1-1\.4!/));
    await assert.rejects(driver({ binary: join(dir, 'no-uhubctl') }).on(T), failsWith(/cannot run .*no-uhubctl: not found/));
  });

  it('parses uhubctl status output, agreeing across a USB3 hub\'s two halves', () => {
    const usb3 = (usb3Line: string, usb2Line: string) =>
      [
        'Current status for hub 2-1.4 [2109:0817 VIA Labs, Inc. USB3.0 Hub, USB 3.00, 4 ports, ppps]',
        usb3Line,
        'Current status for hub 1-1.4 [2109:2817 VIA Labs, Inc. USB2.0 Hub, USB 2.10, 4 ports, ppps]',
        usb2Line,
      ].join('\n');
    assert.equal(parseUhubctlStatus(usb3('  Port 2: 02a0 power Rx.Detect', '  Port 2: 0100 power'), 2), 'on');
    assert.equal(parseUhubctlStatus(usb3('  Port 2: 0080 off', '  Port 2: 0000 off'), 2), 'off');
    assert.equal(parseUhubctlStatus(usb3('  Port 2: 0080 off', '  Port 2: 0503 power highspeed enable connect [0483:3748 STLink]'), 2), 'unknown');
    assert.equal(parseUhubctlStatus('  Port 12: 0100 power', 1), 'unknown', 'port 12 is not port 1');
    assert.equal(parseUhubctlStatus('', 1), 'unknown');
  });
});

const realUhubctl = which('uhubctl', ['/usr/sbin', '/sbin']);
describe('the real uhubctl, for a hub that is not there', { skip: realUhubctl === null ? 'uhubctl is not installed (Debian package uhubctl); only the stand-in was used' : false }, () => {
  it('is DROVER_POWER_FAILED carrying uhubctl\'s own words', async () => {
    // 99-99 is no USB location any machine has, so nothing is switched.
    const d = createPowerDriver(parsePowerConfig({ driver: 'uhubctl', location: '99-99', port: 1, binary: realUhubctl! }));
    await assert.rejects(d.off(T), failsWith(/failed \(exit 1\): No compatible devices detected at location 99-99!/));
  });
});
