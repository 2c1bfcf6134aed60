// Heartbeat and metrics ingest: samples from every agent go into one queue that is written in
// batches by group commit: one transaction at a time, holding everything that arrived while the
// previous one was being written (and at most `flushMs` more), so under load 100,000 devices
// reporting every 10 s cost a few dozen transactions a second, not 10,000, while a quiet
// controller acks within milliseconds. A sample is acked to its
// agent only after the transaction that stores it commits: nothing acked is ever lost, and what
// is not acked is replayed by the agent. One-minute rollups are kept in memory while a minute
// is open and written once it closes; raw samples and rollups are pruned by age.
import type { Logger } from 'pino';
import type { Metrics, Sample } from '../agent/protocol.js';
import type { MetricsRollup, StoredSample } from '../store/repositories/metrics.repository.js';
import type { ServiceContext } from './context.js';

export interface IngestOptions {
  /** How long a sample waits for company before a write starts when none is running (group commit). */
  flushMs: number;
  /** Flush early when this many samples wait. */
  maxBatch: number;
  rawRetentionHours: number;
  rollupRetentionDays: number;
  logger?: Logger | undefined;
}

export const DEFAULT_INGEST: IngestOptions = { flushMs: 5, maxBatch: 5000, rawRetentionHours: 3, rollupRetentionDays: 30 };

interface Pending {
  deviceId: string;
  stream: string;
  samples: StoredSample[];
  onStored: (seq: number) => void;
}

interface RollupAcc {
  n: number;
  cpu: number;
  cpuMax: number;
  load1: number;
  memUsed: number;
  diskUsed: number;
  temps: number;
  tempN: number;
  tempMax: number | null;
  throttled: number;
  rx: number;
  tx: number;
}

const DAY_MS = 86_400_000;
const PRUNE_EVERY_MS = 60_000;
const PRUNE_SLICE_MS = 10_000;
/** Rollup rows per statement. */
const HOUSEKEEPING_SLICE = 500;
const yieldLoop = () => new Promise<void>((r) => setImmediate(r));

export class MetricsIngest {
  private queue: Pending[] = [];
  private queued = 0;
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  /** device → highest seq stored or queued, per stream; duplicates from replays are acked, not stored. */
  private readonly seen = new Map<string, { stream: string; seq: number }>();
  /** Open rollups by minute, then device: closing a minute touches only that minute's entries. */
  private readonly rollups = new Map<string, Map<string, RollupAcc>>();
  private lastPrune = 0;
  private housekeeping: Promise<void> | null = null;
  private closed = false;
  readonly stats = { stored: 0, duplicates: 0, batches: 0, lastBatchMs: 0, maxBatchMs: 0 };

  constructor(
    private readonly ctx: ServiceContext,
    private readonly opts: IngestOptions = DEFAULT_INGEST,
  ) {}

  /** The highest seq of this stream already stored (what a reconnecting agent is told). */
  setStored(deviceId: string, stream: string, seq: number): void {
    const cur = this.seen.get(deviceId);
    if (!cur || cur.stream !== stream) this.seen.set(deviceId, { stream, seq });
  }

  /**
   * Queues samples of one agent stream. `onStored(seq)` runs after the commit with the highest
   * seq now stored (immediately when everything was a duplicate).
   */
  push(deviceId: string, stream: string, items: Sample[], onStored: (seq: number) => void): void {
    if (this.closed) return;
    let seen = this.seen.get(deviceId);
    if (!seen || seen.stream !== stream) {
      seen = { stream, seq: 0 };
      this.seen.set(deviceId, seen);
    }
    const now = this.ctx.clock().getTime();
    const fresh: StoredSample[] = [];
    for (const it of items) {
      if (it.seq <= seen.seq) {
        this.stats.duplicates++;
        continue;
      }
      seen.seq = it.seq;
      // A Pi has no RTC: before NTP its clock may say 1970. Such a sample is stamped on arrival.
      const ts = Math.abs(it.ts - now) > DAY_MS ? now : it.ts;
      const sample = { deviceId, ts: new Date(ts).toISOString(), seq: it.seq, m: it.m };
      fresh.push(sample);
      this.accumulate(sample);
    }
    if (fresh.length === 0) {
      onStored(seen.seq);
      return;
    }
    this.queue.push({ deviceId, stream, samples: fresh, onStored });
    this.queued += fresh.length;
    for (const s of fresh) this.ctx.bus.publish({ kind: 'sample', deviceId, ts: s.ts, m: s.m });
    if (this.queued >= this.opts.maxBatch) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), this.opts.flushMs);
  }

  get depth(): number {
    return this.queued;
  }

  /** Writes what is queued; concurrent calls share one flush at a time. */
  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    while (this.flushing) await this.flushing;
    if (this.queue.length === 0 && !this.rollupsDue()) return;
    this.flushing = this.writeBatch().finally(() => {
      this.flushing = null;
    });
    await this.flushing;
    if (this.queue.length && !this.timer && !this.closed) this.timer = setTimeout(() => void this.flush(), this.opts.flushMs);
  }

  private async writeBatch(): Promise<void> {
    const batch = this.queue;
    this.queue = [];
    this.queued = 0;
    const started = performance.now();
    const samples = batch.flatMap((p) => p.samples);
    // One clock reading per batch, not one per device: every row of the batch is stamped alike.
    const now = this.ctx.clock().toISOString();
    const latest = new Map<string, { deviceId: string; lastHeartbeat: string; lastSeq: number }>();
    for (const p of batch) {
      const last = p.samples[p.samples.length - 1]!;
      latest.set(p.deviceId, { deviceId: p.deviceId, lastHeartbeat: now, lastSeq: last.seq });
    }
    try {
      await this.ctx.store.transaction(async (repos) => {
        if (samples.length) await repos.metrics.insertMany(samples);
        if (latest.size) await repos.health.touchMany([...latest.values()], now);
      });
    } catch (err) {
      // Not acked: the agents keep these samples and send them again after a reconnect.
      this.opts.logger?.error({ err, samples: samples.length }, 'metrics batch failed; samples stay with the agents');
      for (const p of batch) {
        const s = this.seen.get(p.deviceId);
        if (s && s.stream === p.stream) s.seq = Math.min(s.seq, p.samples[0]!.seq - 1);
      }
      return;
    }
    const ms = performance.now() - started;
    this.stats.stored += samples.length;
    this.stats.batches++;
    this.stats.lastBatchMs = ms;
    this.stats.maxBatchMs = Math.max(this.stats.maxBatchMs, ms);
    for (const p of batch) p.onStored(p.samples[p.samples.length - 1]!.seq);
    // Housekeeping after the acks, off the ack path, in slices that let the next batches through.
    if (!this.housekeeping && (this.rollupsDue() || this.pruneDue())) {
      this.housekeeping = this.housekeep().finally(() => {
        this.housekeeping = null;
      });
    }
  }

  /** Writes the rollups of minutes that ended, then prunes what is past retention. */
  private async housekeep(): Promise<void> {
    try {
      // A minute may end while this runs: its rollups are written before this returns.
      do {
        const rollups = this.closedRollups();
        for (let i = 0; i < rollups.length; i += HOUSEKEEPING_SLICE) {
          await this.ctx.store.metrics.upsertRollups(rollups.slice(i, i + HOUSEKEEPING_SLICE));
          await yieldLoop();
        }
        if (this.pruneDue()) await this.prune();
      } while (this.rollupsDue());
    } catch (err) {
      this.opts.logger?.error({ err }, 'metrics rollup or pruning failed; retried with the next batch');
    }
  }

  private accumulate(s: StoredSample): void {
    const minute = s.ts.slice(0, 16);
    let byDevice = this.rollups.get(minute);
    if (!byDevice) {
      byDevice = new Map();
      this.rollups.set(minute, byDevice);
    }
    let a = byDevice.get(s.deviceId);
    if (!a) {
      a = { n: 0, cpu: 0, cpuMax: 0, load1: 0, memUsed: 0, diskUsed: 0, temps: 0, tempN: 0, tempMax: null, throttled: 0, rx: 0, tx: 0 };
      byDevice.set(s.deviceId, a);
    }
    const m: Metrics = s.m;
    const cpu = m.cpu.length ? m.cpu.reduce((x, y) => x + y, 0) / m.cpu.length : 0;
    a.n++;
    a.cpu += cpu;
    a.cpuMax = Math.max(a.cpuMax, cpu);
    a.load1 += m.load[0];
    a.memUsed += m.mem[0] > 0 ? 1 - m.mem[1] / m.mem[0] : 0;
    a.diskUsed += m.disk[0] > 0 ? 1 - m.disk[1] / m.disk[0] : 0;
    if (m.temp !== undefined) {
      a.temps += m.temp;
      a.tempN++;
      a.tempMax = Math.max(a.tempMax ?? -Infinity, m.temp);
    }
    a.throttled |= m.throttled ?? 0;
    a.rx = m.net[0];
    a.tx = m.net[1];
  }

  private rollupsDue(): boolean {
    const minute = this.ctx.clock().toISOString().slice(0, 16);
    for (const open of this.rollups.keys()) if (open < minute) return true;
    return false;
  }

  /** Rollups of minutes that have ended (a minute's late samples after that upsert it again). */
  private closedRollups(current = this.ctx.clock().toISOString().slice(0, 16)): { deviceId: string; minute: string; n: number; data: MetricsRollup }[] {
    const out: { deviceId: string; minute: string; n: number; data: MetricsRollup }[] = [];
    const r = (x: number) => Math.round(x * 1000) / 1000;
    for (const [minute, byDevice] of this.rollups) {
      if (minute >= current) continue;
      this.rollups.delete(minute);
      for (const [deviceId, a] of byDevice) {
        out.push({
          deviceId,
          minute,
          n: a.n,
          data: {
            cpu: r(a.cpu / a.n), cpuMax: r(a.cpuMax), load1: r(a.load1 / a.n), memUsed: r(a.memUsed / a.n), diskUsed: r(a.diskUsed / a.n),
            temp: a.tempN ? r(a.temps / a.tempN) : null, tempMax: a.tempMax, throttled: a.throttled, rx: a.rx, tx: a.tx,
          },
        });
      }
    }
    return out;
  }

  private pruneDue(): boolean {
    return this.ctx.clock().getTime() - this.lastPrune >= PRUNE_EVERY_MS;
  }

  /**
   * Deletes raw samples past retention ten seconds of samples per statement (100,000 devices at
   * 10 s: 100,000 rows, a short stall each), oldest first, and rollups past theirs.
   */
  private async prune(): Promise<void> {
    const now = this.ctx.clock().getTime();
    this.lastPrune = now;
    const rawBefore = now - this.opts.rawRetentionHours * 3600_000;
    const roll = new Date(now - this.opts.rollupRetentionDays * DAY_MS).toISOString().slice(0, 16);
    const oldest = await this.ctx.store.metrics.oldest();
    let raw = 0;
    for (let t = oldest === null ? rawBefore : Date.parse(oldest); t < rawBefore && !this.closed; ) {
      t = Math.min(t + PRUNE_SLICE_MS, rawBefore);
      raw += (await this.ctx.store.metrics.prune(new Date(t).toISOString(), '0000')).raw;
      await yieldLoop();
    }
    const { rollups } = await this.ctx.store.metrics.prune('0000', roll);
    if (raw || rollups) this.opts.logger?.info({ raw, rollups }, 'metrics pruned');
  }

  /** Writes what is queued and waits for the housekeeping it started (tests, benchmarks). */
  async settled(): Promise<void> {
    await this.flush();
    await this.housekeeping;
  }

  /** Writes what is queued and every open rollup, then stops taking samples. */
  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    await this.housekeeping;
    // every open minute is written as it stands; a later sample of it upserts the row again
    const open = this.closedRollups('9999');
    if (open.length) await this.ctx.store.metrics.upsertRollups(open);
  }
}
