import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  cpuFractions,
  MetricsCollector,
  parseLoadavg,
  parseMeminfo,
  parseNetDev,
  parseProcStat,
  parseThermal,
  parseThrottled,
  parseUptime,
} from './metrics.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'drover-agent-metrics-'));
  dirs.push(d);
  return d;
}

function put(root: string, rel: string, text: string): void {
  mkdirSync(dirname(join(root, rel)), { recursive: true });
  writeFileSync(join(root, rel), text);
}

// A Raspberry Pi 4 (4 cores, kernel 6.1): /proc/stat with the 10-column cpu lines.
const PI4_STAT_1 = `cpu  22734 52 11378 1593120 2571 0 516 0 0 0
cpu0 5937 12 3017 397366 797 0 359 0 0 0
cpu1 5611 14 2773 398650 591 0 63 0 0 0
cpu2 5546 13 2812 398675 593 0 50 0 0 0
cpu3 5640 13 2776 398429 590 0 44 0 0 0
intr 3917207 0 17582 1285627 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
ctxt 6423871
btime 1700000000
processes 4521
procs_running 1
procs_blocked 0
softirq 1450213 6 276583 1022 33410 0 0 178121 384726 0 576345
`;
// One interval later: cpu0 busy +75 of 100 jiffies, cpu1 +10 of 100, cpu2 idle, cpu3 +100 of 100 (iowait counts as idle).
const PI4_STAT_2 = `cpu  0 0 0 0 0 0 0 0 0 0
cpu0 5987 12 3037 397391 797 0 364 0 0 0
cpu1 5616 14 2778 398740 591 0 63 0 0 0
cpu2 5546 13 2812 398755 613 0 50 0 0 0
cpu3 5740 13 2776 398429 590 0 44 0 0 0
intr 0
`;
const PI4_MEMINFO = `MemTotal:        3884192 kB
MemFree:         3056556 kB
MemAvailable:    3402784 kB
Buffers:           30464 kB
Cached:           383072 kB
SwapCached:            0 kB
`;
const NET_DEV = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  123456     789    0    0    0     0          0         0   123456     789    0    0    0     0       0          0
  eth0: 98765432  65432    0    0    0     0          0       120 12345678   23456    0    0    0     0       0          0
 wlan0:1000 10    0    0    0     0          0         0     2000      20    0    0    0     0       0          0
`;

function fixtureRoot(): string {
  const root = tempDir();
  put(root, 'proc/stat', PI4_STAT_1);
  put(root, 'proc/loadavg', '0.42 0.35 0.30 1/182 4521\n');
  put(root, 'proc/meminfo', PI4_MEMINFO);
  put(root, 'proc/net/dev', NET_DEV);
  put(root, 'proc/uptime', '3456.78 13000.12\n');
  put(root, 'proc/sys/kernel/random/boot_id', '0b4d1e7a-3c2f-4b8e-9f1a-2d3c4b5a6978\n');
  put(root, 'sys/class/thermal/thermal_zone0/temp', '48686\n');
  put(root, 'sys/class/thermal/thermal_zone1/temp', '51234\n');
  put(root, 'sys/class/thermal/cooling_device0/cur_state', '0\n');
  return root;
}

describe('metrics parsers', () => {
  it('parses a Pi 4 /proc/stat into 4 per-core counters (iowait is idle, guest not double-counted)', () => {
    const t = parseProcStat(PI4_STAT_1);
    assert.equal(t.length, 4);
    assert.deepEqual(t[0], { busy: 5937 + 12 + 3017 + 359, total: 5937 + 12 + 3017 + 397366 + 797 + 359 });
    assert.deepEqual(cpuFractions(parseProcStat(PI4_STAT_1), parseProcStat(PI4_STAT_2)), [0.75, 0.1, 0, 1]);
  });

  it('cpu fractions: first reading counts from boot, counters going back restart, zero delta is 0', () => {
    const a = [{ busy: 50, total: 200 }];
    assert.deepEqual(cpuFractions(null, a), [0.25]);
    assert.deepEqual(cpuFractions(a, a), [0]);
    assert.deepEqual(cpuFractions([{ busy: 100, total: 1000 }], a), [0.25]);
    assert.deepEqual(cpuFractions(a, [...a, { busy: 1, total: 3 }]), [0, 0.333]);
  });

  it('parses loadavg, meminfo (bytes), net/dev (no lo), uptime, thermal and throttled', () => {
    assert.deepEqual(parseLoadavg('0.42 0.35 0.30 1/182 4521\n'), [0.42, 0.35, 0.3]);
    assert.deepEqual(parseMeminfo(PI4_MEMINFO), [3884192 * 1024, 3402784 * 1024]);
    assert.deepEqual(parseMeminfo('MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 10 kB\nCached: 20 kB\n'), [1024000, 130 * 1024]);
    assert.deepEqual(parseNetDev(NET_DEV), [98765432 + 1000, 12345678 + 2000]);
    assert.equal(parseUptime('3456.78 13000.12\n'), 3456);
    assert.equal(parseThermal('48686\n'), 48.7);
    assert.equal(parseThermal('-273150'), null);
    assert.equal(parseThermal(''), null);
    assert.equal(parseThrottled('throttled=0x50005\n'), 0x50005);
    assert.equal(parseThrottled('throttled=0x0'), 0);
    assert.equal(parseThrottled('error=1'), null);
  });
});

describe('MetricsCollector', () => {
  it('reads a fixture proc-root exactly', async () => {
    const root = fixtureRoot();
    const c = new MetricsCollector({ procRoot: root, diskPath: root, vcgencmd: false });
    const m1 = await c.sample();
    assert.equal(m1.cpu.length, 4);
    put(root, 'proc/stat', PI4_STAT_2);
    const m2 = await c.sample();
    assert.deepEqual(m2.cpu, [0.75, 0.1, 0, 1]);
    assert.deepEqual(m2.load, [0.42, 0.35, 0.3]);
    assert.deepEqual(m2.mem, [3884192 * 1024, 3402784 * 1024]);
    assert.deepEqual(m2.net, [98766432, 12347678]);
    assert.equal(m2.uptime, 3456);
    assert.equal(m2.temp, 51.2);
    assert.equal(m2.throttled, undefined);
    assert.equal('throttled' in m2, false, 'absent, not undefined-valued');
    assert.ok(m2.disk[0] > 0 && m2.disk[1] <= m2.disk[0]);
    assert.equal(await c.bootId(), '0b4d1e7a-3c2f-4b8e-9f1a-2d3c4b5a6978');
    assert.equal(await c.imageId(), null);
    put(root, 'etc/drover/image-id', 'img_pi-os-lite_2024\n');
    assert.equal(await c.imageId(), 'img_pi-os-lite_2024');
  });

  it('leaves temp out on a board without thermal zones and falls back when a source is missing', async () => {
    const root = fixtureRoot();
    rmSync(join(root, 'sys'), { recursive: true });
    rmSync(join(root, 'proc/loadavg'));
    const warnings: string[] = [];
    const log = { debug() {}, info() {}, error() {}, warn: (_f: object, msg: string) => void warnings.push(msg) };
    const c = new MetricsCollector({ procRoot: root, diskPath: root, vcgencmd: false, log });
    const m = await c.sample();
    assert.equal('temp' in m, false);
    assert.deepEqual(m.load, [0, 0, 0]);
    await c.sample();
    assert.equal(warnings.length, 1, 'warned once, not per sample');
  });

  it('runs vcgencmd at most once per interval and caches the value', async () => {
    const root = fixtureRoot();
    const bin = join(root, 'vcgencmd');
    const count = join(root, 'count');
    writeFileSync(bin, `#!/bin/sh\n[ "$1" = get_throttled ] || exit 2\necho x >> '${count}'\necho throttled=0x50005\n`);
    chmodSync(bin, 0o755);
    const c = new MetricsCollector({ procRoot: root, diskPath: root, vcgencmd: bin, throttledEveryMs: 300 });
    assert.equal((await c.sample()).throttled, 0x50005);
    for (let i = 0; i < 5; i++) assert.equal((await c.sample()).throttled, 0x50005);
    assert.equal(readFileSync(count, 'utf8').split('\n').filter(Boolean).length, 1);
    await new Promise((r) => setTimeout(r, 350));
    await c.sample(); // starts a refresh in the background
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(readFileSync(count, 'utf8').split('\n').filter(Boolean).length, 2);
  });

  it('a hanging vcgencmd is killed after its timeout; the sample goes out without throttled', async () => {
    const root = fixtureRoot();
    const bin = join(root, 'vcgencmd');
    writeFileSync(bin, '#!/bin/sh\nexec sleep 10\n');
    chmodSync(bin, 0o755);
    const c = new MetricsCollector({ procRoot: root, diskPath: root, vcgencmd: bin, throttledTimeoutMs: 200 });
    const t0 = performance.now();
    const m = await c.sample();
    assert.ok(performance.now() - t0 < 2000);
    assert.equal('throttled' in m, false);
  });

  it('reads the real /proc of this machine', async () => {
    const c = new MetricsCollector({ vcgencmd: false });
    await c.sample();
    await new Promise((r) => setTimeout(r, 50));
    const m = await c.sample();
    assert.ok(m.cpu.length >= 1);
    for (const f of m.cpu) assert.ok(f >= 0 && f <= 1);
    assert.ok(m.load.every((x) => Number.isFinite(x) && x >= 0));
    assert.ok(m.mem[0] > 0 && m.mem[1] > 0 && m.mem[1] <= m.mem[0]);
    assert.ok(m.disk[0] > 0 && m.disk[1] <= m.disk[0]);
    assert.ok(m.net[0] >= 0 && m.net[1] >= 0);
    assert.ok(m.uptime > 0);
    if (m.temp !== undefined) assert.ok(m.temp > -100 && m.temp < 200);
    assert.match(await c.bootId(), /^[0-9a-f-]{36}$/);
    // Everything is plain JSON numbers the controller's validator takes.
    assert.deepEqual(JSON.parse(JSON.stringify(m)), m);
  });
});
