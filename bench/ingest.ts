// Heartbeat + metrics ingest: the highest sustained rate of samples the controller takes with an
// ack p99 under 50 ms, on SQLite and on PostgreSQL, over the real agent WebSocket protocol.
//
//   node --import tsx bench/ingest.ts [--devices 10000] [--rates 1000,2000,5000,…] [--seconds 12]
//        [--warmup 3] [--configs sqlite:5,postgres:5,sqlite:250,postgres:250]
//        [--pg-fsync on|off] [--breakdown] [--merge] [--quick] [--profile DIR]
//   node --import tsx bench/ingest.ts --render-only      (re-render the .md from the .json)
//
// --configs: database (sqlite = a file in $TMPDIR, sqlite-tmpfs = on /dev/shm, postgres = a private
// server, initdb'd and started here, stopped at the end) and ingest flush interval in ms.
// --breakdown: also time one 2,500-device batch's insert and health touch in-process.
// --merge: replace only these configurations in the existing results (others are kept).
// --profile DIR: the controller runs with --cpu-prof into DIR.
// The Findings section of bench/results/ingest.md is written by hand after a run.
//
// The controller runs in a child process (its CPU is read from /proc/PID/stat), from the
// TypeScript source through tsx:
//   the shipped flush (DEFAULT_INGEST.flushMs, group commit within 5 ms): `drover serve` itself;
//   any other flush interval: a minimal composition in this file (`--controller`) of the same
//   parts `drover serve` wires for agents (Store, createServices with `agent.ingest.flushMs`,
//   buildApp, health.start); the interval has no setting in `drover serve`.
// Devices and their boot tokens are registered through the services before the controller starts
// (createSimDevices), on a fresh database per configuration.
//
// Load: lightweight protocol peers in this process, not full Agent instances (an Agent also keeps
// a buffer file, timers and a JSON copy per sample, CPU the controller would have to share the two
// cores with; src/agent/simulator.ts runs real Agents for tests). Each simulated device has
// its own WebSocket, its own device token, says hello with its own stream and sends `hb` messages
// exactly as src/agent/client.ts does when live. A token bucket ticking every 5 ms spreads the
// offered rate over the devices round-robin, so every device sends rate/devices samples per second
// (more often than a real device's one per 10 s: the connection count is what this machine can
// hold, the sample rate is the target's). Latency = from ws.send() of a sample to the arrival of the
// first ack whose seq covers it (acks are cumulative), measured in this process.
//
// Devices: 10,000 by default, so that at 1,000/s each reports every 10 s like a real agent, and an
// ingest batch at 10,000/s holds as many distinct devices as 100,000 devices at 10 s would fill it
// with (the health touch costs per device, not per sample).
//
// Each rate runs `--warmup` seconds unmeasured, then `--seconds` measured; then sending stops and
// the step waits up to 5 s for the acks of the measured samples. A step passes when p99 < 50 ms,
// ≥ 97 % of the offered samples were sent and all of them were acked. Stepping stops after the
// first step that acks less than 80 % of its offer or has p99 over 5 s. Every loop is bounded in
// count and time; all traffic is on 127.0.0.1.
// Results: bench/results/ingest.{json,md}.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, createWriteStream, fsyncSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import WebSocket from 'ws';
import { createSimDevices, type SimDevice } from '../src/agent/simulator.js';
import { AGENT_PROTOCOL, AGENT_WS_PATH, type Metrics } from '../src/agent/protocol.js';
import { DEFAULT_INGEST } from '../src/services/metrics-ingest.js';
import { freePort } from '../src/server/free-port.js';
import { Store } from '../src/store/store.js';
import { startPostgres } from '../test/helpers/postgres.js';
import { CLK_TCK, cpuOf, statFields, statusOf } from './procfs.js';
import { sourceState } from './source-state.js';

const root = new URL('../', import.meta.url).pathname;
const argv = process.argv.slice(2);
const flag = (name: string) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
const QUICK = argv.includes('--quick');
/** The flush interval `drover serve` ships with. */
const SHIPPED_FLUSH = DEFAULT_INGEST.flushMs;
const log = (s: string) => process.stderr.write(`${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ── helpers ──

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Busy CPU seconds of the whole machine (all cores), from /proc/stat. */
function machineBusy(): number {
  const v = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = v;
  return (user + nice + system + irq + softirq + steal) / CLK_TCK;
}

function memOf(pid: number): { rssMB: number; hwmMB: number } {
  const kb = statusOf(pid);
  return { rssMB: kb('VmRSS') / 1024, hwmMB: kb('VmHWM') / 1024 };
}

interface Pg {
  url: string;
  /** A fresh database on the server; its URL. */
  createDatabase(name: string): string;
  /** CPU seconds of the postmaster and its children (backends, checkpointer, WAL writer). */
  cpu(): number;
  stop(): void;
}

/** test/helpers/postgres.ts's private PostgreSQL, with fsync on by default (durable commits, as SQLite's synchronous=FULL), and its CPU. */
async function startPg(fsync: boolean): Promise<Pg> {
  const pg = await startPostgres({ fsync, maxConnections: 100 });
  const cpu = () => {
    const master = Number(readFileSync(join(pg.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    // The postmaster's own time plus what its exited children used (cutime + cstime: the pool
    // closes idle connections), plus the children alive now.
    const st = statFields(master);
    let sum = (Number(st[11]) + Number(st[12]) + Number(st[13]) + Number(st[14])) / CLK_TCK;
    for (const e of readdirSync('/proc')) {
      if (!/^\d+$/.test(e)) continue;
      try {
        if (Number(statFields(Number(e))[1]) === master) sum += cpuOf(Number(e));
      } catch {
        /* gone */
      }
    }
    return sum;
  };
  return { url: pg.url, createDatabase: (name) => pg.createDatabase(name), cpu, stop: () => pg.stop() };
}

// ── the load generator ──

const METRICS_POOL: string[] = (() => {
  // A few realistic samples (4 cores, temp, throttled), rotated; the controller validates each in full.
  const out: string[] = [];
  for (let i = 0; i < 16; i++) {
    const m: Metrics = {
      cpu: [0.05 + i / 100, 0.1, 0.02 + i / 200, 0.3],
      load: [0.4 + i / 10, 0.35, 0.3],
      mem: [3_951_300_608, 2_800_000_000 - i * 1_000_000],
      disk: [31_914_983_424, 20_000_000_000 - i * 4096],
      temp: 48.2 + i / 10,
      throttled: 0,
      net: [123_456_789 + i * 10_000, 23_456_789 + i * 5000],
      uptime: 86_400 + i * 10,
    };
    out.push(JSON.stringify(m));
  }
  return out;
})();

class Peer {
  ws!: WebSocket;
  seq = 0;
  /** Sent and not yet acked: seqs and send times, oldest first (head index into the arrays). */
  private seqs: number[] = [];
  private times: number[] = [];
  private head = 0;
  errors = 0;
  closed = false;

  constructor(
    readonly device: SimDevice,
    private readonly url: string,
    private readonly onAcked: (sentAt: number, now: number) => void,
  ) {}

  get inFlight(): number {
    return this.seqs.length - this.head;
  }

  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url, { headers: { authorization: `Bearer ${this.device.token}` }, perMessageDeflate: false, handshakeTimeout: 30_000 });
      this.ws = ws;
      const timer = setTimeout(() => reject(new Error(`no welcome for ${this.device.node} within 60 s`)), 60_000);
      ws.on('open', () => {
        ws.send(JSON.stringify({ t: 'hello', v: AGENT_PROTOCOL, node: this.device.node, bootId: randomBytes(16).toString('hex'), imageId: null, version: 'bench', stream: randomBytes(8).toString('hex') }));
      });
      ws.on('message', (data) => {
        const m = JSON.parse(data.toString()) as { t: string; seq?: number };
        if (m.t === 'ack') this.acked(m.seq!);
        else if (m.t === 'welcome') {
          clearTimeout(timer);
          resolve();
        } else if (m.t === 'error') this.errors++;
      });
      ws.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      ws.on('close', () => {
        this.closed = true;
      });
    });
  }

  send(now: number): void {
    const seq = ++this.seq;
    this.seqs.push(seq);
    this.times.push(now);
    this.ws.send(`{"t":"hb","seq":${seq},"ts":${Date.now()},"m":${METRICS_POOL[seq % METRICS_POOL.length]}}`);
  }

  private acked(seq: number): void {
    const now = performance.now();
    while (this.head < this.seqs.length && this.seqs[this.head]! <= seq) {
      this.onAcked(this.times[this.head]!, now);
      this.head++;
    }
    if (this.head > 4096) {
      this.seqs = this.seqs.slice(this.head);
      this.times = this.times.slice(this.head);
      this.head = 0;
    }
  }
}

interface Step {
  rate: number;
  seconds: number;
  offered: number;
  sent: number;
  skipped: number;
  acked: number;
  unacked: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  sentPerS: number;
  ackedPerS: number;
  controllerCpuPct: number;
  /** PostgreSQL's processes (null on SQLite, whose work is inside the controller). */
  dbCpuPct: number | null;
  generatorCpuPct: number;
  /** Everything else on the machine during the window (other processes, kernel work not charged to ours), % of one core. */
  otherCpuPct: number;
  controllerRssMB: number;
  rowsWritten: number;
  rowsPerS: number;
  /** From the bench composition only (null for drover serve): ingest batches per second, the longest batch, event-loop delay. */
  batchesPerS: number | null;
  maxBatchMs: number | null;
  eventLoopP99Ms: number | null;
  eventLoopMaxMs: number | null;
  healthRoundMaxMs: number | null;
  pass: boolean;
}

/** What the bench composition of the controller reports every second. */
interface StatLine {
  at: number;
  batches: number;
  stored: number;
  maxBatchMs: number;
  depth: number;
  eldP99Ms: number;
  eldMaxMs: number;
  healthMaxMs: number;
}

interface Config {
  db: DbKind;
  flushMs: number;
  controller: string;
  devices: number;
  registerS: number;
  connectS: number;
  allAliveS: number | null;
  idleControllerRssMB: number;
  steps: Step[];
  best: number | null;
  error?: string;
}

const MAX_IN_FLIGHT = 5000; // per device; beyond it the generator skips (counted) instead of piling up

type DbKind = 'sqlite' | 'sqlite-tmpfs' | 'postgres';

/** fsync latency of the disk under `dir` (200 × write 4 KiB + fsync), ms. */
function fsyncProbe(dir: string): { p50: number; p99: number; max: number } {
  const file = join(mkdtempSync(join(dir, 'drover-fsync-')), 'probe');
  const fd = openSync(file, 'w');
  const t: number[] = [];
  const b = Buffer.alloc(4096, 1);
  try {
    for (let i = 0; i < 200; i++) {
      writeSync(fd, b);
      const s = performance.now();
      fsyncSync(fd);
      t.push(performance.now() - s);
    }
  } finally {
    closeSync(fd);
    rmSync(join(file, '..'), { recursive: true, force: true });
  }
  t.sort((x, y) => x - y);
  return { p50: pct(t, 50), p99: pct(t, 99), max: t[t.length - 1]! };
}

async function runConfig(db: DbKind, flushMs: number, pg: Pg | null, o: { devices: number; rates: number[]; seconds: number; warmup: number }): Promise<Config> {
  const dataDir = mkdtempSync(join(db === 'sqlite-tmpfs' ? '/dev/shm' : tmpdir(), 'drover-bench-ingest-'));
  const database = db !== 'postgres' ? join(dataDir, 'drover.db') : pg!.createDatabase(`ingest_${flushMs}_${Date.now()}`);
  const controllerKind = flushMs === SHIPPED_FLUSH ? 'drover serve (tsx, source)' : `bench composition (--controller, flushMs ${flushMs})`;
  const cfg: Config = { db, flushMs, controller: controllerKind, devices: o.devices, registerS: 0, connectS: 0, allAliveS: null, idleControllerRssMB: 0, steps: [], best: null };
  let proc: ChildProcess | null = null;
  const peers: Peer[] = [];
  const statLines: StatLine[] = [];
  let store: Store | null = null;
  try {
    // Register the devices (and their boot tokens) through the services, before the controller runs.
    let t = performance.now();
    store = await Store.open(database);
    const { createServices } = await import('../src/services/index.js');
    const services = createServices(store, { sessionTtl: 3600, dataDir });
    const devices = await createSimDevices({ services }, o.devices, { serialBase: 0x10000000, progress: (n) => n % 2500 === 0 && log(`  registered ${n}/${o.devices}`) });
    await store.close();
    store = null;
    cfg.registerS = (performance.now() - t) / 1000;
    log(`  ${o.devices} devices registered in ${cfg.registerS.toFixed(1)} s`);

    const port = await freePort();
    const profile = flag('--profile');
    const args =
      (profile ? [`--cpu-prof`, `--cpu-prof-dir=${profile}`] : []) as string[];
    args.push(...(flushMs === SHIPPED_FLUSH
        ? ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'serve', '--data-dir', dataDir, '--database', database, '--listen', `127.0.0.1:${port}`, '--tftp-listen', 'off', '--log-level', 'warn']
        : ['--import', 'tsx', join(root, 'bench/ingest.ts'), '--controller', '--data-dir', dataDir, '--database', database, '--port', String(port), '--flush-ms', String(flushMs)]));
    const errLog = createWriteStream(join(dataDir, 'controller.log'));
    proc = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_NO_WARNINGS: '1' } });
    proc.stderr!.pipe(errLog);
    let pending = '';
    proc.stdout!.on('data', (d: Buffer) => {
      pending += d.toString();
      let nl;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (line.startsWith('stats ')) statLines.push({ at: performance.now(), ...(JSON.parse(line.slice(6)) as Omit<StatLine, 'at'>) });
        else errLog.write(`${line}\n`);
      }
    });
    const base = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`controller exited with ${proc.exitCode}: ${readFileSync(join(dataDir, 'controller.log'), 'utf8').slice(-2000)}`);
      try {
        if ((await fetch(`${base}/readyz`)).ok) break;
      } catch {
        /* not yet */
      }
      if (Date.now() > deadline) throw new Error('the controller did not become ready in 60 s');
      await sleep(200);
    }
    const pid = proc.pid!;
    cfg.idleControllerRssMB = memOf(pid).rssMB;

    // One connection per device, 64 hellos in flight.
    let acc: { on: boolean; lat: number[]; count: number } = { on: false, lat: [], count: 0 };
    const onAcked = (sentAt: number, now: number) => {
      if (sentAt >= windowStart && sentAt < windowEnd) {
        acc.lat.push(now - sentAt);
      }
    };
    let windowStart = Infinity;
    let windowEnd = -Infinity;
    const url = `ws://127.0.0.1:${port}${AGENT_WS_PATH}`;
    for (const d of devices) peers.push(new Peer(d, url, onAcked));
    t = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        for (;;) {
          const i = next++;
          if (i >= peers.length) return;
          await peers[i]!.connect();
        }
      }),
    );
    cfg.connectS = (performance.now() - t) / 1000;
    log(`  ${peers.length} connections welcomed in ${cfg.connectS.toFixed(1)} s`);

    // Rows and health are read through a second connection to the same database.
    store = await Store.open(database);
    const rows = async () => Number((await sql<{ n: number }>`select count(*) as n from metrics`.execute(store!.db)).rows[0]!.n);

    let rr = 0;
    /** Sends at `rate` for `ms`; returns what it offered, sent and skipped. */
    const drive = async (rate: number, ms: number) => {
      const start = performance.now();
      let offered = 0;
      let sent = 0;
      let skipped = 0;
      for (;;) {
        const now = performance.now();
        const elapsed = Math.min(now - start, ms);
        const due = Math.floor((rate * elapsed) / 1000) - offered;
        for (let k = 0; k < due; k++) {
          const p = peers[rr++ % peers.length]!;
          offered++;
          if (p.closed || p.inFlight >= MAX_IN_FLIGHT) skipped++;
          else {
            p.send(now);
            sent++;
          }
        }
        if (now - start >= ms) return { offered, sent, skipped };
        await sleep(5);
      }
    };

    // Everyone alive before the first measurement (the first health round writes a row per device).
    t = performance.now();
    const firstRate = o.rates[0]!;
    const aliveBy = performance.now() + 180_000;
    while (performance.now() < aliveBy) {
      await drive(firstRate, 2000);
      const alive = (await store.health.countByHealth()).alive ?? 0;
      if (alive === o.devices) {
        cfg.allAliveS = (performance.now() - t) / 1000;
        break;
      }
    }
    log(cfg.allAliveS === null ? '  not every device was alive after 180 s; measuring anyway' : `  all ${o.devices} devices alive after ${cfg.allAliveS.toFixed(1)} s at ${firstRate}/s`);

    for (const rate of o.rates) {
      await drive(rate, o.warmup * 1000);
      const rows0 = await rows();
      acc = { on: true, lat: [], count: 0 };
      const c0 = cpuOf(pid);
      const p0 = pg?.cpu() ?? 0;
      const m0 = machineBusy();
      const g0 = process.cpuUsage();
      const w0 = performance.now();
      windowStart = w0;
      windowEnd = Infinity;
      const r = await drive(rate, o.seconds * 1000);
      const w1 = performance.now();
      windowEnd = w1;
      const wallS = (w1 - w0) / 1000;
      const c1 = cpuOf(pid);
      const p1 = pg?.cpu() ?? 0;
      const m1 = machineBusy();
      const g = process.cpuUsage(g0);
      const rss = memOf(pid).rssMB;
      // Wait for the acks of the measured samples (bounded).
      const drainBy = performance.now() + 5000;
      while (acc.lat.length < r.sent && performance.now() < drainBy) await sleep(20);
      await sleep(300); // the last batch's rows
      const rowsWritten = (await rows()) - rows0;
      const rowsS = (performance.now() - w0) / 1000;
      const lines = statLines.filter((l) => l.at > w0 + 1000 && l.at <= w1 + 1000);
      const diag = lines.length >= 2
        ? {
            batchesPerS: (lines[lines.length - 1]!.batches - lines[0]!.batches) / ((lines[lines.length - 1]!.at - lines[0]!.at) / 1000),
            maxBatchMs: Math.max(...lines.map((l) => l.maxBatchMs)),
            eventLoopP99Ms: Math.max(...lines.map((l) => l.eldP99Ms)),
            eventLoopMaxMs: Math.max(...lines.map((l) => l.eldMaxMs)),
            healthRoundMaxMs: Math.max(...lines.map((l) => l.healthMaxMs)),
          }
        : { batchesPerS: null, maxBatchMs: null, eventLoopP99Ms: null, eventLoopMaxMs: null, healthRoundMaxMs: null };
      const lat = acc.lat.slice().sort((a, b) => a - b);
      const unacked = r.sent - lat.length;
      // Unacked samples count as slower than any acked one.
      const full = unacked > 0 ? [...lat, ...Array<number>(unacked).fill(Infinity)] : lat;
      const step: Step = {
        rate,
        seconds: wallS,
        offered: r.offered,
        sent: r.sent,
        skipped: r.skipped,
        acked: lat.length,
        unacked,
        p50: pct(full, 50),
        p90: pct(full, 90),
        p99: pct(full, 99),
        max: full.length ? full[full.length - 1]! : NaN,
        sentPerS: r.sent / wallS,
        ackedPerS: lat.length / wallS,
        controllerCpuPct: ((c1 - c0) / wallS) * 100,
        dbCpuPct: db === 'postgres' ? ((p1 - p0) / wallS) * 100 : null,
        generatorCpuPct: ((g.user + g.system) / 1e6 / wallS) * 100,
        otherCpuPct: Math.max(0, ((m1 - m0 - (c1 - c0) - (p1 - p0) - (g.user + g.system) / 1e6) / wallS) * 100),
        controllerRssMB: rss,
        rowsWritten,
        rowsPerS: rowsWritten / rowsS,
        ...diag,
        pass: false,
      };
      step.pass = step.p99 < 50 && step.sent >= 0.97 * step.offered && step.unacked === 0;
      cfg.steps.push(step);
      if (step.pass) cfg.best = rate;
      const d = step.maxBatchMs === null ? '' : `, ${step.batchesPerS!.toFixed(1)} batches/s, longest ${step.maxBatchMs.toFixed(0)} ms, event loop p99 ${step.eventLoopP99Ms!.toFixed(0)} / max ${step.eventLoopMaxMs!.toFixed(0)} ms, health round max ${step.healthRoundMaxMs!.toFixed(0)} ms`;
      log(`  ${rate}/s: sent ${step.sentPerS.toFixed(0)}/s, acked ${step.ackedPerS.toFixed(0)}/s, p50 ${step.p50.toFixed(1)} ms, p99 ${step.p99.toFixed(1)} ms, max ${step.max.toFixed(0)} ms, controller CPU ${step.controllerCpuPct.toFixed(0)} %${step.dbCpuPct === null ? '' : `, postgres ${step.dbCpuPct.toFixed(0)} %`}, generator ${step.generatorCpuPct.toFixed(0)} %, other ${step.otherCpuPct.toFixed(0)} %, rows ${rowsWritten}${d} ${step.pass ? 'PASS' : 'fail'}`);
      // Let what is left drain before the next step (bounded).
      const settleBy = performance.now() + 15_000;
      while (peers.some((p) => p.inFlight > 0) && performance.now() < settleBy) await sleep(100);
      if (step.ackedPerS < 0.8 * rate || !(step.p99 < 5000)) {
        log('  saturated: no higher rates');
        break;
      }
    }
  } catch (err) {
    cfg.error = (err as Error).message;
    log(`  failed: ${cfg.error}`);
  } finally {
    for (const p of peers) p.ws?.terminate();
    await store?.close().catch(() => undefined);
    if (proc && proc.exitCode === null) {
      const exited = new Promise((r) => proc!.once('exit', r));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc!.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dataDir, { recursive: true, force: true });
  }
  return cfg;
}

async function main(): Promise<void> {
  const devices = Number(flag('--devices') ?? (QUICK ? 500 : 10_000));
  const rates = (flag('--rates') ?? (QUICK ? '1000,2000' : '1000,2000,5000,10000,15000,20000,30000,40000')).split(',').map(Number);
  const seconds = Number(flag('--seconds') ?? (QUICK ? 4 : 12));
  const warmup = Number(flag('--warmup') ?? (QUICK ? 1 : 3));
  const configSpec = flag('--configs') ?? (QUICK ? `sqlite:${SHIPPED_FLUSH}` : `sqlite:${SHIPPED_FLUSH},postgres:${SHIPPED_FLUSH},sqlite:250,postgres:250`);
  const wanted = configSpec.split(',').map((c) => {
    const [db, flush] = c.split(':');
    if (db !== 'sqlite' && db !== 'postgres' && db !== 'sqlite-tmpfs') throw new Error(`--configs: unknown database "${db}" (sqlite, sqlite-tmpfs, postgres)`);
    const flushMs = Number(flush ?? SHIPPED_FLUSH);
    if (!(flushMs >= 1 && flushMs <= 5000)) throw new Error('--configs: flush 1..5000 ms');
    return { db: db as DbKind, flushMs };
  });
  const pgFsync = (flag('--pg-fsync') ?? 'on') !== 'off';
  if (!(devices >= 1 && devices <= 20_000)) throw new Error('--devices takes 1 to 20000');
  if (rates.length > 12 || rates.some((r) => !(r > 0 && r <= 200_000))) throw new Error('--rates: at most 12 rates, each 1 to 200000');
  if (!(seconds >= 1 && seconds <= 60) || !(warmup >= 0 && warmup <= 30)) throw new Error('--seconds 1..60, --warmup 0..30');
  if (wanted.length > 8) throw new Error('--configs: at most 8');

  const started = Date.now();
  const configs: Config[] = [];
  const notes: string[] = [];
  const fsyncDisk = fsyncProbe(tmpdir());
  const loadBefore = readFileSync('/proc/loadavg', 'utf8').trim();
  let pg: Pg | null = null;
  let pgError: string | null = null;
  try {
    for (const w of wanted) {
      if (w.db === 'postgres' && !pg && !pgError) {
        try {
          pg = await startPg(pgFsync);
        } catch (err) {
          pgError = `PostgreSQL unavailable, not measured: ${(err as Error).message.split('\n')[0]}`;
          log(pgError);
          notes.push(pgError);
        }
      }
      if (w.db === 'postgres' && !pg) continue;
      log(`${w.db}, flush ${w.flushMs} ms, ${devices} devices:`);
      configs.push(await runConfig(w.db, w.flushMs, pg, { devices, rates, seconds, warmup }));
    }
  } finally {
    pg?.stop();
  }

  const { commit, dirty } = sourceState(root);
  const env = { cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version, commit, dirty, date: new Date(started).toISOString(), wallS: (Date.now() - started) / 1000, pgFsync, fsyncDisk, fsyncDiskAfter: fsyncProbe(tmpdir()), loadBefore, loadAfter: readFileSync('/proc/loadavg', 'utf8').trim() };
  const outDir = join(root, 'bench', 'results');
  mkdirSync(outDir, { recursive: true });
  let breakdown: Breakdown[] | null = null;
  if (argv.includes('--breakdown')) breakdown = await batchBreakdown(pgFsync);
  let result: Result = { env, params: { devices, rates, seconds, warmup, configs: configSpec }, notes, configs, breakdown, reruns: [] };
  if (argv.includes('--merge')) {
    // Replace these configurations in the last full result, keep the rest (and say so).
    const old = JSON.parse(readFileSync(join(outDir, 'ingest.json'), 'utf8')) as Result;
    const key = (c: Config) => `${c.db}:${c.flushMs}`;
    const fresh = new Map(configs.map((c) => [key(c), c]));
    result = {
      ...old,
      notes: [...old.notes, ...notes],
      configs: old.configs.map((c) => fresh.get(key(c)) ?? c).concat(configs.filter((c) => !old.configs.some((o) => key(o) === key(c)))),
      breakdown: breakdown ?? old.breakdown ?? null,
      reruns: [...(old.reruns ?? []), { configs: configSpec, env }],
    };
  }
  writeFileSync(join(outDir, 'ingest.json'), `${JSON.stringify(result, null, 2)}\n`);
  const md = render(result);
  writeFileSync(join(outDir, 'ingest.md'), md);
  process.stdout.write(md);
}

interface Result {
  env: Record<string, unknown>;
  params: { devices: number; rates: number[]; seconds: number; warmup: number; configs: string };
  notes: string[];
  configs: Config[];
  breakdown: Breakdown[] | null;
  reruns: { configs: string; env: Record<string, unknown> }[];
}

interface Breakdown {
  db: DbKind;
  devices: number;
  /** Median of 5, ms, each in its own transaction. */
  insertMs: number;
  touchMs: number;
  bothMs: number;
}

/**
 * Where an ingest batch's time goes: one batch of 2,500 samples from 2,500 devices (what 100,000
 * devices at 10 s send in 250 ms), written in the controller's own calls (metrics.insertMany,
 * health.touchMany) in this process, on a fresh database of each kind.
 */
async function batchBreakdown(pgFsync: boolean): Promise<Breakdown[]> {
  const out: Breakdown[] = [];
  const { createServices } = await import('../src/services/index.js');
  let pg: Pg | null = null;
  for (const db of ['sqlite', 'postgres'] as const) {
    const dir = mkdtempSync(join(tmpdir(), 'drover-bench-breakdown-'));
    let store: Store | null = null;
    try {
      if (db === 'postgres') pg = await startPg(pgFsync);
      const url = db === 'sqlite' ? join(dir, 'drover.db') : pg!.createDatabase('breakdown');
      store = await Store.open(url);
      const services = createServices(store, { sessionTtl: 3600, dataDir: dir });
      const n = 2500;
      const devices = await createSimDevices({ services }, n, { serialBase: 0x20000000 });
      const now = new Date().toISOString();
      await store.transaction(async (repos) => {
        for (const d of devices) await repos.health.upsert(d.node, { stream: 's', lastSeq: 0 }, now);
      });
      const m = JSON.parse(METRICS_POOL[0]!) as Metrics;
      const times = { insert: [] as number[], touch: [] as number[], both: [] as number[] };
      for (let rep = 1; rep <= 5; rep++) {
        const ts = new Date().toISOString();
        const samples = devices.map((d) => ({ deviceId: d.node, ts, seq: rep, m }));
        const touches = devices.map((d) => ({ deviceId: d.node, lastHeartbeat: ts, lastSeq: rep }));
        let t = performance.now();
        await store.transaction((repos) => repos.metrics.insertMany(samples));
        times.insert.push(performance.now() - t);
        t = performance.now();
        await store.transaction((repos) => repos.health.touchMany(touches, ts));
        times.touch.push(performance.now() - t);
        t = performance.now();
        await store.transaction(async (repos) => {
          await repos.metrics.insertMany(samples);
          await repos.health.touchMany(touches, ts);
        });
        times.both.push(performance.now() - t);
      }
      const med = (xs: number[]) => pct([...xs].sort((a, b) => a - b), 50);
      out.push({ db, devices: n, insertMs: med(times.insert), touchMs: med(times.touch), bothMs: med(times.both) });
      log(`breakdown ${db}: insert ${med(times.insert).toFixed(0)} ms, touch ${med(times.touch).toFixed(0)} ms, both ${med(times.both).toFixed(0)} ms for ${n} samples of ${n} devices`);
    } catch (err) {
      log(`breakdown ${db} failed: ${(err as Error).message}`);
    } finally {
      await store?.close().catch(() => undefined);
      pg?.stop();
      pg = null;
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return out;
}

function render(r: Result): string {
  const f = (x: number | null, d = 1) => (x === null ? '—' : Number.isFinite(x) ? x.toFixed(d) : x === Infinity ? '∞' : '—');
  const n = (x: number) => x.toLocaleString('en');
  const fs = r.env.fsyncDisk as { p50: number; p99: number; max: number };
  const fs2 = r.env.fsyncDiskAfter as { p50: number; p99: number; max: number };
  const L: string[] = [];
  L.push('# Heartbeat + metrics ingest over the agent WebSocket', '');
  L.push(`${r.env.cpus} × ${r.env.cpu}, Node ${r.env.node}, commit ${r.env.commit}${r.env.dirty ? ' (working tree with uncommitted changes)' : ''}, ${r.env.date}; wall ${f(r.env.wallS as number, 0)} s.`);
  L.push(`SQLite as shipped (WAL, synchronous=FULL), PostgreSQL ${r.env.pgFsync ? 'with fsync on (durable commits, its defaults)' : 'with fsync off'}; both on the same virtio disk, whose fsync of 4 KiB took p50 ${f(fs.p50, 2)} / p99 ${f(fs.p99)} / max ${f(fs.max)} ms at the start and ${f(fs2.p50, 2)} / ${f(fs2.p99)} / ${f(fs2.max)} ms at the end (200 probes each). Load average before: ${r.env.loadBefore}; after: ${r.env.loadAfter}. "sqlite-tmpfs" = the same SQLite on /dev/shm (fsync costs nothing): the controller without the disk.`, '');
  L.push('Target: 100,000 devices reporting every 10 s = **10,000 samples/s**. A step passes when the ack p99 < 50 ms, ≥ 97 % of the offer was sent and every measured sample was acked.', '');
  L.push('| database | ingest flush | highest rate with p99 < 50 ms | highest rate with p99 < 1 s | at 10,000/s: p50 / p99 ms | at 10,000/s: controller CPU (+ postgres) | highest rate acked in full (any latency) | hello → welcome |');
  L.push('|---|---|---|---|---|---|---|---|');
  for (const c of r.configs) {
    const at10 = c.steps.find((s) => s.rate === 10_000);
    const full = c.steps.filter((s) => s.unacked === 0 && s.sent >= 0.97 * s.offered && s.ackedPerS >= 0.97 * s.rate).map((s) => s.rate);
    const underS = c.steps.filter((s) => s.unacked === 0 && s.sent >= 0.97 * s.offered && s.p99 < 1000).map((s) => s.rate);
    const best = c.error ? `error: ${c.error}` : c.best === null ? '**none**' : `**${n(c.best)}/s**`;
    const cpu = at10 ? `${f(at10.controllerCpuPct, 0)} %${at10.dbCpuPct === null ? '' : ` (+ ${f(at10.dbCpuPct, 0)} %)`}` : '—';
    L.push(`| ${c.db} | ${c.flushMs} ms${c.flushMs === SHIPPED_FLUSH ? ' (default)' : ''} | ${best} | ${underS.length ? `${n(Math.max(...underS))}/s` : 'none'} | ${at10 ? `${f(at10.p50)} / ${f(at10.p99)}` : '—'} | ${cpu} | ${full.length ? `${n(Math.max(...full))}/s` : '—'} | ${c.connectS ? `${f(c.devices / c.connectS, 0)}/s` : '—'} |`);
  }
  L.push('');
  for (const x of r.notes) L.push(`- ${x}`);
  if (r.notes.length) L.push('');
  L.push('<!-- findings -->', '');
  for (const c of r.configs) {
    L.push(`## ${c.db}, flush ${c.flushMs} ms — ${c.controller}`, '');
    L.push(`${n(c.devices)} devices (one WebSocket and device token each): registered through the services in ${f(c.registerS)} s; connected (hello → welcome, 64 in flight) in ${f(c.connectS)} s = ${c.connectS ? f(c.devices / c.connectS, 0) : '—'} hellos/s; all alive ${c.allAliveS === null ? 'never (180 s)' : `${f(c.allAliveS)} s later`} (at ${n(r.params.rates[0] ?? 0)}/s). Controller RSS before the connections ${f(c.idleControllerRssMB, 0)} MB.`, '');
    if (c.error) L.push(`**Error:** ${c.error}`, '');
    const diag = c.steps.some((s) => s.maxBatchMs !== null);
    const pgc = c.steps.some((s) => s.dbCpuPct !== null);
    const head = `| offered/s | sent/s | acked/s | p50 ms | p90 ms | p99 ms | max ms | unacked | controller CPU %${pgc ? ' | postgres CPU %' : ''} | generator CPU % | other CPU % | controller RSS MB | rows/s${diag ? ' | batches/s | longest batch ms | event-loop delay p99 / max ms | health round max ms' : ''} | pass |`;
    L.push(head, `|${'---|'.repeat(head.split(' | ').length)}`);
    for (const s of c.steps) {
      L.push(`| ${n(s.rate)} | ${f(s.sentPerS, 0)} | ${f(s.ackedPerS, 0)} | ${f(s.p50)} | ${f(s.p90)} | ${f(s.p99)} | ${f(s.max, 0)} | ${s.unacked} | ${f(s.controllerCpuPct, 0)}${pgc ? ` | ${f(s.dbCpuPct, 0)}` : ''} | ${f(s.generatorCpuPct, 0)} | ${f(s.otherCpuPct, 0)} | ${f(s.controllerRssMB, 0)} | ${f(s.rowsPerS, 0)}${diag ? ` | ${f(s.batchesPerS)} | ${f(s.maxBatchMs, 0)} | ${f(s.eventLoopP99Ms, 0)} / ${f(s.eventLoopMaxMs, 0)} | ${f(s.healthRoundMaxMs, 0)}` : ''} | ${s.pass ? 'yes' : 'no'} |`);
    }
    L.push('');
  }
  if (r.breakdown?.length) {
    L.push('## Where a batch goes: 2,500 samples of 2,500 devices', '');
    L.push('What 100,000 devices at 10 s send in one 250 ms window, written with the controller\'s own repository calls in one process, each in its own transaction (median of 5, fresh database, same disk and fsync settings as above).', '');
    L.push('| database | metrics.insertMany (3 INSERTs of ≤ 1,000 rows) | health.touchMany (one UPDATE per device) | both, as writeBatch does |');
    L.push('|---|---|---|---|');
    for (const b of r.breakdown) L.push(`| ${b.db} | ${f(b.insertMs, 0)} ms | ${f(b.touchMs, 0)} ms (${f((b.touchMs * 1000) / b.devices, 0)} µs per device) | ${f(b.bothMs, 0)} ms |`);
    L.push('');
  }
  if (r.reruns?.length) {
    for (const x of r.reruns) L.push(`Re-run ${x.env.date as string} (commit ${x.env.commit as string}), replacing these rows: ${x.configs}; load average before ${x.env.loadBefore as string}.`);
    L.push('');
  }
  L.push('## Method', '');
  L.push(`- Controller in a child process, from the TypeScript source through tsx. Flush ${SHIPPED_FLUSH} ms (group commit: one transaction at a time, holding what arrived meanwhile) is \`drover serve\` as shipped. Other flush intervals use a minimal composition in bench/ingest.ts (\`--controller\`) of the same parts \`drover serve\` wires for agents (Store, createServices with \`agent.ingest.flushMs\`, buildApp, health.start), because \`drover serve\` has no setting for the interval; it also reports, once a second, the ingest batches, the longest batch (insert + health touch + rollups, commit included), the event-loop delay and the longest health round (columns empty for \`drover serve\`).`);
  L.push('- A fresh database per configuration; devices and boot tokens registered through the services before the controller starts.');
  L.push(`- Load: protocol peers in the benchmark process, not full Agent instances (an Agent also keeps a buffer file, timers and a JSON copy per sample: CPU taken from the controller on two shared cores; src/agent/simulator.ts runs real Agents, for tests). One WebSocket, device token and stream per device, \`hello\` then \`hb\` messages exactly as a live agent sends them, a realistic 4-core sample each. A token bucket ticking every 5 ms spreads the rate round-robin over the ${n(r.params.devices)} devices: at 1,000/s each device reports every 10 s as a real one does; at 10,000/s every second. What an ingest batch holds at 10,000/s (≈ 2,500 samples of 2,500 distinct devices per 250 ms) is what 100,000 devices at 10 s would send; the number of open connections is not (see below).`);
  L.push('- Latency: from ws.send() of a sample to the arrival of the first ack covering its seq (acks are cumulative), timed in the generator process; its own event-loop delay is included (its CPU is in the table).');
  L.push(`- Each step: ${r.params.warmup} s warm-up, ${r.params.seconds} s measured, then up to 5 s for the measured samples' acks; unacked samples count as infinitely slow. Stepping stops after a step that acks < 80 % of its offer or has p99 > 5 s. Controller and PostgreSQL CPU from /proc (PostgreSQL: postmaster + children, exited ones included); rows/s = metrics rows counted in the database from the start of the window to the end of the drain.`);
  L.push('- "other CPU %" = the machine\'s busy time during the window minus the controller, PostgreSQL and the generator: kernel work for loopback networking not charged to a process, and anything else running on the machine (a step with a high figure was disturbed).');
  L.push('- Generator, controller and PostgreSQL share the same 2 cores, and the disk is a shared virtual disk with slow, noisy fsyncs: figures are a lower bound for a controller on its own machine with an SSD.');
  L.push(`- Not covered: the memory and keepalive cost of 100,000 open connections (this run holds ${n(r.params.devices)}); TLS; a real network between devices and controller.`);
  L.push('');
  return L.join('\n');
}

async function controllerMode(): Promise<void> {
  const { createServices } = await import('../src/services/index.js');
  const { buildApp } = await import('../src/api/app.js');
  const store = await Store.open(flag('--database')!);
  const services = createServices(store, { sessionTtl: 3600, dataDir: flag('--data-dir')!, agent: { heartbeatMs: 10_000, ingest: { flushMs: Number(flag('--flush-ms')) } } });
  await services.auth.bootstrap(flag('--data-dir')!);
  const app = await buildApp({ services, logger: false, webRoot: null });
  await app.listen({ host: '127.0.0.1', port: Number(flag('--port')) });
  await services.health.start();
  // One line a second for the benchmark: ingest batches and how long they took, event-loop delay.
  const { monitorEventLoopDelay } = await import('node:perf_hooks');
  const eld = monitorEventLoopDelay({ resolution: 10 });
  eld.enable();
  const ingest = services.agents.ingest;
  // The health round (every device, once a second), timed by wrapping the instance's tick.
  const health = services.health as unknown as { tick: () => Promise<void> };
  const roundTick = health.tick.bind(services.health);
  let healthMaxMs = 0;
  health.tick = async () => {
    const t = performance.now();
    await roundTick();
    healthMaxMs = Math.max(healthMaxMs, performance.now() - t);
  };
  const tick = setInterval(() => {
    const line = { batches: ingest.stats.batches, stored: ingest.stats.stored, maxBatchMs: ingest.stats.maxBatchMs, depth: ingest.depth, eldP99Ms: eld.percentile(99) / 1e6, eldMaxMs: eld.max / 1e6, healthMaxMs };
    ingest.stats.maxBatchMs = 0;
    healthMaxMs = 0;
    eld.reset();
    process.stdout.write(`stats ${JSON.stringify(line)}\n`);
  }, 1000);
  tick.unref();
  const stop = async () => {
    clearInterval(tick);
    await services.health.stop();
    await app.close();
    await services.agents.close();
    await store.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.stdout.write('ready\n');
}


if (argv.includes('--controller')) await controllerMode();
else if (argv.includes('--render-only')) {
  // Re-renders bench/results/ingest.md from ingest.json (after a change to the report's layout).
  const dir = join(root, 'bench', 'results');
  writeFileSync(join(dir, 'ingest.md'), render(JSON.parse(readFileSync(join(dir, 'ingest.json'), 'utf8')) as Result));
} else await main();
