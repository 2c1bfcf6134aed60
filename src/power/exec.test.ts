// The exec driver against a real PPI script (test/fixtures/power/ppi.sh): bakery's contract byte
// for byte (JSON on stdin without a newline, "ok" on stdout, nothing on stderr, exit 0), the
// environment and working directory it gets, cycle order, and every way a PPI call fails.
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, beforeEach, describe, it } from 'node:test';
import { createPowerDriver, parsePowerConfig, type PowerDriver } from './index.js';
import { FIXTURES, T, failsWith } from '../../test/fixtures/power/expect.js';


/** Processes of process group `pgid` that are not zombies (from /proc/PID/stat: state and pgrp). */
function liveGroupMembers(pgid: number): string[] {
  const live: string[] = [];
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue;
    }
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z') live.push(pid);
  }
  return live;
}


describe('exec driver (bakery PPI)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'drover-power-exec-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const ppi = join(dir, 'ppi');
  copyFileSync(join(FIXTURES, 'ppi.sh'), ppi);
  chmodSync(ppi, 0o755);
  const logFile = join(dir, 'ppi.log');
  const env = { ...process.env, PPI_LOG: logFile };
  const driver = (raw: Record<string, unknown>): PowerDriver => createPowerDriver(parsePowerConfig({ driver: 'exec', ...raw }), { env });
  const calls = () => readFileSync(logFile, 'utf8').trim().split('\n').map((l) => l.split('|'));

  beforeEach(() => {
    rmSync(logFile, { force: true });
    rmSync(`${logFile}.state`, { force: true });
  });

  it('sends bakery\'s request on stdin, with the device in the environment, from the PPI\'s directory', async () => {
    await driver({ command: [ppi, 'ok'] }).on(T);
    const [line] = calls();
    assert.deepEqual(line, ['{"piId":"abcd1234","action":"poweron"}', 'poweron', 'dev_01', 'abcd1234', 'pi-a', dir, 'ok']);
  });

  it('cycles as poweroff, pause, poweron; status reads on/off', async () => {
    const d = driver({ command: [ppi], cycleDelayMs: 300 });
    await d.off(T);
    assert.equal(await d.status(T), 'off');
    const started = Date.now();
    await d.cycle(T);
    assert.ok(Date.now() - started >= 300, 'the pause is kept');
    assert.equal(await d.status(T), 'on');
    assert.deepEqual(calls().map((c) => c[1]), ['poweroff', 'status', 'poweroff', 'poweron', 'status']);
  });

  it('fills the piId template; a device without the value it needs fails clearly', async () => {
    await driver({ command: [ppi], piId: 'rack1/{{hostname}}' }).on(T);
    assert.equal(calls()[0]![0], '{"piId":"rack1/pi-a","action":"poweron"}');
    await assert.rejects(driver({ command: [ppi], piId: '{{hostname}}' }).on({ ...T, hostname: null }), failsWith(/piId uses \{\{hostname\}\} but device dev_01 has no hostname/));
  });

  it('takes "ok" with a trailing newline, but not "OK" or nothing (case-sensitive like bakery)', async () => {
    await driver({ command: [ppi, 'echo'] }).on(T);
    await assert.rejects(driver({ command: [ppi, 'OK'] }).on(T), failsWith(/poweron printed "OK" instead of "ok"/));
    await assert.rejects(driver({ command: [ppi, 'nothing'] }).off(T), failsWith(/poweroff printed nothing instead of "ok"/));
  });

  it('a non-zero exit fails with its code and stderr; stderr output fails even with "ok" (bakery\'s rule)', async () => {
    await assert.rejects(driver({ command: [ppi, 'fail'] }).on(T), failsWith(/poweron failed \(exit 3\): relay 3 stuck/));
    await assert.rejects(driver({ command: [ppi, 'stderr'] }).on(T), failsWith(/wrote to stderr.*firmware is old/));
  });

  it('status is unknown when a bakery PPI answers "ok" to an action it does not know', async () => {
    assert.equal(await driver({ command: [ppi, 'bakery'] }).status(T), 'unknown');
    assert.equal(await driver({ command: [ppi, 'fail'] }).status(T), 'unknown');
  });

  it('kills a PPI that hangs, with its children, at the time limit', async () => {
    const started = Date.now();
    await assert.rejects(driver({ command: [ppi, 'hang'], timeoutMs: 500 }).off(T), failsWith(/did not finish within 500 ms and was killed/));
    assert.ok(Date.now() - started < 3000, 'it does not wait for the 30 s sleep');
    const pid = Number(readFileSync(`${logFile}.pid`, 'utf8'));
    // The script led its own process group; no member of it (the script, its sleep) is left
    // running. Killed members may linger as zombies until their parent or init reaps them.
    for (let i = 0; i < 20 && liveGroupMembers(pid).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(liveGroupMembers(pid), [], 'the script and its sleep are gone');
  });

  it('a missing or non-executable program is DROVER_POWER_FAILED naming it', async () => {
    await assert.rejects(driver({ command: [join(dir, 'no-such-ppi')] }).on(T), failsWith(/cannot run .*no-such-ppi: not found/));
    const notExec = join(dir, 'not-executable');
    copyFileSync(join(FIXTURES, 'ppi.sh'), notExec);
    chmodSync(notExec, 0o644);
    await assert.rejects(driver({ command: [notExec] }).on(T), failsWith(/cannot run .*not-executable: permission denied/));
    await assert.rejects(driver({ command: [notExec] }).status(T), failsWith(/permission denied/));
  });
});
