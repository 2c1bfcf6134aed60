// The clusterhat driver. There is no Cluster HAT here, so a stand-in clusterctrl
// (test/fixtures/power/fake-clusterctrl.sh, on PATH or through `binary`) records the exact
// command lines and answers like clusterctrl on a Cluster HAT v2.5 (its status lines and its
// "ERROR: Valid options are p1-p4" for a node it does not have).
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, beforeEach, describe, it } from 'node:test';
import { DroverError } from '../domain/errors.js';
import { parseClusterctrlStatus } from './drivers/clusterhat.js';
import { createPowerDriver, parsePowerConfig } from './index.js';
import { FIXTURES, T } from '../../test/fixtures/power/expect.js';


describe('clusterhat driver (stand-in clusterctrl: no Cluster HAT here)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'drover-power-clusterhat-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const bin = join(dir, 'bin');
  const stateDir = join(dir, 'state');
  mkdirSync(bin);
  mkdirSync(stateDir);
  copyFileSync(join(FIXTURES, 'fake-clusterctrl.sh'), join(bin, 'clusterctrl'));
  chmodSync(join(bin, 'clusterctrl'), 0o755);
  const logFile = join(dir, 'argv.log');
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}`, FAKE_LOG: logFile, FAKE_STATE: stateDir };
  const driver = (raw: Record<string, unknown>) => createPowerDriver(parsePowerConfig({ driver: 'clusterhat', ...raw }), { env });
  const argv = () => readFileSync(logFile, 'utf8').trim().split('\n');
  beforeEach(() => rmSync(logFile, { force: true }));

  it('runs clusterctrl on|off pN and reads pN from clusterctrl status', async () => {
    const d = driver({ node: 3, cycleDelayMs: 150 });
    assert.equal(await d.status(T), 'off');
    await d.on(T);
    assert.equal(await d.status(T), 'on');
    const started = Date.now();
    await d.cycle(T);
    assert.ok(Date.now() - started >= 150);
    assert.deepEqual(argv(), ['status', 'on p3', 'status', 'off p3', 'on p3']);
    assert.equal(await driver({ node: 1 }).status(T), 'off', 'other nodes are untouched');
  });

  it('a node the HAT does not have is DROVER_POWER_FAILED with clusterctrl\'s message', async () => {
    await assert.rejects(driver({ node: 7 }).on(T), (e: unknown) => e instanceof DroverError && e.code === 'DROVER_POWER_FAILED' && /clusterctrl on p7 failed \(exit 1\): ERROR: Valid options are p1-p4/.test(e.message));
    assert.equal(await driver({ node: 7 }).status(T), 'unknown');
  });

  it('uses the binary option instead of PATH', async () => {
    const d = createPowerDriver(parsePowerConfig({ driver: 'clusterhat', node: 2, binary: join(bin, 'clusterctrl') }), { env: { ...process.env, FAKE_LOG: logFile, FAKE_STATE: stateDir } });
    await d.off(T);
    assert.deepEqual(argv(), ['off p2']);
  });

  it('parses clusterctrl status, including Cluster CTRL boards with more nodes', () => {
    const out = 'clusterhat:1\nclusterctrl:1\nmaxpi:5\nhat_alert:0\np1:1\np2:0\nctrl20:FW:1.6 ADC1:5012mV T1:41.20C\np5:1\nu5:0\n';
    assert.deepEqual([1, 2, 5, 9].map((n) => parseClusterctrlStatus(out, n)), ['on', 'off', 'on', 'unknown']);
    assert.equal(parseClusterctrlStatus('p11:1\n', 1), 'unknown', 'p11 is not p1');
  });
});
