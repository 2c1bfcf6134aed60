// The device agent's footprint: RSS and CPU per minute of the bundled agent (what runs on a Pi)
// as a real child process, with the real /proc metrics collector, against a real controller on
// loopback, at the default 10 s heartbeat and at 1 s, with Node's default flags, with the flags
// data/agent/drover-agent.service passes, and with leaner V8 flags. Beside them: an idle `node`
// with the same flags, the floor no agent code can go below.
//
//   node --import tsx bench/agent-footprint.ts [--seconds 180] [--quick]
//
// Every variant runs at the same time (each its own device, token and state dir on tmpfs), for
// `--seconds`; two controllers (`drover serve` from the source through tsx), one telling its
// agents a 10 s heartbeat, one 1 s (the welcome sets the interval, as on a device). Each process
// is sampled once a second: VmRSS, RssAnon, RssFile, VmHWM from /proc/PID/status, utime+stime
// from /proc/PID/stat. Steady RSS = median over the samples after the first minute; CPU per
// minute = CPU time from 30 s to the end, scaled to a minute (the first 30 s, loading and
// compiling the bundle, are reported separately as start-up CPU).
// Results: bench/results/agent-footprint.{json,md}.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSimDevices } from '../src/agent/simulator.js';
import { freePort } from '../src/server/free-port.js';
import { cpuOf, statusOf } from './procfs.js';
import { sourceState } from './source-state.js';

const root = new URL('../', import.meta.url).pathname;
const argv = process.argv.slice(2);
const flag = (name: string) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
const QUICK = argv.includes('--quick');
const SECONDS = Number(flag('--seconds') ?? (QUICK ? 40 : 180));
const log = (s: string) => process.stderr.write(`${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
if (!(SECONDS >= 20 && SECONDS <= 1800)) throw new Error('--seconds takes 20 to 1800');
// (The Findings section of bench/results/agent-footprint.md is written by hand after a run; a new run replaces the file.)

interface ProcSample {
  t: number;
  rssKB: number;
  anonKB: number;
  fileKB: number;
  hwmKB: number;
  threads: number;
  cpuS: number;
}

function sampleProc(pid: number, t: number): ProcSample | null {
  try {
    const kb = statusOf(pid);
    return { t, rssKB: kb('VmRSS'), anonKB: kb('RssAnon'), fileKB: kb('RssFile'), hwmKB: kb('VmHWM'), threads: kb('Threads'), cpuS: cpuOf(pid) };
  } catch {
    return null;
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : NaN;
};

const UNIT_FLAGS = ['--max-semi-space-size=1', '--max-old-space-size=48'];
const LEAN = ['--max-semi-space-size=1', '--max-old-space-size=32'];

interface Variant {
  name: string;
  /** 'agent' runs the bundle; 'idle' an empty node with the same flags. */
  kind: 'agent' | 'idle';
  nodeFlags: string[];
  heartbeatS: 10 | 1;
  gossip: boolean;
  note: string;
}

const VARIANTS: Variant[] = [
  { name: 'node defaults', kind: 'agent', nodeFlags: [], heartbeatS: 10, gossip: true, note: 'plain `node drover-agent.mjs`' },
  { name: 'node defaults, 1 s', kind: 'agent', nodeFlags: [], heartbeatS: 1, gossip: true, note: '' },
  { name: 'unit flags', kind: 'agent', nodeFlags: UNIT_FLAGS, heartbeatS: 10, gossip: true, note: 'what drover-agent.service runs today' },
  { name: 'unit flags, 1 s', kind: 'agent', nodeFlags: UNIT_FLAGS, heartbeatS: 1, gossip: true, note: '' },
  { name: 'unit flags, gossip off', kind: 'agent', nodeFlags: UNIT_FLAGS, heartbeatS: 10, gossip: false, note: '`--gossip off`: the agent without its gossip member' },
  { name: 'old space 32', kind: 'agent', nodeFlags: LEAN, heartbeatS: 10, gossip: true, note: '' },
  { name: '32 + --jitless', kind: 'agent', nodeFlags: [...LEAN, '--jitless'], heartbeatS: 10, gossip: true, note: 'interpreter only, no executable memory' },
  { name: '32 + --jitless, 1 s', kind: 'agent', nodeFlags: [...LEAN, '--jitless'], heartbeatS: 1, gossip: true, note: '' },
  { name: '32 + --lite-mode', kind: 'agent', nodeFlags: [...LEAN, '--lite-mode'], heartbeatS: 10, gossip: true, note: 'V8 trades speed for memory (implies no optimizing compiler)' },
  { name: '32 + --single-threaded', kind: 'agent', nodeFlags: [...LEAN, '--single-threaded', '--v8-pool-size=1'], heartbeatS: 10, gossip: true, note: 'no V8 background GC/compile threads' },
  { name: '32 + jitless + single-threaded + optimize-for-size', kind: 'agent', nodeFlags: [...LEAN, '--jitless', '--single-threaded', '--v8-pool-size=1', '--optimize-for-size'], heartbeatS: 10, gossip: true, note: 'everything at once' },
  { name: 'idle node, defaults', kind: 'idle', nodeFlags: [], heartbeatS: 10, gossip: false, note: '`node -e "setInterval(() => {}, 1e9)"`: Node itself' },
  { name: 'idle node, 32 + jitless + single-threaded + optimize-for-size', kind: 'idle', nodeFlags: [...LEAN, '--jitless', '--single-threaded', '--v8-pool-size=1', '--optimize-for-size'], heartbeatS: 10, gossip: false, note: '' },
];

interface Controller {
  url: string;
  proc: ChildProcess;
  dataDir: string;
  adminToken: string;
}

async function startController(heartbeatS: number): Promise<Controller> {
  const dataDir = mkdtempSync(join(tmpdir(), 'drover-bench-footprint-'));
  const port = await freePort();
  const proc = spawn(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'serve', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`, '--tftp-listen', 'off', '--log-level', 'warn', '--agent-heartbeat', String(heartbeatS)], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NODE_NO_WARNINGS: '1' } });
  let err = '';
  proc.stderr!.on('data', (d) => (err = (err + d).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`drover serve exited with ${proc.exitCode}: ${err}`);
    try {
      if ((await fetch(`${url}/readyz`)).ok && existsSync(join(dataDir, 'initial-admin-token'))) break;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error(`drover serve did not become ready: ${err}`);
    await sleep(200);
  }
  return { url, proc, dataDir, adminToken: readFileSync(join(dataDir, 'initial-admin-token'), 'utf8').trim() };
}

interface Result {
  variant: Variant;
  pid: number;
  samples: ProcSample[];
  exited: string | null;
  /** From the controller: samples stored for the device (GET …/metrics, raw), and its health at the end. */
  lastSeq: number | null;
  health: string | null;
  steadyRssMB: number;
  steadyAnonMB: number;
  steadyFileMB: number;
  maxRssMB: number;
  hwmMB: number;
  threads: number;
  startupCpuS: number;
  cpuSPerMin: number;
  /** SIGTERM → exit, and the exit code or signal (SIGKILL after 12 s). */
  stop?: { ms: number; how: string };
}

async function main(): Promise<void> {
  const started = Date.now();
  const work = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'drover-bench-agents-'));
  const bundle = join(work, 'drover-agent.mjs');
  log('building the agent bundle…');
  const built = execFileSync(process.execPath, [join(root, 'scripts/build-agent.mjs'), '--outfile', bundle], { cwd: root, encoding: 'utf8' }).trim();
  const bundleBytes = statSync(bundle).size;
  const help = execFileSync(process.execPath, [bundle, '--help'], { encoding: 'utf8' });
  const hasGossip = help.includes('--gossip ');
  const controllers = new Map<number, Controller>();
  const children: { v: Variant; proc: ChildProcess; node: string | null }[] = [];
  const results: Result[] = [];
  try {
    for (const hb of [10, 1]) controllers.set(hb, await startController(hb));
    log(`controllers up; starting ${VARIANTS.length} processes for ${SECONDS} s`);
    for (const [i, v] of VARIANTS.entries()) {
      if (v.kind === 'idle') {
        const proc = spawn(process.execPath, [...v.nodeFlags, '-e', 'setInterval(() => {}, 1e9)'], { stdio: 'ignore' });
        children.push({ v, proc, node: null });
        continue;
      }
      const ctl = controllers.get(v.heartbeatS)!;
      const [dev] = await createSimDevices({ url: ctl.url, adminToken: ctl.adminToken }, 1, { serialBase: 0x70000000 + i, hostnamePrefix: `footprint-${i}` });
      const dir = join(work, `agent-${i}`);
      mkdirSync(dir, { mode: 0o700 });
      writeFileSync(join(dir, 'token'), dev!.token, { mode: 0o600 });
      const gossipArgs = hasGossip ? ['--gossip', v.gossip ? `127.0.0.1:${await freePort()}` : 'off'] : [];
      const args = [...v.nodeFlags, bundle, '--server', ctl.url, '--node', dev!.node, '--token-file', join(dir, 'token'), '--state-dir', join(dir, 'state'), '--heartbeat-ms', String(v.heartbeatS * 1000), '--log-level', 'warn', ...gossipArgs];
      const proc = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      proc.stderr!.on('data', (d) => (err = (err + d).slice(-2000)));
      proc.once('exit', (code, sig) => {
        if (code !== 0 || err.replace(/Warning: disabling flag --expose_wasm due to conflicting flags\s*/g, '').trim()) log(`  ${v.name} exited (${code ?? sig}): ${err}`);
      });
      children.push({ v, proc, node: dev!.node });
    }
    const t0 = performance.now();
    const samples = children.map(() => [] as ProcSample[]);
    for (let s = 0; s <= SECONDS; s++) {
      const due = t0 + s * 1000;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      const t = (performance.now() - t0) / 1000;
      children.forEach((c, k) => {
        const x = c.proc.pid ? sampleProc(c.proc.pid, t) : null;
        if (x) samples[k]!.push(x);
      });
      if (s % 30 === 0) log(`  ${s}/${SECONDS} s`);
    }
    for (const [k, c] of children.entries()) {
      const xs = samples[k]!;
      let lastSeq: number | null = null;
      let health: string | null = null;
      if (c.node) {
        const ctl = controllers.get(c.v.heartbeatS)!;
        const headers = { authorization: `Bearer ${ctl.adminToken}` };
        const r = await fetch(`${ctl.url}/api/v1/devices/${c.node}/health`, { headers });
        if (r.ok) health = ((await r.json()) as { health?: string }).health ?? null;
        const m = await fetch(`${ctl.url}/api/v1/devices/${c.node}/metrics?resolution=raw`, { headers });
        if (m.ok) lastSeq = ((await m.json()) as { items: unknown[] }).items.length;
      }
      const steady = xs.filter((x) => x.t >= Math.min(60, SECONDS / 2));
      const from = xs.find((x) => x.t >= 30) ?? xs[0];
      const last = xs[xs.length - 1];
      results.push({
        variant: c.v,
        pid: c.proc.pid ?? 0,
        samples: xs,
        exited: c.proc.exitCode !== null || c.proc.signalCode !== null ? String(c.proc.exitCode ?? c.proc.signalCode) : null,
        lastSeq,
        health,
        steadyRssMB: median(steady.map((x) => x.rssKB)) / 1024,
        steadyAnonMB: median(steady.map((x) => x.anonKB)) / 1024,
        steadyFileMB: median(steady.map((x) => x.fileKB)) / 1024,
        maxRssMB: Math.max(...xs.map((x) => x.rssKB)) / 1024,
        hwmMB: (last?.hwmKB ?? NaN) / 1024,
        threads: last?.threads ?? NaN,
        startupCpuS: from?.cpuS ?? NaN,
        cpuSPerMin: from && last && last.t > from.t ? ((last.cpuS - from.cpuS) / (last.t - from.t)) * 60 : NaN,
      });
    }
    // SIGTERM, as systemd stops the unit; how long each takes to exit (the unit allows 10 s).
    const stopT0 = performance.now();
    const stops = children.map(
      (c) =>
        new Promise<{ ms: number; how: string }>((resolve) => {
          if (c.proc.exitCode !== null || c.proc.signalCode !== null) return resolve({ ms: NaN, how: 'already exited' });
          c.proc.once('exit', (code, sig) => resolve({ ms: performance.now() - stopT0, how: String(code ?? sig) }));
          c.proc.kill('SIGTERM');
        }),
    );
    const stopBy = setTimeout(() => {
      for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
    }, 12_000);
    const stopped = await Promise.all(stops);
    clearTimeout(stopBy);
    stopped.forEach((x, k) => {
      const r = results.find((y) => y.variant === children[k]!.v);
      if (r) r.stop = x;
    });
  } finally {
    for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
    for (const ctl of controllers.values()) {
      if (ctl.proc.exitCode === null) {
        const exited = new Promise((r) => ctl.proc.once('exit', r));
        ctl.proc.kill('SIGTERM');
        const t = setTimeout(() => ctl.proc.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
      }
      rmSync(ctl.dataDir, { recursive: true, force: true });
    }
    rmSync(work, { recursive: true, force: true });
  }

  const { commit, dirty } = sourceState(root);
  const env = { cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', arch: process.arch, node: process.version, commit, dirty, date: new Date(started).toISOString(), seconds: SECONDS, bundle: built, bundleBytes, gossipFlag: hasGossip };
  const outDir = join(root, 'bench', 'results');
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'agent-footprint.json'), `${JSON.stringify({ env, results }, null, 1)}\n`);
  const md = render(env, results);
  writeFileSync(join(outDir, 'agent-footprint.md'), md);
  process.stdout.write(md);
}

function render(env: Record<string, unknown>, results: Result[]): string {
  const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '—');
  const L: string[] = [];
  L.push('# Device agent footprint: RSS and CPU', '');
  L.push(`${env.cpus} × ${env.cpu} (${env.arch}), Node ${env.node}, commit ${env.commit}${env.dirty ? ' (working tree with uncommitted changes)' : ''}, ${env.date}. Bundle ${(Number(env.bundleBytes) / 1024).toFixed(1)} KiB. Every process ran ${env.seconds} s, all at the same time.`, '');
  L.push('| variant | node flags | heartbeat | steady RSS MB (anon + file) | max RSS MB | VmHWM MB | threads | CPU s per minute | start-up CPU s (first 30 s) | samples stored / health | SIGTERM → exit |');
  L.push('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    const v = r.variant;
    const stored = v.kind === 'idle' ? '—' : `${r.lastSeq ?? '?'} / ${r.health ?? '?'}${r.exited ? ` (exited ${r.exited})` : ''}`;
    const stop = r.stop ? `${f(r.stop.ms / 1000, 2)} s (${r.stop.how})` : '—';
    L.push(`| ${v.name}${v.note ? ` — ${v.note}` : ''} | ${v.nodeFlags.length ? `\`${v.nodeFlags.join(' ')}\`` : '(none)'} | ${v.kind === 'idle' ? '—' : `${v.heartbeatS} s`} | ${f(r.steadyRssMB)} (${f(r.steadyAnonMB)} + ${f(r.steadyFileMB)}) | ${f(r.maxRssMB)} | ${f(r.hwmMB)} | ${r.threads} | ${f(r.cpuSPerMin, 3)} | ${f(r.startupCpuS, 2)} | ${stored} | ${stop} |`);
  }
  L.push('', '<!-- findings -->', '');
  L.push('## Method', '');
  const members = (hb: number) => results.filter((r) => r.variant.kind === 'agent' && r.variant.gossip && r.variant.heartbeatS === hb).length;
  const gossipText = env.gossipFlag
    ? `; its gossip member on 127.0.0.1 unless \`--gossip off\`: the controller (without gossip of its own) hands each agent the other agents as seeds, so the agents of one controller form a group (${members(10)} members at 10 s, ${members(1)} at 1 s) and their CPU includes real SWIM probing`
    : '';
  L.push(`- The agent bundle built by \`scripts/build-agent.mjs\` from the working tree (written to a temporary path, dist/ untouched), run as \`node [flags] drover-agent.mjs --server … --node … --token-file … --state-dir … --heartbeat-ms …\` with the real /proc collector and log level warn${gossipText}. State dirs on tmpfs, as /run on a Pi. At the end each gets SIGTERM, as systemd sends it; SIGTERM → exit is timed (SIGKILL after 12 s).`);
  L.push('- Controllers: `drover serve` from the source (tsx) on loopback, `--agent-heartbeat 10` and `--agent-heartbeat 1`; each device registered with POST /api/v1/devices and given a device token with POST /api/v1/tokens (createSimDevices over HTTP). "samples stored" = raw samples the controller returns for the device at the end (GET /api/v1/devices/ID/metrics).');
  L.push('- Sampled once a second from /proc/PID/status (VmRSS = RssAnon + RssFile + RssShmem, VmHWM = peak RSS) and /proc/PID/stat (utime + stime). Steady RSS = median after the first minute; CPU per minute from 30 s to the end.');
  L.push('- x86-64 figures: on a Pi (arm64 or armv7l) Node\'s binary and V8\'s heap layout differ, so absolute RSS differs (usually lower on armv7l, pointer size); the differences between flags carry over. RssFile is mostly the node binary\'s pages; on a device it is the same binary once, and it counts toward the unit\'s MemoryMax (page cache is charged to the cgroup), as does the tmpfs buffer file.');
  L.push('');
  return L.join('\n');
}

if (argv.includes('--render-only')) {
  // Re-renders bench/results/agent-footprint.md from the .json (after a change to the report's layout).
  const dir = join(root, 'bench', 'results');
  const r = JSON.parse(readFileSync(join(dir, 'agent-footprint.json'), 'utf8')) as { env: Record<string, unknown>; results: Result[] };
  writeFileSync(join(dir, 'agent-footprint.md'), render(r.env, r.results));
} else await main();
