// One metrics sample, read cheaply: a handful of small /proc and /sys files and one statfs per
// sample, no child process except vcgencmd (only where it exists, at most once a minute, with
// a timeout, cached in between). The parsers are exported pure functions so tests can check
// them against fixtures; MetricsCollector holds the only state (the previous CPU counters).
import { execFile } from 'node:child_process';
import { readdir, readFile, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentLogger } from './log.js';
import type { Metrics } from './protocol.js';
import { findOnPath } from './which.js';

/** Jiffies of one CPU line: `busy` excludes idle and iowait; `total` is all of them. */
export interface CpuTimes {
  busy: number;
  total: number;
}

/** Per-core counters from /proc/stat (`cpuN` lines only, the aggregate `cpu` line is skipped). */
export function parseProcStat(text: string): CpuTimes[] {
  const out: CpuTimes[] = [];
  for (const line of text.split('\n')) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    // user nice system idle iowait irq softirq steal [guest guest_nice]; guest time is already
    // counted in user/nice, so it is left out of the total.
    const v = m[2]!.trim().split(/\s+/).slice(0, 8).map(Number);
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = v.map((x) => (Number.isFinite(x) ? x : 0));
    const idleAll = idle + iowait;
    const total = user + nice + system + idleAll + irq + softirq + steal;
    out[Number(m[1])] = { busy: total - idleAll, total };
  }
  // A core that is offline has no line; its slot reads as never busy rather than leaving a hole.
  for (let i = 0; i < out.length; i++) out[i] ??= { busy: 0, total: 0 };
  return out;
}

/** Busy fraction per core between two readings (3 decimals, 0..1); a core new since `prev` counts from boot. */
export function cpuFractions(prev: CpuTimes[] | null, cur: CpuTimes[]): number[] {
  return cur.map((c, i) => {
    const p = prev?.[i];
    let dBusy = c.busy - (p?.busy ?? 0);
    let dTotal = c.total - (p?.total ?? 0);
    // Counters that went backwards (a core went offline and back) restart from boot.
    if (dTotal < 0 || dBusy < 0) {
      dBusy = c.busy;
      dTotal = c.total;
    }
    if (dTotal <= 0) return 0;
    return Math.round(Math.min(1, Math.max(0, dBusy / dTotal)) * 1000) / 1000;
  });
}

export function parseLoadavg(text: string): [number, number, number] {
  const [a, b, c] = text.trim().split(/\s+/).map(Number);
  return [finite(a), finite(b), finite(c)];
}

/** [MemTotal, MemAvailable] in bytes; kernels before 3.14 lack MemAvailable, then free+buffers+cached. */
export function parseMeminfo(text: string): [number, number] {
  const kb = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(\w+):\s+(\d+)/.exec(line);
    if (m) kb.set(m[1]!, Number(m[2]));
  }
  const total = kb.get('MemTotal') ?? 0;
  const avail = kb.get('MemAvailable') ?? (kb.get('MemFree') ?? 0) + (kb.get('Buffers') ?? 0) + (kb.get('Cached') ?? 0);
  return [total * 1024, avail * 1024];
}

/** Received and transmitted bytes summed over every interface but lo. */
export function parseNetDev(text: string): [number, number] {
  let rx = 0;
  let tx = 0;
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const iface = line.slice(0, colon).trim();
    if (iface === 'lo' || iface === '' || iface.includes('|')) continue;
    // Old kernels print "eth0:123" without a space, hence the split at the colon.
    const f = line.slice(colon + 1).trim().split(/\s+/).map(Number);
    rx += finite(f[0]);
    tx += finite(f[8]);
  }
  return [rx, tx];
}

/** Whole seconds since boot. */
export function parseUptime(text: string): number {
  return Math.floor(finite(Number(text.trim().split(/\s+/)[0])));
}

/** `throttled=0x50005` → 327685; null when the output is not that. */
export function parseThrottled(text: string): number | null {
  const m = /throttled=(0x[0-9a-f]+|\d+)/i.exec(text);
  if (!m) return null;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) && n >= 0 ? n : null;
}

/** Millidegrees → °C with one decimal; null for readings no board produces (absent sensors say -273 °C or so). */
export function parseThermal(text: string): number | null {
  const n = Number(text.trim());
  if (!Number.isFinite(n) || text.trim() === '') return null;
  const c = Math.round(n / 100) / 10;
  return c >= -100 && c <= 200 ? c : null;
}

function finite(n: number | undefined): number {
  return n !== undefined && Number.isFinite(n) ? n : 0;
}

export interface MetricsOptions {
  /** /proc, /sys and etc/drover/image-id are read under this root. */
  procRoot?: string;
  /** statfs target. */
  diskPath?: string;
  /**
   * The vcgencmd binary: a path, `null` to look it up on PATH (once), `false` for none
   * (tests, non-Pi hosts).
   */
  vcgencmd?: string | null | false;
  /** Least time between two vcgencmd runs; the value is cached in between. */
  throttledEveryMs?: number;
  /** vcgencmd gets this long before it is killed. */
  throttledTimeoutMs?: number;
  log?: AgentLogger;
}

export class MetricsCollector {
  private readonly root: string;
  private readonly diskPath: string;
  private prevCpu: CpuTimes[] | null = null;
  private vcgencmd: Promise<string | null> | null = null;
  private throttled: number | undefined;
  private throttledAt = -Infinity;
  private throttledRun: Promise<void> | null = null;
  /** Sources that failed once: warned about once, not on every sample. */
  private readonly failed = new Set<string>();

  constructor(private readonly opts: MetricsOptions = {}) {
    this.root = opts.procRoot ?? '/';
    this.diskPath = opts.diskPath ?? '/';
    if (opts.vcgencmd === false) this.vcgencmd = Promise.resolve(null);
    else if (typeof opts.vcgencmd === 'string') this.vcgencmd = Promise.resolve(opts.vcgencmd);
  }

  private path(...parts: string[]): string {
    return join(this.root, ...parts);
  }

  /** Reads one source; a source that cannot be read gives `fallback` (and one warning), so a sample always goes out. */
  private async read<T>(name: string, fn: () => Promise<T>, fallback: T): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (!this.failed.has(name)) {
        this.failed.add(name);
        this.opts.log?.warn({ source: name, err: (err as Error).message }, 'metrics source unavailable; reporting a default');
      }
      return fallback;
    }
  }

  async sample(): Promise<Metrics> {
    const text = (p: string) => readFile(this.path(p), 'utf8');
    const [stat, load, mem, disk, temp, throttled, net, uptime] = await Promise.all([
      this.read('/proc/stat', async () => parseProcStat(await text('proc/stat')), null),
      this.read('/proc/loadavg', async () => parseLoadavg(await text('proc/loadavg')), [0, 0, 0] as [number, number, number]),
      this.read('/proc/meminfo', async () => parseMeminfo(await text('proc/meminfo')), [0, 0] as [number, number]),
      this.read('statfs', async () => {
        const s = await statfs(this.diskPath);
        return [s.blocks * s.bsize, s.bavail * s.bsize] as [number, number];
      }, [0, 0] as [number, number]),
      this.temperature(),
      this.readThrottled(),
      this.read('/proc/net/dev', async () => parseNetDev(await text('proc/net/dev')), [0, 0] as [number, number]),
      this.read('/proc/uptime', async () => parseUptime(await text('proc/uptime')), 0),
    ]);
    // The controller takes at most 256 cores per sample; no Pi comes close.
    const cpu = stat ? cpuFractions(this.prevCpu, stat).slice(0, 256) : [];
    if (stat) this.prevCpu = stat;
    const m: Metrics = { cpu, load, mem, disk, net, uptime };
    if (temp !== null) m.temp = temp;
    if (throttled !== undefined) m.throttled = throttled;
    return m;
  }

  /** The hottest thermal zone; null on boards without one. */
  private async temperature(): Promise<number | null> {
    const dir = this.path('sys/class/thermal');
    let names: string[];
    try {
      names = (await readdir(dir)).filter((n) => n.startsWith('thermal_zone'));
    } catch {
      return null;
    }
    const temps = await Promise.all(names.map((n) => readFile(join(dir, n, 'temp'), 'utf8').then(parseThermal, () => null)));
    let max: number | null = null;
    for (const t of temps) if (t !== null && (max === null || t > max)) max = t;
    return max;
  }

  /**
   * vcgencmd costs a process and a mailbox call to the VideoCore, so it runs at most once a
   * minute and in the background; samples in between carry the cached value. Only the very
   * first reading is awaited, so the first sample already has it.
   */
  private async readThrottled(): Promise<number | undefined> {
    this.vcgencmd ??= findOnPath('vcgencmd');
    const bin = await this.vcgencmd;
    if (!bin) return undefined;
    const every = this.opts.throttledEveryMs ?? 60_000;
    if (!this.throttledRun && performance.now() - this.throttledAt >= every) {
      this.throttledAt = performance.now();
      this.throttledRun = this.runVcgencmd(bin).finally(() => {
        this.throttledRun = null;
      });
      if (this.throttled === undefined) await this.throttledRun;
    }
    return this.throttled;
  }

  private runVcgencmd(bin: string): Promise<void> {
    return new Promise((resolve) => {
      execFile(bin, ['get_throttled'], { timeout: this.opts.throttledTimeoutMs ?? 2000, maxBuffer: 4096 }, (err, stdout) => {
        const v = err ? null : parseThrottled(stdout);
        if (v === null) {
          if (!this.failed.has('vcgencmd')) {
            this.failed.add('vcgencmd');
            this.opts.log?.warn({ err: err?.message ?? `unexpected output ${JSON.stringify(stdout.slice(0, 80))}` }, 'vcgencmd get_throttled failed');
          }
        } else this.throttled = v;
        resolve();
      });
    });
  }

  /** This boot's id (changes every boot): how the controller tells a reboot from a reconnect. */
  async bootId(): Promise<string> {
    try {
      return (await readFile(this.path('proc/sys/kernel/random/boot_id'), 'utf8')).trim().slice(0, 64);
    } catch {
      return '';
    }
  }

  /** The image the device booted, stamped into the image by the controller; null when absent. */
  async imageId(): Promise<string | null> {
    try {
      const id = (await readFile(this.path('etc/drover/image-id'), 'utf8')).trim();
      return id.length > 0 && id.length <= 100 ? id : null;
    } catch {
      return null;
    }
  }
}
