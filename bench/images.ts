// OS images, three benchmarks, each side by side with the plain way of doing the same thing in
// one run (pick with flags; default all three):
//   --ingest    a ~2 GB Raspberry-Pi-OS-shaped .img.xz (bench/fixtures/build-big-image.sh) into a
//               boot tree + initramfs + rootfs.squashfs: Drover's ingestOsImage (in a child
//               process) vs xz -dc, mcopy, debugfs rdump, mksquashfs, sha256sum; time and peak RSS;
//               plus what each way keeps of the fixture image's special files.
//   --nodes     storage and time to add nodes 1…100: Drover (one shared squashfs + a per-device
//               overlay, through the real API of a running `drover serve`) vs a per-node copy of
//               the unpacked root (rsync -a, or cp -a without rsync, as feeder/bakery do), for the
//               fixture root and, copied a few times and extrapolated, the 2 GB root.
//   --delivery  N initramfs-like clients (1, 10, 50) each fetch /boot/v1/config, download the
//               squashfs with their device token and sha256 it while receiving (curl | openssl),
//               vs the same N downloads from a minimal node:http server (curl -o /dev/null).
// Loopback only. Every loop is bounded in count and time; children are killed and temporary
// directories removed on exit, also on failure or Ctrl-C. Uses the built bin (or the source
// through tsx when dist/ is missing or older than src/).
//   node --import tsx bench/images.ts [--ingest] [--nodes] [--delivery] [--runs 2]
//        [--max-nodes 100] [--big-copies 3] [--clients 1,10,50] [--small] [--out bench/results]
// --small: skip the 2 GB image (fixture image only; quick check of the script).
import { execFileSync, spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, closeSync, cpSync, createReadStream, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { freePort } from '../src/server/free-port.js';

const root = new URL('../', import.meta.url).pathname;
const self = new URL(import.meta.url).pathname;
const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(name);
const arg = (name: string, dflt: string) => (argv.includes(name) ? argv[argv.indexOf(name) + 1]! : dflt);
const CACHE = process.env.DROVER_BENCH_CACHE ?? join(process.env.HOME ?? tmpdir(), '.cache', 'drover-bench');
const PAGE_KB = 4;
const MB = 1e6;

// ---------------------------------------------------------------------------------------------
// Child mode: one ingest, measured from inside (phase times, VmHWM), printed as one JSON line.
// ---------------------------------------------------------------------------------------------
async function childIngest(source: string, storeDir: string): Promise<void> {
  const { ingestOsImage } = await import('../src/images/ingest.js');
  const phases: Record<string, number> = {};
  let current = '';
  let since = performance.now();
  const t0 = since;
  const r = await ingestOsImage({
    source,
    storeDir,
    onProgress: (p) => {
      if (p.phase === current) return;
      const now = performance.now();
      if (current) phases[current] = (phases[current] ?? 0) + (now - since) / 1000;
      current = p.phase;
      since = now;
    },
  });
  const end = performance.now();
  if (current) phases[current] = (phases[current] ?? 0) + (end - since) / 1000;
  const status = readFileSync('/proc/self/status', 'utf8');
  process.stdout.write(`${JSON.stringify({
    seconds: (end - t0) / 1000,
    phases,
    vmHWMKb: Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0),
    dir: r.dir,
    reused: r.reused,
    sha256: r.info.sha256,
    diskBytes: r.info.diskBytes,
    rootfs: r.info.rootfs,
    kernels: r.info.kernels.map((k) => ({ file: k.file, version: k.version, initramfsBytes: k.initramfsBytes })),
  })}\n`);
}

// ---------------------------------------------------------------------------------------------
// Processes, cleanup, measurement
// ---------------------------------------------------------------------------------------------
const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();

function killTree(c: ChildProcess, sig: NodeJS.Signals = 'SIGKILL'): void {
  if (c.pid === undefined || c.exitCode !== null || c.signalCode !== null) return;
  try {
    process.kill(-c.pid, sig); // every child is its own process group (detached)
  } catch {
    try {
      c.kill(sig);
    } catch {
      /* gone */
    }
  }
}

function cleanup(): void {
  for (const c of children) killTree(c);
  children.clear();
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
}

/** Spawns in its own process group, so a whole pipeline (bash, curl, sha256sum) can be killed. */
function track(cmd: string, args: string[], o: { stdio?: StdioOptions; env?: NodeJS.ProcessEnv; cwd?: string; uid?: number; gid?: number } = {}): ChildProcess {
  const c = spawn(cmd, args, { stdio: o.stdio ?? ['ignore', 'pipe', 'pipe'], env: o.env ?? process.env, cwd: o.cwd, detached: true, ...(o.uid !== undefined ? { uid: o.uid, gid: o.gid } : {}) });
  children.add(c);
  c.once('exit', () => children.delete(c));
  c.on('error', () => undefined);
  return c;
}

function tempDir(prefix: string, base = tmpdir()): string {
  const d = mkdtempSync(join(base, prefix));
  tempDirs.add(d);
  return d;
}

function removeDir(d: string): void {
  rmSync(d, { recursive: true, force: true });
  tempDirs.delete(d);
}

function which(cmd: string): string | null {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin']) {
    if (dir && existsSync(join(dir, cmd))) return join(dir, cmd);
  }
  return null;
}
const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;

/** Sum of the RSS of a process and all its descendants, in kB (from /proc). */
function treeRssKb(rootPid: number): number {
  const kids = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = kids.get(ppid) ?? [];
      list.push(Number(name));
      kids.set(ppid, list);
    } catch {
      /* exited meanwhile */
    }
  }
  let kb = 0;
  const todo = [rootPid];
  while (todo.length) {
    const pid = todo.pop()!;
    try {
      kb += Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]) * PAGE_KB;
    } catch {
      /* exited */
    }
    todo.push(...(kids.get(pid) ?? []));
  }
  return kb;
}

interface Measured {
  code: number | null;
  seconds: number;
  /** Largest single process (GNU time's "Maximum resident set size": the process or its largest waited-for descendant). */
  maxRssKb: number | null;
  /** Sum over the process tree, sampled every 200 ms. */
  peakTreeKb: number;
  userS: number | null;
  sysS: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (bounded), measuring wall time, CPU and peak RSS. */
async function measure(cmd: string, args: string[], o: { timeoutMs: number; stdoutFile?: string; uid?: number; gid?: number; env?: NodeJS.ProcessEnv; cwd?: string; allowFail?: boolean }): Promise<Measured> {
  const tfile = TIME ? join(tmpdir(), `drover-bench-time-${process.pid}-${Math.random().toString(36).slice(2)}`) : null;
  const fd = o.stdoutFile ? openSync(o.stdoutFile, 'w') : null;
  const [c, a] = TIME ? [TIME, ['-v', '-o', tfile!, cmd, ...args]] : [cmd, args];
  const t0 = performance.now();
  const p = track(c, a, { stdio: ['ignore', fd ?? 'pipe', 'pipe'], uid: o.uid, gid: o.gid, env: o.env, cwd: o.cwd });
  let stdout = '';
  let stderr = '';
  p.stdout?.on('data', (d: Buffer) => (stdout = (stdout + d.toString()).slice(-1_000_000)));
  p.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-20_000)));
  let peak = 0;
  const sample = () => {
    if (p.pid) peak = Math.max(peak, treeRssKb(p.pid));
  };
  const sampler = setInterval(sample, 200);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killTree(p);
  }, o.timeoutMs);
  const code = await new Promise<number | null>((res) => {
    p.once('error', () => res(-1));
    p.once('close', (cd) => res(cd));
  });
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(sampler);
  clearTimeout(timer);
  if (fd !== null) closeSync(fd);
  let maxRssKb: number | null = null;
  let userS: number | null = null;
  let sysS: number | null = null;
  if (tfile && existsSync(tfile)) {
    const t = readFileSync(tfile, 'utf8');
    rmSync(tfile, { force: true });
    maxRssKb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(t)?.[1] ?? NaN);
    userS = Number(/User time \(seconds\): ([\d.]+)/.exec(t)?.[1] ?? NaN);
    sysS = Number(/System time \(seconds\): ([\d.]+)/.exec(t)?.[1] ?? NaN);
  }
  peak = Math.max(peak, maxRssKb ?? 0);
  if (timedOut) throw new Error(`${cmd} ${args.join(' ').slice(0, 200)}: no result in ${o.timeoutMs / 1000} s`);
  if (code !== 0 && !o.allowFail) throw new Error(`${cmd} ${args.join(' ').slice(0, 200)} exited with ${code}: ${stderr.slice(-1500)}`);
  return { code, seconds, maxRssKb, peakTreeKb: peak, userS, sysS, stdout, stderr };
}

const sh = (cmd: string, args: string[], timeout = 120_000) => execFileSync(cmd, args, { encoding: 'utf8', timeout, stdio: ['ignore', 'pipe', 'pipe'] }).trim();
const duBytes = (...paths: string[]) => sh('du', ['-scb', ...paths], 600_000).split('\n').at(-1)!.split('\t')[0]!;
const du = (...paths: string[]) => Number(duBytes(...paths));
const freeBytes = (dir: string) => Number(sh('df', ['-B1', '--output=avail', dir]).split('\n')[1]);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2) : NaN;
};
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};
const fmtB = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} kB` : `${n} B`);
const fmtKb = (kb: number | null) => (kb === null || !Number.isFinite(kb) ? '–' : `${(kb / 1024).toFixed(0)} MiB`);
const fmtS = (s: number) => (s >= 100 ? s.toFixed(0) : s >= 10 ? s.toFixed(1) : s >= 1 ? s.toFixed(2) : s.toFixed(3));
const log = (s: string) => process.stderr.write(`images: ${s}\n`);

function ensureSpace(dir: string, bytes: number, what: string): void {
  const free = freeBytes(dir);
  if (free < bytes) throw new Error(`${what} needs ~${fmtB(bytes)} free under ${dir}; ${fmtB(free)} is free`);
}

// ---------------------------------------------------------------------------------------------
// Inputs: the fixture image, the 2 GB image, Drover
// ---------------------------------------------------------------------------------------------
function fixtureImage(dir: string): string {
  const out = join(dir, 'fixture-a.img');
  execFileSync('bash', [join(root, 'test/fixtures/build-pi-image.sh'), out, 'a'], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 900_000 });
  return out;
}

interface BigImage {
  path: string;
  info: { diskBytes: number; xzBytes: number; rootPartitionBytes: number; rootUsedBytes: number; rootEntries: number; hostPaths: number; rootStartSector: number };
}

function bigImage(): BigImage {
  log('the 2 GB image (bench/fixtures/build-big-image.sh; ~10 minutes the first time, then cached) …');
  const path = execFileSync('bash', [join(root, 'bench/fixtures/build-big-image.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 3_600_000 }).trim();
  return { path, info: JSON.parse(readFileSync(join(dirname(path), 'info.json'), 'utf8')) };
}

/**
 * Where a finished Drover ingest of the 2 GB image is kept for --delivery (hard-linked into a
 * data dir), with the .img.xz it came from (size and mtime), so a rebuilt image is never matched.
 */
const bigIngestCache = () => join(CACHE, 'big-image', 'ingested');
const xzIdentity = () => {
  const p = join(CACHE, 'big-image', 'disk.img.xz');
  if (!existsSync(p)) return null;
  const st = statSync(p);
  return `${st.size}:${Math.round(st.mtimeMs)}`;
};
function cachedBigIngest(): { dir: string; sha256: string } | null {
  const base = bigIngestCache();
  const id = xzIdentity();
  for (const name of existsSync(base) ? readdirSync(base) : []) {
    const dir = join(base, name);
    const ok = existsSync(join(dir, 'image.json')) && existsSync(join(dir, 'rootfs.squashfs')) && id !== null && existsSync(join(base, `${name}.source`)) && readFileSync(join(base, `${name}.source`), 'utf8') === id;
    if (ok) return { dir, sha256: name };
  }
  return null;
}
/** Keeps an ingested image directory as the cache (moved or hard-linked), replacing an old one. */
function keepBigIngest(dir: string, how: 'move' | 'link'): void {
  const id = xzIdentity();
  if (!id) return;
  rmSync(bigIngestCache(), { recursive: true, force: true });
  mkdirSync(bigIngestCache(), { recursive: true });
  const dest = join(bigIngestCache(), basename(dir));
  if (how === 'link') sh('cp', ['-al', dir, dest]);
  else {
    try {
      renameSync(dir, dest);
    } catch {
      cpSync(dir, dest, { recursive: true });
    }
  }
  writeFileSync(`${dest}.source`, id);
}

function newestMtime(dir: string): number {
  let m = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) m = Math.max(m, newestMtime(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) m = Math.max(m, statSync(p).mtimeMs);
  }
  return m;
}

/** argv prefix for the drover CLI: the build when it is there and current, else the source via tsx. */
function droverArgv(): { argv: string[]; from: string } {
  const main = join(root, 'dist/server/cli/main.js');
  if (existsSync(main) && statSync(main).mtimeMs >= newestMtime(join(root, 'src'))) return { argv: [join(root, 'bin/drover.js')], from: 'bin/drover.js (dist)' };
  return { argv: ['--import', 'tsx', join(root, 'src/cli/main.ts')], from: existsSync(main) ? 'src via tsx (dist/ is older than src/)' : 'src via tsx (no dist/)' };
}

interface Drover {
  base: string;
  admin: string;
  proc: ChildProcess;
  data: string;
  stop(): Promise<void>;
}

async function startDrover(data: string): Promise<Drover> {
  const port = await freePort();
  const { argv: pre } = droverArgv();
  const proc = track(process.execPath, [...pre, 'serve', '--data-dir', data, '--listen', `127.0.0.1:${port}`, '--tftp-listen', 'off', '--log-level', 'warn'], { cwd: root });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  proc.stdout!.on('data', () => undefined);
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`drover serve exited with ${proc.exitCode}: ${err}`);
    try {
      if ((await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(2000) })).ok) break;
    } catch {
      /* starting */
    }
    if (Date.now() > deadline) throw new Error(`drover serve did not become ready in 60 s: ${err}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const admin = readFileSync(join(data, 'initial-admin-token'), 'utf8').trim();
  return {
    base, admin, proc, data,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const gone = new Promise((r) => proc.once('exit', r));
      killTree(proc, 'SIGTERM');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 10_000))]);
      killTree(proc);
    },
  };
}

async function http(base: string, token: string | null, method: string, path: string, body?: unknown): Promise<{ status: number; data: Buffer; headers: Headers }> {
  const r = await fetch(`${base}${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(60_000),
  });
  const data = Buffer.from(await r.arrayBuffer());
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${data.toString().slice(0, 500)}`);
  return { status: r.status, data, headers: r.headers };
}
const json = async (base: string, token: string | null, method: string, path: string, body?: unknown) => JSON.parse((await http(base, token, method, path, body)).data.toString()) as any;

/** Adds an OS image through the API (a path on this host) and waits for the ingest, bounded. */
async function addImage(d: Drover, name: string, path: string, timeoutMs: number): Promise<{ id: string; seconds: number }> {
  const t0 = performance.now();
  const job = await json(d.base, d.admin, 'POST', '/api/v1/images/ingest', { name, path, default: true });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const j = await json(d.base, d.admin, 'GET', `/api/v1/images/ingests/${job.id}`);
    if (j.status === 'done') return { id: j.imageId, seconds: (performance.now() - t0) / 1000 };
    if (j.status === 'failed') throw new Error(`ingest of ${path} failed: ${j.error?.code} ${j.error?.message}`);
    if (Date.now() > deadline) throw new Error(`ingest of ${path} did not finish in ${timeoutMs / 1000} s (phase ${j.phase})`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Registers a device and fetches its token the way a booting Pi's firmware gets it: from the rendered cmdline.txt. */
async function registerDevice(d: Drover, i: number): Promise<{ id: string; serial: string; token: string; postMs: number; cmdlineMs: number }> {
  const serial = (0xb0000000 + i).toString(16);
  const t0 = performance.now();
  const dev = await json(d.base, d.admin, 'POST', '/api/v1/devices', { serial, hostname: `bench-${i}` });
  const t1 = performance.now();
  const cmdline = (await http(d.base, null, 'GET', `/boot/v1/files/${serial}/cmdline.txt`)).data.toString();
  const token = /(?:^|\s)drover\.token=(\S+)/.exec(cmdline)?.[1];
  if (!token) throw new Error(`no drover.token in the cmdline.txt of ${serial}: ${cmdline}`);
  return { id: dev.id, serial, token, postMs: t1 - t0, cmdlineMs: performance.now() - t1 };
}

// ---------------------------------------------------------------------------------------------
// Machine facts
// ---------------------------------------------------------------------------------------------
function machine() {
  const v = (cmd: string, args: string[], re: RegExp) => {
    const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
    return r.error ? 'missing' : (re.exec(`${r.stdout}\n${r.stderr}`)?.[0] ?? '?').trim();
  };
  return {
    cores: Number(sh('nproc', [])),
    cpu: cpus()[0]?.model ?? 'unknown',
    ramGiB: Number((totalmem() / 1024 ** 3).toFixed(1)),
    node: process.version,
    kernel: sh('uname', ['-r']),
    fs: sh('df', ['--output=fstype', tmpdir()]).split('\n')[1],
    uid: process.getuid?.() ?? -1,
    loadAvgAtStart: loadavg().map((x) => Number(x.toFixed(2))),
    drover: droverArgv().from,
    tools: {
      xz: v('xz', ['--version'], /^xz.*$/m),
      tar2sqfs: v('tar2sqfs', ['--version'], /^tar2sqfs.*$/m),
      mksquashfs: which('mksquashfs') ? v('mksquashfs', ['-version'], /^mksquashfs version \S+/m) : 'missing',
      debugfs: v('debugfs', ['-V'], /^debugfs \S+/m),
      curl: v('curl', ['--version'], /^curl \S+/m),
      rsync: which('rsync') ? v('rsync', ['--version'], /^rsync\s+version \S+/m) : 'missing',
      time: TIME ? 'GNU time -v' : 'missing (peak RSS sampled from /proc only)',
    },
  };
}

// ---------------------------------------------------------------------------------------------
// 1. Ingest
// ---------------------------------------------------------------------------------------------
interface Step {
  step: string;
  seconds: number;
  maxRssKb: number | null;
  peakTreeKb: number;
  cpuS: number | null;
}
interface SideRun {
  side: 'drover' | 'baseline';
  run: number;
  seconds: number;
  maxRssKb: number | null;
  peakTreeKb: number;
  cpuS: number | null;
  squashfsBytes: number;
  steps: Step[];
  vmHWMKb?: number;
}

const stepOf = (step: string, m: Measured): Step => ({ step, seconds: m.seconds, maxRssKb: m.maxRssKb, peakTreeKb: m.peakTreeKb, cpuS: m.userS === null ? null : m.userS + (m.sysS ?? 0) });

async function droverIngest(src: string, store: string, run: number): Promise<{ r: SideRun; out: any }> {
  const m = await measure(process.execPath, ['--import', 'tsx', self, '--child-ingest', src, store], { timeoutMs: 1_800_000, cwd: root });
  const out = JSON.parse(m.stdout.trim().split('\n').at(-1)!);
  if (out.reused) throw new Error('the ingest reused a stored image: the store was not empty');
  const steps: Step[] = Object.entries(out.phases as Record<string, number>).map(([step, seconds]) => ({ step, seconds, maxRssKb: null, peakTreeKb: 0, cpuS: null }));
  return {
    r: { side: 'drover', run, seconds: m.seconds, maxRssKb: m.maxRssKb, peakTreeKb: m.peakTreeKb, cpuS: m.userS === null ? null : m.userS + (m.sysS ?? 0), squashfsBytes: out.rootfs.bytes, steps, vmHWMKb: out.vmHWMKb },
    out,
  };
}

/** Partition offsets (bytes) of the FAT boot and the Linux root, from sfdisk -J. */
function partitions(disk: string): { boot: number; root: number } {
  const t = JSON.parse(sh('sfdisk', ['-J', disk])).partitiontable as { sectorsize?: number; partitions: { start: number; size: number; type: string }[] };
  const ss = t.sectorsize ?? 512;
  const fat = t.partitions.find((p) => ['c', 'b', 'e'].includes(p.type));
  const linux = t.partitions.filter((p) => p.type === '83').sort((a, b) => b.size - a.size)[0];
  if (!fat || !linux) throw new Error(`no FAT + Linux partitions in ${disk}`);
  return { boot: fat.start * ss, root: linux.start * ss };
}

/** The plain way: xz -dc, sfdisk, mcopy, debugfs rdump, mksquashfs (tar2sqfs without it), sha256sum. */
async function baselineIngest(src: string, work: string, run: number, o: { uid?: number; gid?: number } = {}): Promise<{ r: SideRun; rootDir: string; sqfs: string }> {
  const steps: Step[] = [];
  let disk = src;
  if (!src.endsWith('.img')) {
    disk = join(work, 'disk.img');
    steps.push(stepOf('xz -dc -T0', await measure('xz', ['-dc', '-T0', src], { timeoutMs: 900_000, stdoutFile: disk })));
  }
  const t0 = performance.now();
  const parts = partitions(disk);
  steps.push({ step: 'sfdisk -J', seconds: (performance.now() - t0) / 1000, maxRssKb: null, peakTreeKb: 0, cpuS: null });
  const bootDir = join(work, 'boot');
  const rootDir = join(work, 'root');
  mkdirSync(bootDir);
  mkdirSync(rootDir);
  if (o.uid !== undefined) for (const d of [work, bootDir, rootDir]) chmodSync(d, 0o777);
  steps.push(stepOf('mcopy (boot files)', await measure('mcopy', ['-s', '-n', '-m', '-i', `${disk}@@${parts.boot}`, '::/*', `${bootDir}/`], { timeoutMs: 300_000, ...o })));
  const rd = await measure('debugfs', ['-R', `rdump / ${rootDir}`, `${disk}?offset=${parts.root}`], { timeoutMs: 900_000, ...o });
  const complaints = rd.stderr.split('\n').filter((l) => l && !/^debugfs \d/.test(l));
  steps.push({ ...stepOf('debugfs rdump', rd), ...(complaints.length ? { step: `debugfs rdump (${complaints.length} errors)` } : {}) });
  if (disk !== src) rmSync(disk, { force: true });
  const sqfs = join(work, 'rootfs.squashfs');
  if (which('mksquashfs')) {
    steps.push(stepOf('mksquashfs -comp gzip', await measure('mksquashfs', [rootDir, sqfs, '-comp', 'gzip', '-b', '131072', '-noappend', '-quiet', '-no-progress'], { timeoutMs: 1_800_000, ...o })));
  } else {
    steps.push(stepOf('tar | tar2sqfs (no mksquashfs)', await measure('bash', ['-c', 'set -o pipefail; tar -C "$1" -c . | tar2sqfs --quiet --no-skip --force --compressor gzip "$2"', 'bash', rootDir, sqfs], { timeoutMs: 1_800_000, ...o })));
  }
  steps.push(stepOf('sha256sum', await measure('sha256sum', [sqfs], { timeoutMs: 300_000, ...o })));
  const sum = (f: (s: Step) => number | null) => steps.reduce((n, s) => n + (f(s) ?? 0), 0);
  const maxOf = (f: (s: Step) => number | null) => Math.max(...steps.map((s) => f(s) ?? 0));
  return {
    r: { side: 'baseline', run, seconds: sum((s) => s.seconds), maxRssKb: maxOf((s) => s.maxRssKb), peakTreeKb: maxOf((s) => s.peakTreeKb), cpuS: TIME ? sum((s) => s.cpuS) : null, squashfsBytes: statSync(sqfs).size, steps },
    rootDir,
    sqfs,
  };
}

/** What a squashfs kept of the fixture's special files (rdsquashfs -s / -x). */
function fidelity(sqfs: string): Record<string, boolean> {
  const st = (p: string) => {
    try {
      return execFileSync('rdsquashfs', ['-s', p, sqfs], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      return '';
    }
  };
  const xa = (p: string) => {
    try {
      return execFileSync('rdsquashfs', ['-x', p, sqfs], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      return '';
    }
  };
  const ino = (p: string) => /Inode number: (\d+)/.exec(st(p))?.[1];
  return {
    'owner 1000:1000 (/home/pi)': /UID: 1000 [\s\S]*GID: 1000 /.test(st('/home/pi')),
    'group 42 (/etc/shadow)': /GID: 42 /.test(st('/etc/shadow')),
    'setuid bit (/usr/bin/fixture-suid 04755)': /Access: 04755/.test(st('/usr/bin/fixture-suid')),
    'sticky bit (/tmp 01777)': /Access: 01777/.test(st('/tmp')),
    'device node (/dev/console c 5:1)': /character device[\s\S]*Device number: 5:1 /.test(st('/dev/console')),
    'hard link (linked-a = linked-b)': ino('/usr/lib/drover-fixture/linked-a') !== undefined && ino('/usr/lib/drover-fixture/linked-a') === ino('/usr/lib/drover-fixture/linked-b'),
    'file capability (/bin/ping)': /security\.capability=/.test(xa('/bin/ping')),
    'user xattr (/etc/drover-fixture/version)': /user\.drover\.fixture=/.test(xa('/etc/drover-fixture/version')),
    'mtime (2024-01-01 on /etc/hostname)': /\(1704067200\)/.test(st('/etc/hostname')),
  };
}

interface IngestReport {
  image: BigImage['info'] & { path: string; sha256: string | null };
  runs: SideRun[];
  droverMedian: number;
  baselineMedian: number;
  ratio: number;
  memDrover: { maxRssKb: number; peakTreeKb: number; vmHWMKb: number };
  memBaseline: { maxRssKb: number; peakTreeKb: number };
  fidelity: { columns: string[]; rows: Record<string, boolean[]> };
  rdumpUnprivilegedErrors: number | null;
}

async function benchIngest(scratch: string, runs: number, small: boolean, keepBigRoot: boolean): Promise<{ report: IngestReport; bigRoot: string | null }> {
  // Fidelity first (the fixture, seconds): what each way keeps.
  log('fidelity check on the fixture image …');
  const fx = tempDir('fidelity-', scratch);
  chmodSync(fx, 0o755);
  const fimg = fixtureImage(fx);
  chmodSync(fimg, 0o644);
  const columns: string[] = [];
  const cols: Record<string, boolean>[] = [];
  const d = await droverIngest(fimg, join(fx, 'store'), 0);
  columns.push('Drover ingest');
  cols.push(fidelity(join(d.out.dir, 'rootfs.squashfs')));
  const asMe = tempDir('base-', fx);
  const b = await baselineIngest(fimg, asMe, 0);
  const uid = process.getuid?.() ?? -1;
  columns.push(uid === 0 ? 'rdump + mksquashfs as root' : `rdump + mksquashfs as uid ${uid}`);
  cols.push(fidelity(b.sqfs));
  let unprivErrors: number | null = null;
  if (uid === 0) {
    // The same as an unprivileged user (nobody): rdump cannot chown, mksquashfs records nobody.
    const asNobody = tempDir('base-nobody-', fx);
    const n = await baselineIngest(fimg, asNobody, 0, { uid: 65534, gid: 65534 });
    unprivErrors = Number(/\((\d+) errors\)/.exec(n.r.steps.find((s) => s.step.startsWith('debugfs'))!.step)?.[1] ?? 0);
    columns.push('rdump + mksquashfs as nobody');
    cols.push(fidelity(n.sqfs));
  }
  const rows: Record<string, boolean[]> = {};
  for (const k of Object.keys(cols[0]!)) rows[k] = cols.map((c) => c[k]!);
  removeDir(fx);

  // The timed runs on the 2 GB image (the fixture with --small).
  const img: BigImage = small ? { path: fixtureImage(tempDir('small-', scratch)), info: { diskBytes: 0, xzBytes: 0, rootPartitionBytes: 0, rootUsedBytes: 0, rootEntries: 0, hostPaths: 0, rootStartSector: 0 } } : bigImage();
  const need = (small ? 1e9 : img.info.diskBytes + img.info.rootUsedBytes * 2) + 2e9;
  ensureSpace(scratch, need, 'the ingest benchmark');
  log(`warming the page cache with ${basename(img.path)} …`);
  await new Promise<void>((res, rej) => createReadStream(img.path).on('data', () => undefined).on('end', res).on('error', rej));
  const results: SideRun[] = [];
  let bigRoot: string | null = null;
  let sha: string | null = null;
  for (let run = 1; run <= runs; run++) {
    // Alternate the order, so neither side always runs on a cache the other warmed.
    for (const side of run % 2 ? (['drover', 'baseline'] as const) : (['baseline', 'drover'] as const)) {
      if (side === 'drover') {
        const store = tempDir('drover-store-', scratch);
        log(`run ${run}: Drover ingestOsImage …`);
        const { r, out } = await droverIngest(img.path, store, run);
        sha = out.sha256;
        results.push(r);
        log(`  ${fmtS(r.seconds)} s, largest process ${fmtKb(r.maxRssKb)}, tree ${fmtKb(r.peakTreeKb)}, node VmHWM ${fmtKb(r.vmHWMKb!)}`);
        if (!small && !cachedBigIngest()) keepBigIngest(out.dir, 'move');
        removeDir(store);
      } else {
        const work = tempDir('baseline-', scratch);
        log(`run ${run}: xz -dc + mcopy + debugfs rdump + mksquashfs + sha256sum …`);
        const { r, rootDir } = await baselineIngest(img.path, work, run);
        results.push(r);
        log(`  ${fmtS(r.seconds)} s (${r.steps.map((s) => `${s.step} ${fmtS(s.seconds)}`).join(', ')}), largest process ${fmtKb(r.maxRssKb)}`);
        if (keepBigRoot && !small && run === runs) {
          bigRoot = join(scratch, 'big-root');
          renameSync(rootDir, bigRoot);
          tempDirs.add(bigRoot);
        }
        removeDir(work);
      }
    }
  }
  const dr = results.filter((r) => r.side === 'drover');
  const bl = results.filter((r) => r.side === 'baseline');
  const droverMedian = median(dr.map((r) => r.seconds));
  const baselineMedian = median(bl.map((r) => r.seconds));
  return {
    report: {
      image: { ...img.info, path: img.path, sha256: sha },
      runs: results,
      droverMedian,
      baselineMedian,
      ratio: droverMedian / baselineMedian,
      memDrover: { maxRssKb: Math.max(...dr.map((r) => r.maxRssKb ?? 0)), peakTreeKb: Math.max(...dr.map((r) => r.peakTreeKb)), vmHWMKb: Math.max(...dr.map((r) => r.vmHWMKb ?? 0)) },
      memBaseline: { maxRssKb: Math.max(...bl.map((r) => r.maxRssKb ?? 0)), peakTreeKb: Math.max(...bl.map((r) => r.peakTreeKb)) },
      fidelity: { columns, rows },
      rdumpUnprivilegedErrors: unprivErrors,
    },
    bigRoot,
  };
}

// ---------------------------------------------------------------------------------------------
// 2. Adding nodes
// ---------------------------------------------------------------------------------------------
interface NodesRow {
  n: number;
  droverBytes: number;
  droverDevicesBytes: number;
  droverSeconds: number;
  copyBytes: number;
  copySeconds: number;
  droverBigBytes: number | null;
  copyBigBytes: number | null;
  copyBigSeconds: number | null;
}
interface NodesReport {
  checkpoints: number[];
  rows: NodesRow[];
  drover: { imageBytes: number; dataBytesBefore: number; perNodeMs: number[]; stepMs: Record<'post' | 'cmdline' | 'config' | 'overlay', number[]>; overlayBytes: number[]; hostKeysBytes: number[]; ingestSeconds: number; bigImageBytes: number | null };
  copy: { tool: string; templateBytes: number; templateEntries: number; perNodeSeconds: number[]; unpackSeconds: number };
  big: { rootBytes: number; copies: { seconds: number; bytes: number }[]; source: string } | null;
  nodes: number;
}

async function benchNodes(scratch: string, maxNodes: number, bigCopies: number, small: boolean, bigRootIn: string | null, bigImageBytes: number | null): Promise<NodesReport> {
  const checkpoints = [1, 2, 10, 50, 100, 200, 500].filter((n) => n <= maxNodes);
  if (!checkpoints.includes(maxNodes)) checkpoints.push(maxNodes);
  const work = tempDir('nodes-', scratch);
  const img = fixtureImage(work);
  const deadline = Date.now() + 900_000;

  // Drover: one image, then devices through the API, each to its first overlay.
  const data = join(work, 'data');
  const d = await startDrover(data);
  const perNodeMs: number[] = [];
  const stepMs = { post: [] as number[], cmdline: [] as number[], config: [] as number[], overlay: [] as number[] };
  const overlayBytes: number[] = [];
  const hostKeysBytes: number[] = [];
  const droverAt = new Map<number, { bytes: number; devices: number; seconds: number }>();
  let ingestSeconds = 0;
  let imageBytes = 0;
  let dataBytesBefore = 0;
  try {
    log('nodes: drover serve + the fixture image …');
    ingestSeconds = (await addImage(d, 'fixture', img, 600_000)).seconds;
    imageBytes = du(join(data, 'images'));
    dataBytesBefore = du(data);
    let cum = 0;
    for (let i = 1; i <= maxNodes; i++) {
      if (Date.now() > deadline) throw new Error(`nodes: stopped at node ${i}: over 15 minutes`);
      const t0 = performance.now();
      const dev = await registerDevice(d, i);
      const t1 = performance.now();
      const config = await json(d.base, dev.token, 'GET', '/boot/v1/config');
      const t2 = performance.now();
      const ov = await http(d.base, dev.token, 'GET', '/boot/v1/overlay');
      const ms = performance.now() - t0;
      stepMs.post.push(dev.postMs);
      stepMs.cmdline.push(dev.cmdlineMs);
      stepMs.config.push(t2 - t1);
      stepMs.overlay.push(ms - (t2 - t0));
      const sum = createHash('sha256').update(ov.data).digest('hex');
      if (sum !== config.overlay.sha256) throw new Error(`node ${i}: the overlay's sha256 ${sum} is not the config's ${config.overlay.sha256}`);
      perNodeMs.push(ms);
      overlayBytes.push(ov.data.length);
      hostKeysBytes.push(statSync(join(data, 'devices', dev.id, 'ssh', 'host-keys.json')).size);
      cum += ms / 1000;
      if (checkpoints.includes(i)) droverAt.set(i, { bytes: du(data), devices: du(join(data, 'devices')), seconds: cum });
    }
  } finally {
    await d.stop();
  }

  // Per-node copies: the root unpacked once (debugfs rdump), then one copy per node.
  log('nodes: per-node copies of the fixture root …');
  const parts = partitions(img);
  const template = join(work, 'template');
  mkdirSync(template);
  const unpack = await measure('debugfs', ['-R', `rdump / ${template}`, `${img}?offset=${parts.root}`], { timeoutMs: 300_000 });
  const tool = which('rsync') ? 'rsync -a' : 'cp -a (rsync is not installed)';
  const copy = (from: string, to: string) => (which('rsync') ? measure('rsync', ['-a', `${from}/`, `${to}/`], { timeoutMs: 900_000 }) : measure('cp', ['-a', from, to], { timeoutMs: 900_000 }));
  const nodesDir = join(work, 'nodes');
  mkdirSync(nodesDir);
  const templateBytes = du(template);
  const templateEntries = Number(sh('bash', ['-c', 'find "$1" | wc -l', 'bash', template]));
  ensureSpace(scratch, templateBytes * maxNodes * 1.2 + 1e9, 'the per-node copies');
  const perNodeSeconds: number[] = [];
  const copyAt = new Map<number, { bytes: number; seconds: number }>();
  let cum = 0;
  for (let i = 1; i <= maxNodes; i++) {
    if (Date.now() > deadline) throw new Error(`nodes: copies stopped at node ${i}: over 15 minutes`);
    // Copied, then written out (syncfs): the same durability Drover's SQLite commit gives a node.
    const t0 = performance.now();
    await copy(template, join(nodesDir, String(i)));
    await measure('sync', ['-f', nodesDir], { timeoutMs: 300_000 });
    const s = (performance.now() - t0) / 1000;
    perNodeSeconds.push(s);
    cum += s;
    if (checkpoints.includes(i)) copyAt.set(i, { bytes: du(template, nodesDir), seconds: cum });
  }
  removeDir(work);

  // The 2 GB root: a few real copies, extrapolated (100 copies would need ~180 GB).
  let big: NodesReport['big'] = null;
  if (!small && bigCopies > 0) {
    let bigRoot = bigRootIn;
    let source = "the ingest benchmark's debugfs rdump";
    if (!bigRoot) {
      const bi = bigImage();
      ensureSpace(scratch, bi.info.diskBytes + bi.info.rootUsedBytes * (bigCopies + 1.3) + 2e9, 'the 2 GB per-node copies');
      const w = tempDir('bigroot-', scratch);
      log('nodes: unpacking the 2 GB root (xz -dc + debugfs rdump) …');
      await baselineIngest(bi.path, w, 0).then(({ rootDir, sqfs }) => {
        rmSync(sqfs, { force: true });
        bigRoot = join(scratch, 'big-root');
        renameSync(rootDir, bigRoot);
        tempDirs.add(bigRoot);
      });
      removeDir(w);
      source = 'the 2 GB image unpacked with xz -dc + debugfs rdump';
    }
    const rootBytes = du(bigRoot!);
    ensureSpace(scratch, rootBytes * bigCopies * 1.1 + 1e9, 'the 2 GB per-node copies');
    const copies: { seconds: number; bytes: number }[] = [];
    const bigNodes = tempDir('bignodes-', scratch);
    for (let i = 1; i <= bigCopies; i++) {
      log(`nodes: copy ${i}/${bigCopies} of the 2 GB root …`);
      const t0 = performance.now();
      await copy(bigRoot!, join(bigNodes, String(i)));
      await measure('sync', ['-f', bigNodes], { timeoutMs: 600_000 });
      copies.push({ seconds: (performance.now() - t0) / 1000, bytes: du(join(bigNodes, String(i))) });
    }
    removeDir(bigNodes);
    removeDir(bigRoot!);
    big = { rootBytes, copies, source };
  }
  const perDevice = (n: number) => (droverAt.get(n)?.bytes ?? 0) - imageBytes; // everything but the image
  const rows: NodesRow[] = checkpoints.map((n) => {
    const bigCopyS = big ? median(big.copies.map((c) => c.seconds)) : null;
    const bigCopyB = big ? median(big.copies.map((c) => c.bytes)) : null;
    return {
      n,
      droverBytes: droverAt.get(n)!.bytes,
      droverDevicesBytes: droverAt.get(n)!.devices,
      droverSeconds: droverAt.get(n)!.seconds,
      copyBytes: copyAt.get(n)!.bytes,
      copySeconds: copyAt.get(n)!.seconds,
      droverBigBytes: bigImageBytes === null ? null : bigImageBytes + perDevice(n),
      copyBigBytes: big ? big.rootBytes + n * bigCopyB! : null,
      copyBigSeconds: big ? n * bigCopyS! : null,
    };
  });
  return {
    checkpoints, rows, nodes: maxNodes,
    drover: { imageBytes, dataBytesBefore, perNodeMs, stepMs, overlayBytes, hostKeysBytes, ingestSeconds, bigImageBytes },
    copy: { tool, templateBytes, templateEntries, perNodeSeconds, unpackSeconds: unpack.seconds },
    big,
  };
}

// ---------------------------------------------------------------------------------------------
// 3. Rootfs delivery
// ---------------------------------------------------------------------------------------------
type Mode = 'drover-verify' | 'drover-raw' | 'plain-raw' | 'plain-verify';
/** The clients' sha256: OpenSSL's (SHA extensions) when installed; coreutils' is ~5× slower here. */
const HASHER = which('openssl') ? 'openssl dgst -sha256 -r' : 'sha256sum';
interface DeliveryRow {
  mode: Mode;
  label: string;
  clients: number;
  seconds: number;
  mbPerS: number;
  p50: number;
  max: number;
  failures: number;
  why: string[];
}
interface DeliveryReport {
  squashfs: { bytes: number; sha256: string; image: string };
  rows: DeliveryRow[];
  serverVmHWMKb: number | null;
  plainVmHWMKb: number | null;
  ingestSeconds: number;
  hashers: { hasher: string; mbPerS: number }[];
}

const PLAIN_SERVER = `
const http = require('node:http'), fs = require('node:fs');
const path = process.argv[1], size = fs.statSync(path).size;
const s = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
  fs.createReadStream(path, { highWaterMark: 1024 * 1024 }).pipe(res);
});
s.listen(0, '127.0.0.1', () => console.log(s.address().port));
`;

async function oneClient(mode: Mode, o: { base: string; url: string; token: string | null; sha256: string; size: number; maxS: number }): Promise<{ ok: boolean; s: number; why?: string }> {
  const t0 = performance.now();
  let url = o.url;
  let expect = o.sha256;
  if (mode === 'drover-verify') {
    // As the initramfs: its config first (squashfs URL and sha256), then the download.
    const c = await json(o.base, o.token, 'GET', '/boot/v1/config');
    // Only the path is taken from the config: whatever address it names, this stays on loopback.
    url = `${o.base}${new URL(c.rootfs.url).pathname}`;
    expect = c.rootfs.sha256;
  }
  const verify = mode.endsWith('verify');
  const args = verify
    ? ['-c', `set -o pipefail; curl -sS --fail --max-time "$3" \${2:+-H "Authorization: Bearer $2"} "$1" | ${HASHER}`, 'bash', url, o.token ?? '', String(o.maxS)]
    : ['-c', 'curl -sS --fail --max-time "$3" ${2:+-H "Authorization: Bearer $2"} -o /dev/null -w "%{size_download}" "$1"', 'bash', url, o.token ?? '', String(o.maxS)];
  const p = track('bash', args);
  let out = '';
  let err = '';
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-500)));
  const timer = setTimeout(() => killTree(p), (o.maxS + 10) * 1000);
  const code = await new Promise<number | null>((res) => p.once('close', res));
  clearTimeout(timer);
  const s = (performance.now() - t0) / 1000;
  if (code !== 0) return { ok: false, s, why: `exit ${code}: ${err.trim()}` };
  if (verify) {
    const got = out.split(' ')[0];
    return got === expect ? { ok: true, s } : { ok: false, s, why: `sha256 ${got} is not ${expect}` };
  }
  return Number(out) === o.size ? { ok: true, s } : { ok: false, s, why: `got ${out} of ${o.size} bytes` };
}

async function benchDelivery(scratch: string, clientsList: number[], modes: Mode[], small: boolean): Promise<DeliveryReport> {
  const maxClients = Math.max(...clientsList);
  const work = tempDir('delivery-', scratch);
  const data = join(work, 'data');
  let imagePath: string;
  let imageLabel: string;
  const cached = small ? null : cachedBigIngest();
  if (small) {
    imagePath = fixtureImage(work);
    imageLabel = 'the fixture image';
  } else {
    imagePath = bigImage().path;
    imageLabel = 'the 2 GB image';
    if (cached) {
      // The image Drover stored in the ingest benchmark, hard-linked into this data directory:
      // the server's own ingest then only decompresses and hashes the .img.xz and finds it stored.
      mkdirSync(join(data, 'images', 'os'), { recursive: true });
      sh('cp', ['-al', cached.dir, join(data, 'images', 'os', cached.sha256)]);
    }
  }
  let d = await startDrover(data);
  let plain: ChildProcess | null = null;
  const rows: DeliveryRow[] = [];
  let serverVmHWMKb: number | null = null;
  let plainVmHWMKb: number | null = null;
  let ingestSeconds = 0;
  const hashers: DeliveryReport['hashers'] = [];
  try {
    log(`delivery: adding ${imageLabel} to drover serve${cached ? ' (stored before: decompress + hash only)' : ' (a full ingest)'} …`);
    const { id: imageId, seconds } = await addImage(d, 'bench', imagePath, 1_800_000);
    ingestSeconds = seconds;
    const image = await json(d.base, d.admin, 'GET', `/api/v1/images/${imageId}`);
    const sqfsPath = join(data, image.metadata.rootfs.path);
    const size = statSync(sqfsPath).size;
    const sha256 = image.metadata.rootfs.sha256 as string;
    if (!small && !cached) keepBigIngest(dirname(sqfsPath), 'link');
    // How fast one process hashes the file from the page cache: the clients' ceiling.
    for (const h of [HASHER, ...(HASHER === 'sha256sum' ? [] : ['sha256sum'])]) {
      const [c, ...a] = h.split(' ');
      const m = await measure(c!, [...a, sqfsPath], { timeoutMs: 300_000 });
      hashers.push({ hasher: h, mbPerS: size / MB / m.seconds });
    }
    // Devices registered and booted once before timing (their host keys are made on the first
    // config): what is timed is delivery, not first-boot key generation (--nodes measures that).
    const devices: Awaited<ReturnType<typeof registerDevice>>[] = [];
    for (let i = 1; i <= maxClients; i++) {
      const dev = await registerDevice(d, i);
      await json(d.base, dev.token, 'GET', '/boot/v1/config');
      devices.push(dev);
    }

    plain = track(process.execPath, ['-e', PLAIN_SERVER, sqfsPath]);
    const plainPort = await new Promise<number>((res, rej) => {
      const t = setTimeout(() => rej(new Error('the plain server did not start')), 10_000);
      plain!.stdout!.once('data', (b: Buffer) => {
        clearTimeout(t);
        res(Number(b.toString().trim()));
      });
    });
    const plainBase = `http://127.0.0.1:${plainPort}`;
    const scenario = async (mode: Mode, label: string, n: number) => {
      // Per client: the time all n downloads take at 50 MB/s in aggregate, 2 to 20 minutes.
      const maxS = Math.min(1200, Math.max(120, Math.ceil((size * n) / 50e6)));
      const drover = mode.startsWith('drover');
      const base = drover ? d.base : plainBase;
      const url = drover ? `${d.base}/boot/v1/images/${imageId}/rootfs.squashfs` : `${plainBase}/rootfs.squashfs`;
      log(`delivery: ${label}, ${n} client(s) …`);
      const t0 = performance.now();
      const res = await Promise.all(devices.slice(0, n).map((dev) => oneClient(mode, { base, url, token: drover ? dev.token : null, sha256, size, maxS })));
      const seconds = (performance.now() - t0) / 1000;
      const ok = res.filter((r) => r.ok);
      const row: DeliveryRow = {
        mode, label, clients: n, seconds, mbPerS: (ok.length * size) / MB / seconds,
        p50: pct(res.map((r) => r.s), 50), max: Math.max(...res.map((r) => r.s)), failures: n - ok.length,
        why: [...new Set(res.filter((r) => !r.ok).map((r) => r.why!))].slice(0, 3),
      };
      rows.push(row);
      log(`  ${fmtS(seconds)} s, ${row.mbPerS.toFixed(0)} MB/s, per client p50 ${fmtS(row.p50)} s, ${row.failures} failed${row.why.length ? `: ${row.why.join('; ')}` : ''}`);
    };
    for (const n of clientsList) for (const mode of modes) await scenario(mode, mode, n);
    const hwm = (pid: number | undefined) => (pid ? Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) : null);
    serverVmHWMKb = hwm(d.proc.pid);
    plainVmHWMKb = hwm(plain.pid);
    // The server above has just run the image's ingest in its own process. Once more from a
    // restarted one (same data directory, tokens and image), as after a controller restart.
    if (modes.includes('drover-raw')) {
      await d.stop();
      d = await startDrover(data);
      for (const n of clientsList) await scenario('drover-raw', 'drover-raw, restarted server', n);
    }
    return { squashfs: { bytes: size, sha256, image: imageLabel }, rows, serverVmHWMKb, plainVmHWMKb, ingestSeconds, hashers };
  } finally {
    if (plain) killTree(plain);
    await d.stop();
    removeDir(work);
  }
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------
function markdown(m: ReturnType<typeof machine>, started: Date, wall: number, ing: IngestReport | null, nodes: NodesReport | null, del: DeliveryReport | null): string {
  const L: string[] = [];
  L.push(`# OS image benchmarks (${started.toISOString()})`, '');
  L.push(`Machine: ${m.cores} cores (${m.cpu}), ${m.ramGiB} GiB RAM, Node ${m.node}, Linux ${m.kernel}, ${m.fs} scratch filesystem, uid ${m.uid}. Drover: ${m.drover}.`);
  L.push(`Tools: ${Object.entries(m.tools).map(([k, v]) => `${k}: ${v}`).join('; ')}. Whole run: ${fmtS(wall)} s. Load average (1/5/15 min) at the start ${m.loadAvgAtStart.join(' / ')}, at the end ${loadavg().map((x) => x.toFixed(2)).join(' / ')} (the start value is other work on this machine; on ${m.cores} cores it slows both sides).`, '');
  if (ing) {
    const i = ing.image;
    L.push('## 1. Ingest a ~2 GB image', '');
    if (i.diskBytes) {
      L.push(`Input: \`${basename(i.path)}\` ${fmtB(i.xzBytes)} (xz -T0 -3) → ${fmtB(i.diskBytes)} disk; ext4 root ${fmtB(i.rootPartitionBytes)} with ${fmtB(i.rootUsedBytes)} used, ${i.rootEntries} entries (the fixture root + ${i.hostPaths} paths from this host's /usr). Same file, same machine, page cache warm, sides alternated.`, '');
    }
    L.push('Drover: `ingestOsImage` in a child process (xz -dc → disk.img, our ext4 reader → pax → tar2sqfs, boot files via mcopy, Drover initramfs, sha256+md5). Baseline: the plain tools, one after the other, writing the same squashfs settings (gzip, 128 KiB blocks); debugfs reads the root partition in place (`disk.img?offset=`), so no dd copy is charged to it.', '');
    L.push('| side | run | wall s | CPU s (user+sys) | peak RSS, largest process | peak RSS, process tree (sampled) | squashfs |', '|---|---|---|---|---|---|---|');
    for (const r of ing.runs) L.push(`| ${r.side} | ${r.run} | ${fmtS(r.seconds)} | ${r.cpuS === null ? '–' : fmtS(r.cpuS)} | ${fmtKb(r.maxRssKb)}${r.vmHWMKb ? ` (node VmHWM ${fmtKb(r.vmHWMKb)})` : ''} | ${fmtKb(r.peakTreeKb)} | ${fmtB(r.squashfsBytes)} |`);
    L.push('', `**Median: Drover ${fmtS(ing.droverMedian)} s vs baseline ${fmtS(ing.baselineMedian)} s → Drover ÷ baseline = ${ing.ratio.toFixed(2)}×.** Peak RSS: Drover's node process ${fmtKb(ing.memDrover.vmHWMKb)} (tree with xz and tar2sqfs ${fmtKb(ing.memDrover.peakTreeKb)}); baseline's largest step ${fmtKb(ing.memBaseline.maxRssKb)}.`, '');
    const last = (side: string) => ing.runs.filter((r) => r.side === side).at(-1)!;
    L.push('Steps (last run of each side):', '');
    L.push(`- Drover (phases as reported by onProgress): ${last('drover').steps.map((s) => `${s.step} ${fmtS(s.seconds)} s`).join(', ')}`);
    L.push(`- Baseline: ${last('baseline').steps.map((s) => `${s.step} ${fmtS(s.seconds)} s${s.maxRssKb ? ` (${fmtKb(s.maxRssKb)})` : ''}`).join(', ')}`, '');
    L.push('What each way keeps of the fixture image\'s special files (checked in the resulting squashfs with `rdsquashfs -s/-x`):', '');
    L.push(`| property | ${ing.fidelity.columns.join(' | ')} |`, `|---|${ing.fidelity.columns.map(() => '---|').join('')}`);
    for (const [k, v] of Object.entries(ing.fidelity.rows)) L.push(`| ${k} | ${v.map((x) => (x ? 'kept' : '**lost**')).join(' | ')} |`);
    L.push('');
    L.push(`debugfs rdump writes no device nodes, FIFOs or xattrs, writes every hard link as a separate file, and chmods before it chowns, so even as root the kernel clears the setuid bit; it also drops the sticky bit. Owners survive only as root: unprivileged, every chown fails${ing.rdumpUnprivilegedErrors !== null ? ` (${ing.rdumpUnprivilegedErrors} errors on the fixture)` : ''} and mksquashfs records the extracting user as owner (\`-all-root\` would make that root, still losing 1000:1000 and group 42). Drover's squashfs also carries a boot tree with its initramfs, which the baseline has no equivalent for.`, '');
  }
  if (nodes) {
    const n = nodes;
    L.push('## 2. Storage and time per added node', '');
    const ms = n.drover.perNodeMs;
    L.push(`Drover: \`drover serve\` on loopback with the fixture image (ingested once through the API in ${fmtS(n.drover.ingestSeconds)} s; the stored image is ${fmtB(n.drover.imageBytes)}). Per node: POST /api/v1/devices → GET /boot/v1/files/SERIAL/cmdline.txt (its token) → GET /boot/v1/config → GET /boot/v1/overlay with that token, overlay sha256 checked against the config. Per node: overlay tar.gz ${fmtB(median(n.drover.overlayBytes))}, host-keys.json ${fmtB(median(n.drover.hostKeysBytes))}; time per node p50 ${fmtS(median(ms) / 1000)} s, p99 ${fmtS(pct(ms, 99) / 1000)} s (p50 of the steps: register ${fmtS(median(n.drover.stepMs.post) / 1000)} s, cmdline.txt ${fmtS(median(n.drover.stepMs.cmdline) / 1000)} s, first config — which generates the host keys — ${fmtS(median(n.drover.stepMs.config) / 1000)} s, overlay ${fmtS(median(n.drover.stepMs.overlay) / 1000)} s). Drover bytes = the whole data directory (shared image + SQLite database + per-device keys).`, '');
    L.push(`Per-node copy: the fixture root unpacked once with debugfs rdump (${fmtB(n.copy.templateBytes)}, ${n.copy.templateEntries} entries, ${fmtS(n.copy.unpackSeconds)} s), then \`${n.copy.tool}\` into nodes/N, each followed by \`sync -f\`; bytes = du -sb of the template + all copies; time per copy p50 ${fmtS(median(n.copy.perNodeSeconds))} s.`, '');
    if (n.big) {
      L.push(`2 GB root: ${fmtB(n.big.rootBytes)} unpacked (${n.big.source}); ${n.big.copies.length} real copies took ${n.big.copies.map((c) => `${fmtS(c.seconds)} s`).join(', ')} (${fmtB(median(n.big.copies.map((c) => c.bytes)))} each); the columns marked *extrap.* multiply the median copy by N (${n.rows.at(-1)!.n} copies would need ${fmtB(n.big.rootBytes * n.rows.at(-1)!.n)}). Drover with the 2 GB image: its stored image (${n.drover.bigImageBytes === null ? 'not available' : fmtB(n.drover.bigImageBytes)}) + the per-device data measured above (the overlay does not depend on the image).`, '');
    }
    L.push('| N nodes | Drover bytes (of which devices/) | per-node copy bytes | Drover s (nodes 1…N) | per-node copy s (nodes 1…N) | Drover bytes, 2 GB image | copy bytes, 2 GB root (extrap.) | copy s, 2 GB root (extrap.) |', '|---|---|---|---|---|---|---|---|');
    for (const r of n.rows.filter((r) => r.n >= 2)) {
      L.push(`| ${r.n} | ${fmtB(r.droverBytes)} (${fmtB(r.droverDevicesBytes)}) | ${fmtB(r.copyBytes)} | ${fmtS(r.droverSeconds)} | ${fmtS(r.copySeconds)} | ${r.droverBigBytes === null ? '–' : fmtB(r.droverBigBytes)} | ${r.copyBigBytes === null ? '–' : fmtB(r.copyBigBytes)} | ${r.copyBigSeconds === null ? '–' : fmtS(r.copyBigSeconds)} |`);
    }
    const r1 = n.rows.find((r) => r.n === 1);
    const rl = n.rows.at(-1)!;
    if (r1 && rl.n > 1) {
      const dB = (rl.droverBytes - r1.droverBytes) / (rl.n - 1);
      const cB = (rl.copyBytes - r1.copyBytes) / (rl.n - 1);
      L.push('', `Marginal cost of nodes 2…${rl.n}: Drover ${fmtB(dB)} and ${fmtS((rl.droverSeconds - r1.droverSeconds) / (rl.n - 1))} s per node; a copy of the fixture root ${fmtB(cB)} and ${fmtS((rl.copySeconds - r1.copySeconds) / (rl.n - 1))} s${n.big ? `; a copy of the 2 GB root ${fmtB(median(n.big.copies.map((c) => c.bytes)))} and ${fmtS(median(n.big.copies.map((c) => c.seconds)))} s` : ''}.`);
    }
    L.push('');
  }
  if (del) {
    L.push('## 3. Rootfs delivery', '');
    const h = del.hashers[0]!;
    L.push(`The squashfs of ${del.squashfs.image}: ${fmtB(del.squashfs.bytes)}. All clients start at once; each is one bounded download. **drover-verify** is the initramfs's work: GET /boot/v1/config with the device token, then \`curl | ${h.hasher}\` of the squashfs URL the config names (hashed while receiving), compared with the config's sha256. **drover-raw**: the same download from drover serve to /dev/null. **plain-raw**: \`curl -o /dev/null\` from a minimal node:http server (fs.createReadStream, 1 MiB chunks, no auth). **plain-verify**: the plain server with \`curl | ${h.hasher}\`. Clients, hashers and servers all share the machine's ${m.cores} cores; one hasher process alone does ${del.hashers.map((x) => `${x.mbPerS.toFixed(0)} MB/s (${x.hasher})`).join(', ')} on this file, so the verify rows are bound by the clients' hashing, which on real Pis runs on their own CPUs. **drover-raw, restarted server**: drover-raw again from a freshly started drover serve on the same data directory (the rows above come from the process that just ingested the image).`, '');
    L.push('| mode | clients | wall s | aggregate MB/s | per client p50 s | slowest s | failed | ÷ plain-raw | ÷ plain, same client |', '|---|---|---|---|---|---|---|---|---|');
    for (const r of del.rows) {
      const p = del.rows.find((x) => x.mode === 'plain-raw' && x.clients === r.clients);
      const same = del.rows.find((x) => x.mode === (r.mode.endsWith('verify') ? 'plain-verify' : 'plain-raw') && x.clients === r.clients);
      L.push(`| ${r.label} | ${r.clients} | ${fmtS(r.seconds)} | ${r.mbPerS.toFixed(0)} | ${fmtS(r.p50)} | ${fmtS(r.max)} | ${r.failures}${r.why.length ? ` (${r.why.join('; ')})` : ''} | ${p ? (r.mbPerS / p.mbPerS).toFixed(2) : ''} | ${same && r.mode.startsWith('drover') ? (r.mbPerS / same.mbPerS).toFixed(2) : ''} |`);
    }
    L.push('', `Peak RSS: drover serve ${fmtKb(del.serverVmHWMKb)} (VmHWM of the process that ingested the image, ingest included), the plain server ${fmtKb(del.plainVmHWMKb)}. Adding the image to this server took ${fmtS(del.ingestSeconds)} s.`, '');
  }
  return L.join('\n');
}

// ---------------------------------------------------------------------------------------------
async function main(): Promise<void> {
  const started = new Date();
  const t0 = performance.now();
  const picked = ['--ingest', '--nodes', '--delivery'].filter(flag);
  const want = (f: string) => picked.length === 0 || picked.includes(f);
  const runs = Number(arg('--runs', '2'));
  const maxNodes = Number(arg('--max-nodes', '100'));
  const bigCopies = Number(arg('--big-copies', '3'));
  const clientsList = arg('--clients', '1,10,50').split(',').map(Number);
  const modes = arg('--modes', 'drover-verify,drover-raw,plain-raw,plain-verify').split(',') as Mode[];
  const small = flag('--small');
  const outDir = arg('--out', join(root, 'bench', 'results'));
  if (![runs, maxNodes, bigCopies, ...clientsList].every((x) => Number.isInteger(x) && x >= 0) || runs < 1 || maxNodes < 2 || maxNodes > 500 || Math.max(...clientsList) > 200) {
    throw new Error('--runs ≥ 1, --max-nodes 2…500, --big-copies ≥ 0, --clients up to 200');
  }
  for (const [cmd, pkg] of [['xz', 'xz-utils'], ['mcopy', 'mtools'], ['debugfs', 'e2fsprogs'], ['mke2fs', 'e2fsprogs'], ['sfdisk', 'fdisk'], ['tar2sqfs', 'squashfs-tools-ng'], ['rdsquashfs', 'squashfs-tools-ng'], ['curl', 'curl'], ['sha256sum', 'coreutils']] as const) {
    if (!which(cmd)) throw new Error(`${cmd} is missing: install the Debian package ${pkg}`);
  }
  const m = machine();
  if (!which('mksquashfs')) log('mksquashfs is missing (squashfs-tools): the baseline uses tar | tar2sqfs instead');
  const scratch = tempDir('drover-bench-images-');
  chmodSync(scratch, 0o755);
  log(`scratch ${scratch}; ${fmtB(freeBytes(scratch))} free`);

  let ing: IngestReport | null = null;
  let nodes: NodesReport | null = null;
  let del: DeliveryReport | null = null;
  let bigRoot: string | null = null;
  if (want('--ingest')) {
    const r = await benchIngest(scratch, runs, small, want('--nodes') && bigCopies > 0);
    ing = r.report;
    bigRoot = r.bigRoot;
  }
  if (want('--nodes')) {
    const c = small ? null : cachedBigIngest();
    nodes = await benchNodes(scratch, maxNodes, bigCopies, small, bigRoot, c ? du(c.dir) : null);
  }
  if (want('--delivery')) del = await benchDelivery(scratch, clientsList, modes, small);

  const wall = (performance.now() - t0) / 1000;
  const md = markdown(m, started, wall, ing, nodes, del);
  mkdirSync(outDir, { recursive: true });
  const stamp = started.toISOString().slice(0, 19).replace(/[:T]/g, '-');
  writeFileSync(join(outDir, `images-${stamp}.md`), `${md}\n`);
  writeFileSync(join(outDir, `images-${stamp}.json`), JSON.stringify({ machine: m, started, wallSeconds: wall, ingest: ing, nodes, delivery: del }, null, 2));
  process.stdout.write(`${md}\n`);
  log(`results: ${join(outDir, `images-${stamp}.md`)}`);
}

process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    cleanup();
    process.exit(130);
  });
}

if (argv[0] === '--child-ingest') {
  await childIngest(argv[1]!, argv[2]!);
} else {
  try {
    await main();
  } catch (err) {
    cleanup();
    process.stderr.write(`images: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
