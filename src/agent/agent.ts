// The agent: samples metrics on a steady beat into the buffer (connected or not), keeps the
// controller connection up, runs jobs, and is the seam for gossip (the view it reports, the
// seeds it is given, the address it advertises). Each part lives in its own module; this file
// only wires them and owns the timers.
import { EventEmitter } from 'node:events';
import { SampleBuffer } from './buffer.js';
import { AgentClient, type AgentClientOptions, type ClientState, type HelloInfo, type Welcome } from './client.js';
import { DEFAULT_HEARTBEAT_MS, wsUrl } from './config.js';
import { JobRunner, type JobRunnerOptions, type PowerCommands } from './jobs.js';
import { silentLogger, type AgentLogger } from './log.js';
import { MetricsCollector } from './metrics.js';
import type { Metrics, Sample, ViewMember } from './protocol.js';
import { AGENT_VERSION } from './version.js';

export interface GossipAdvert {
  addr: string;
  port: number;
}

export type Seed = Welcome['seeds'][number];

/** Where samples and identity come from; MetricsCollector on a device, something synthetic in the virtual fleet. */
export interface MetricsSource {
  sample(): Promise<Metrics>;
  bootId(): Promise<string>;
  imageId(): Promise<string | null>;
}

export interface AgentOptions {
  /** Controller base URL (http://host:port); the agent dials its AGENT_WS_PATH. */
  server: string;
  /** Device id. */
  node: string;
  /** Device token (never logged). */
  token: string;
  /** Buffer file and stream id live here. */
  stateDir: string;
  /** Sampling interval until a welcome says otherwise (default 10 s). */
  heartbeatMs?: number;
  /** Root for /proc, /sys and etc/drover/image-id (default `/`); ignored when `metrics` is given. */
  procRoot?: string;
  /** Replaces the /proc collector. */
  metrics?: MetricsSource;
  /** Reboot and shutdown commands (default systemctl reboot / poweroff). */
  commands?: Partial<PowerCommands>;
  /** Other JobRunner knobs (power delay, kill grace, PATH). */
  jobs?: Omit<JobRunnerOptions, 'commands' | 'log'>;
  /** This device's gossip member address for the hello; a function is asked on every connect. */
  gossipAdvert?: GossipAdvert | (() => GossipAdvert | undefined);
  /** Called with welcome.seeds after every welcome (also the 'seeds' event). */
  onSeeds?: (seeds: Seed[]) => void;
  /** Reported in the hello (default: this build's version). */
  version?: string;
  /** Most unacked samples kept (default 8640 = 24 h at 10 s). */
  bufferCapacity?: number;
  /** Connection knobs (back-off, ping, timeouts); tests shorten them. */
  client?: Partial<Pick<AgentClientOptions, 'backoff' | 'pingMs' | 'handshakeTimeoutMs' | 'welcomeTimeoutMs' | 'ackTimeoutMs' | 'replayBatch' | 'random' | 'maxOutputBacklog'>>;
  /** Least time between two `view` messages (default 1 s). */
  viewIntervalMs?: number;
  /** Sample timestamps (default Date.now). */
  clock?: () => number;
  log?: AgentLogger;
}

export interface AgentEvents {
  /** welcome.seeds, after every welcome. */
  seeds: [seeds: Seed[]];
  welcome: [welcome: Welcome];
  disconnected: [info: { code: number; reason: string; status?: number; connectedMs: number }];
  /** A sample was taken and buffered. */
  sample: [sample: Sample];
}

const MAX_VIEW = 20_000; // the controller's limit per message
const MEMBER_STATES = new Set<string>(['alive', 'suspect', 'dead', 'left']);

function validMember(m: ViewMember): boolean {
  return (
    typeof m === 'object' && m !== null &&
    typeof m.node === 'string' && m.node.length > 0 && m.node.length <= 100 &&
    MEMBER_STATES.has(m.state) &&
    Number.isSafeInteger(m.incarnation) && m.incarnation >= 0 &&
    (m.phi === undefined || (typeof m.phi === 'number' && Number.isFinite(m.phi)))
  );
}

export class Agent extends EventEmitter<AgentEvents> {
  private readonly log: AgentLogger;
  private readonly metrics: MetricsSource;
  private readonly jobs: JobRunner;
  private buffer: SampleBuffer | null = null;
  private client: AgentClient | null = null;
  private running = false;
  private intervalMs: number;
  private sampleTimer: NodeJS.Timeout | null = null;
  private sampling: Promise<void> | null = null;
  private nextAt = 0;
  private advert: GossipAdvert | (() => GossipAdvert | undefined) | undefined;
  private identity: Promise<{ bootId: string; imageId: string | null }> | null = null;
  private view: ViewMember[] | null = null;
  private viewDirty = false;
  private viewSentAt = -Infinity;
  private viewTimer: NodeJS.Timeout | null = null;

  constructor(private readonly opts: AgentOptions) {
    super();
    this.log = opts.log ?? silentLogger;
    wsUrl(opts.server); // a bad URL fails here, not at the first dial
    this.intervalMs = opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    this.metrics = opts.metrics ?? new MetricsCollector({ procRoot: opts.procRoot ?? '/', log: this.log });
    this.jobs = new JobRunner({ ...opts.jobs, ...(opts.commands ? { commands: opts.commands } : {}), log: this.log });
    this.advert = opts.gossipAdvert;
    if (opts.onSeeds) this.on('seeds', opts.onSeeds);
  }

  /** Connected and welcomed by the controller. */
  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  /** A snapshot for status output and tests. */
  get status(): { connected: boolean; state: ClientState; heartbeatMs: number; stream: string | null; lastSeq: number; ackedSeq: number; unacked: number; dropped: number } {
    const b = this.buffer;
    return {
      connected: this.connected,
      state: this.client?.state ?? 'stopped',
      heartbeatMs: this.intervalMs,
      stream: b?.stream ?? null,
      lastSeq: b?.lastSeq ?? 0,
      ackedSeq: b?.ackedSeq ?? 0,
      unacked: b?.size ?? 0,
      dropped: b?.dropped ?? 0,
    };
  }

  /** Opens the buffer, starts sampling (first sample now) and dialling. Throws when the state dir is unusable. */
  async start(): Promise<void> {
    if (this.running) return;
    this.buffer = SampleBuffer.open({ dir: this.opts.stateDir, log: this.log, ...(this.opts.bufferCapacity !== undefined ? { capacity: this.opts.bufferCapacity } : {}) });
    this.running = true;
    const client = new AgentClient({
      ...this.opts.client,
      url: wsUrl(this.opts.server),
      token: this.opts.token,
      buffer: this.buffer,
      jobs: this.jobs,
      log: this.log,
      hello: () => this.hello(),
    });
    this.client = client;
    client.on('welcome', (w) => this.welcomed(w));
    client.on('disconnected', (info) => this.emit('disconnected', info));
    this.log.info({ node: this.opts.node, server: this.opts.server, version: this.version, stream: this.buffer.stream, heartbeatMs: this.intervalMs }, 'agent starting');
    client.start();
    this.nextAt = performance.now();
    this.scheduleSample(0);
  }

  /** Stops sampling, closes the socket cleanly, stops running jobs and writes the buffer out. */
  async stop(): Promise<void> {
    return this.halt(false);
  }

  /**
   * Stops as a crashed or powered-off device does: the socket is dropped without a close frame.
   * What was buffered stays in the state dir (the buffer file is written on every sample).
   */
  async crash(): Promise<void> {
    return this.halt(true);
  }

  private async halt(abrupt: boolean): Promise<void> {
    if (!this.running) return;
    this.running = false;
    if (this.sampleTimer) clearTimeout(this.sampleTimer);
    if (this.viewTimer) clearTimeout(this.viewTimer);
    this.sampleTimer = this.viewTimer = null;
    await this.sampling; // a sample being taken still lands in the buffer
    await this.client?.stop({ abrupt });
    this.jobs.cancelAll();
    this.buffer?.close();
    this.log.info({ unacked: this.buffer?.size ?? 0 }, 'agent stopped');
  }

  /**
   * The gossip layer's current view. Sent at most once per `viewIntervalMs` (the latest view
   * wins, intermediate ones are skipped) and again after every welcome.
   */
  setView(members: ViewMember[]): void {
    // The controller closes the connection on a malformed message, and the view is resent after
    // every hello: one bad member would cut the agent off for good. Bad members are left out,
    // and only the protocol's fields are copied (extra ones are refused too).
    this.view = members
      .filter(validMember)
      .slice(0, MAX_VIEW)
      .map((m) => ({ node: m.node, state: m.state, incarnation: m.incarnation, ...(m.phi !== undefined ? { phi: m.phi } : {}) }));
    this.viewDirty = true;
    this.flushView();
  }

  /** The advert the next hello carries; undefined when none is set or it is not a usable address. */
  getGossipAdvert(): GossipAdvert | undefined {
    const a = typeof this.advert === 'function' ? this.advert() : this.advert;
    return a && typeof a.addr === 'string' && a.addr.length > 0 && a.addr.length <= 64 && Number.isInteger(a.port) && a.port > 0 && a.port < 65536
      ? { addr: a.addr, port: a.port }
      : undefined;
  }

  /** Changes what the next hello advertises (the gossip member may bind after the agent starts). */
  setGossipAdvert(advert: GossipAdvert | (() => GossipAdvert | undefined) | undefined): void {
    this.advert = advert;
  }

  private get version(): string {
    return this.opts.version ?? AGENT_VERSION;
  }

  private async hello(): Promise<HelloInfo> {
    // Boot id and image are fixed for this process's life: read once. Lengths are kept within
    // what the controller accepts, whatever the metrics source returns.
    this.identity ??= Promise.all([this.metrics.bootId(), this.metrics.imageId()]).then(([bootId, imageId]) => ({
      bootId: bootId.slice(0, 64),
      imageId: imageId && imageId.length <= 100 ? imageId : null,
    }));
    const id = await this.identity;
    const gossip = this.getGossipAdvert();
    return { node: this.opts.node, version: this.version.slice(0, 40), ...id, ...(gossip ? { gossip } : {}) };
  }

  private welcomed(w: Welcome): void {
    const hb = this.client?.heartbeatMs;
    if (hb && hb !== this.intervalMs) {
      this.log.info({ heartbeatMs: hb }, 'heartbeat interval set by the controller');
      this.intervalMs = hb;
      // The new beat starts now rather than after the old, possibly much longer, interval.
      if (this.sampleTimer) {
        clearTimeout(this.sampleTimer);
        this.nextAt = performance.now() + hb;
        this.scheduleSample(hb);
      }
    }
    this.emit('welcome', w);
    try {
      this.emit('seeds', w.seeds);
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'seeds handler failed');
    }
    // Every new connection gets the current view at once, whatever was sent on the last one.
    if (this.view) {
      this.viewDirty = true;
      this.viewSentAt = -Infinity;
      this.flushView();
    }
  }

  private flushView(): void {
    if (!this.running || !this.viewDirty || !this.view || !this.client?.connected) return;
    const wait = this.viewSentAt + (this.opts.viewIntervalMs ?? 1000) - performance.now();
    if (wait > 0) {
      this.viewTimer ??= setTimeout(() => {
        this.viewTimer = null;
        this.flushView();
      }, wait);
      return;
    }
    if (this.client.send({ t: 'view', members: this.view })) {
      this.viewSentAt = performance.now();
      this.viewDirty = false;
    }
  }

  private scheduleSample(delayMs: number): void {
    if (!this.running) return;
    this.sampleTimer = setTimeout(() => {
      this.sampleTimer = null;
      this.sampling = this.takeSample().finally(() => {
        this.sampling = null;
      });
    }, Math.max(0, delayMs));
  }

  private async takeSample(): Promise<void> {
    try {
      const m = await this.metrics.sample();
      // Also while stopping: stop() waits for this sample, then closes the buffer.
      if (this.buffer) {
        const s = this.buffer.push((this.opts.clock ?? Date.now)(), m);
        this.client?.offer(s);
        this.emit('sample', s);
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'sampling failed');
    }
    // A fixed grid (not "interval after the last one finished"), so samples do not drift; a
    // host that slept or stalled skips the missed slots instead of bursting to catch up.
    const now = performance.now();
    this.nextAt += this.intervalMs;
    if (this.nextAt < now) this.nextAt = now + this.intervalMs;
    this.scheduleSample(this.nextAt - now);
  }
}
