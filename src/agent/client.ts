// The agent's connection to the controller: one outbound WebSocket (NAT-friendly), re-dialled
// for ever with full-jitter exponential back-off. Per connection:
//
//   hello → welcome(ack) → replay what the buffer holds after `ack`, one batch at a time, each
//   acked before the next (so order holds and a stalled controller costs one batch, not the
//   lot) → live: every new sample goes out as an `hb` the moment it is taken.
//
// Samples always go through the buffer first and leave it only when acked, so whatever was in
// flight when a connection died is simply replayed after the next welcome. Jobs arriving on the
// socket run through JobRunner; their output and result go to whichever connection is current.
import { EventEmitter } from 'node:events';
import type { ClientRequest, IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import type { SampleBuffer } from './buffer.js';
import type { JobRunner } from './jobs.js';
import { silentLogger, type AgentLogger } from './log.js';
import { AGENT_PROTOCOL, type AgentMessage, type ControllerMessage, type Sample } from './protocol.js';

export interface BackoffOptions {
  /** First retry waits up to this long. */
  baseMs: number;
  /** No retry waits longer. */
  capMs: number;
  /** A connection that lasted this long starts the back-off over. */
  resetAfterMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, capMs: 30_000, resetAfterMs: 60_000 };

/**
 * Full jitter (uniform in [0, min(cap, base·2^attempt))): after a controller restart 100,000
 * agents spread their reconnects over the window instead of arriving in waves.
 */
export function backoffDelay(attempt: number, o: BackoffOptions, random: () => number = Math.random): number {
  const ceiling = Math.min(o.capMs, o.baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

/** What the hello says about this device; asked for anew on every connection. */
export interface HelloInfo {
  node: string;
  bootId: string;
  imageId: string | null;
  version: string;
  gossip?: { addr: string; port: number } | undefined;
}

export type Welcome = Extract<ControllerMessage, { t: 'welcome' }>;
type JobMessage = Extract<ControllerMessage, { t: 'job' }>;

export interface AgentClientOptions {
  /** ws(s)://host:port/agent/v1/ws (see config.wsUrl). */
  url: string;
  /** Device token, sent as `Authorization: Bearer`; never logged. */
  token: string;
  buffer: SampleBuffer;
  jobs: JobRunner;
  hello: () => HelloInfo | Promise<HelloInfo>;
  log?: AgentLogger;
  backoff?: Partial<BackoffOptions>;
  /** Keepalive ping interval; a socket that misses one pong is dropped at the next. */
  pingMs?: number;
  /** TCP connect + HTTP upgrade must finish within this. */
  handshakeTimeoutMs?: number;
  /** The welcome must follow the hello within this. */
  welcomeTimeoutMs?: number;
  /** A replayed batch not acked within this drops the connection (the next one replays it). */
  ackTimeoutMs?: number;
  /** Samples per replay batch (the controller takes up to 1000). */
  replayBatch?: number;
  /** Job output is dropped (the result still has the tail) while this much is queued unsent. */
  maxOutputBacklog?: number;
  /** Randomness for the back-off jitter (tests). */
  random?: () => number;
}

export type ClientState = 'stopped' | 'waiting' | 'connecting' | 'handshake' | 'replaying' | 'live';

export interface ClientEvents {
  /** The controller accepted the hello; samples flow from here on. */
  welcome: [welcome: Welcome];
  /** A connection ended (or never opened); `status` is the HTTP status of a refused upgrade. */
  disconnected: [info: { code: number; reason: string; status?: number; connectedMs: number }];
  /** The next dial is scheduled. */
  retry: [info: { attempt: number; delayMs: number }];
  'controller-error': [err: { code: string; message: string }];
}

interface Conn {
  ws: WebSocket;
  openedAt: number | null;
  welcomed: boolean;
  /** Highest seq sent on this connection (replayed or live). */
  sentUpTo: number;
  alive: boolean;
  status?: number;
  error?: string;
  ackWait: { seq: number; resolve: (ok: boolean) => void; timer: NodeJS.Timeout } | null;
  timers: NodeJS.Timeout[];
}

/** Close codes after which retrying soon is pointless: wrong protocol, wrong device, malformed. */
const HOPELESS_CLOSE = new Set([1008, 4002, 4003]);

export class AgentClient extends EventEmitter<ClientEvents> {
  private readonly log: AgentLogger;
  private readonly backoff: BackoffOptions;
  private conn: Conn | null = null;
  private _state: ClientState = 'stopped';
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private _heartbeatMs: number | null = null;
  /** Failed dials in a row, and when that was last logged: an outage is logged, not every retry. */
  private failStreak = 0;
  private failLoggedAt = -Infinity;
  private readonly activeJobs = new Set<string>();
  readonly stats = { connects: 0, welcomes: 0, refused: 0, batches: 0, replayed: 0, heartbeats: 0, outputDropped: 0 };

  constructor(private readonly opts: AgentClientOptions) {
    super();
    this.log = opts.log ?? silentLogger;
    this.backoff = { ...DEFAULT_BACKOFF, ...opts.backoff };
  }

  get state(): ClientState {
    return this._state;
  }

  /** Welcomed (replaying or live). */
  get connected(): boolean {
    return this._state === 'replaying' || this._state === 'live';
  }

  /** The heartbeat interval the controller asked for in its last welcome. */
  get heartbeatMs(): number | null {
    return this._heartbeatMs;
  }

  start(): void {
    if (this._state !== 'stopped') return;
    this.dial();
  }

  /** Closes the socket cleanly (1000), or with `abrupt` drops it as a crash would, and stops re-dialling. */
  async stop(opts: { abrupt?: boolean } = {}): Promise<void> {
    this._state = 'stopped';
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const c = this.conn;
    if (!c) return;
    const closed = new Promise<void>((resolve) => c.ws.once('close', () => resolve()));
    if (c.ws.readyState === WebSocket.OPEN && !opts.abrupt) c.ws.close(1000, 'agent stopping');
    else c.ws.terminate();
    const t = setTimeout(() => c.ws.terminate(), 2000);
    await closed;
    clearTimeout(t);
  }

  /** A sample was just buffered: live, it goes out now; otherwise the replay will carry it. */
  offer(sample: Sample): void {
    const c = this.conn;
    if (!c || this._state !== 'live') return;
    if (sample.seq === c.sentUpTo + 1) {
      c.sentUpTo = sample.seq;
      this.stats.heartbeats++;
      this.send({ t: 'hb', ...sample });
    } else if (sample.seq > c.sentUpTo) {
      void this.replay(c); // a gap (cannot happen in order, but never skip a sample)
    }
  }

  /** Sends on the current, welcomed connection; false when there is none. `cb` runs once the data is written. */
  send(msg: AgentMessage, cb?: (err?: Error) => void): boolean {
    const c = this.conn;
    if (!c || !c.welcomed || c.ws.readyState !== WebSocket.OPEN) return false;
    c.ws.send(JSON.stringify(msg), cb);
    return true;
  }

  // ── connection lifecycle ──

  private dial(): void {
    this.retryTimer = null;
    this._state = 'connecting';
    this.stats.connects++;
    const ws = new WebSocket(this.opts.url, {
      headers: { authorization: `Bearer ${this.opts.token}` },
      handshakeTimeout: this.opts.handshakeTimeoutMs ?? 10_000,
      perMessageDeflate: false, // the controller turns it off too; zlib contexts cost memory
      maxPayload: 4 * 1024 * 1024,
      followRedirects: false, // the token must not follow a redirect to another host
    });
    const c: Conn = { ws, openedAt: null, welcomed: false, sentUpTo: 0, alive: true, ackWait: null, timers: [] };
    this.conn = c;

    ws.on('unexpected-response', (_req: ClientRequest, res: IncomingMessage) => this.refused(c, res));
    ws.on('open', () => void this.opened(c));
    ws.on('message', (data, isBinary) => {
      c.alive = true;
      if (isBinary) return;
      try {
        this.handle(c, data.toString());
      } catch (err) {
        // One odd message must not take the agent down; the connection carries on.
        this.log.error({ err: (err as Error).message }, 'controller message handling failed');
      }
    });
    ws.on('pong', () => {
      c.alive = true;
    });
    ws.on('error', (err) => {
      c.error = err.message; // 'close' follows and decides what happens next
    });
    ws.on('close', (code, reason) => this.closed(c, code, reason.toString()));
  }

  /** The upgrade was answered with a plain HTTP response: 401/403 means this token will not do. */
  private refused(c: Conn, res: IncomingMessage): void {
    c.status = res.statusCode ?? 0;
    this.stats.refused++;
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      if (body.length < 4096) body += chunk;
    });
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      clearTimeout(t);
      let detail: { code?: unknown; message?: unknown } = {};
      try {
        const v: unknown = JSON.parse(body);
        if (typeof v === 'object' && v !== null) detail = v;
      } catch {
        /* not the controller's JSON */
      }
      const fields = { status: c.status, code: typeof detail.code === 'string' ? detail.code : undefined, message: typeof detail.message === 'string' ? detail.message.slice(0, 300) : undefined };
      if (this.shouldLogFailure()) {
        if (c.status === 401 || c.status === 403) {
          this.log.error({ ...fields, attempts: this.failStreak + 1 }, 'the controller refused the device token; check /etc/drover/agent.json (re-image the device to get a fresh token). Retrying slowly');
        } else this.log.warn({ ...fields, attempts: this.failStreak + 1 }, 'the controller refused the agent connection');
      }
      c.ws.terminate();
    };
    const t = setTimeout(end, 2000);
    res.once('end', end);
    res.once('error', end);
  }

  private async opened(c: Conn): Promise<void> {
    c.openedAt = performance.now();
    this._state = 'handshake';
    const pingMs = this.opts.pingMs ?? 30_000;
    c.timers.push(
      setInterval(() => {
        // Two silent intervals (no pong, no message) mean the peer or the path is gone, even
        // without a FIN: a power-cut switch never sends one.
        if (!c.alive) {
          this.log.warn({ pingMs }, 'controller stopped answering pings; reconnecting');
          c.ws.terminate();
          return;
        }
        c.alive = false;
        c.ws.ping();
      }, pingMs),
    );
    let info: HelloInfo;
    try {
      info = await this.opts.hello();
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'cannot build the hello');
      c.ws.terminate();
      return;
    }
    if (this.conn !== c || c.ws.readyState !== WebSocket.OPEN) return;
    const hello: AgentMessage = {
      t: 'hello',
      v: AGENT_PROTOCOL,
      node: info.node,
      bootId: info.bootId,
      imageId: info.imageId,
      version: info.version,
      stream: this.opts.buffer.stream,
      ...(info.gossip ? { gossip: info.gossip } : {}),
    };
    c.ws.send(JSON.stringify(hello));
    c.timers.push(
      setTimeout(() => {
        if (!c.welcomed) {
          this.log.warn({ timeoutMs: this.opts.welcomeTimeoutMs ?? 15_000 }, 'no welcome after hello; reconnecting');
          c.ws.terminate();
        }
      }, this.opts.welcomeTimeoutMs ?? 15_000),
    );
  }

  private closed(c: Conn, code: number, reason: string): void {
    for (const t of c.timers) clearTimeout(t);
    if (c.ackWait) {
      clearTimeout(c.ackWait.timer);
      c.ackWait.resolve(false);
      c.ackWait = null;
    }
    if (this.conn !== c) return;
    this.conn = null;
    const connectedMs = c.openedAt === null ? 0 : performance.now() - c.openedAt;
    this.emit('disconnected', { code, reason, connectedMs, ...(c.status !== undefined ? { status: c.status } : {}) });
    if (this._state === 'stopped') return;
    if (c.welcomed) {
      this.failStreak = 0;
      this.failLoggedAt = -Infinity;
      this.log.info({ code, reason: reason || undefined, connectedMs: Math.round(connectedMs), unacked: this.opts.buffer.size }, 'disconnected from the controller');
    } else {
      if (c.status === undefined && this.shouldLogFailure()) this.log.warn({ err: c.error, code, attempts: this.failStreak + 1, unacked: this.opts.buffer.size }, 'cannot reach the controller; retrying');
      this.failStreak++;
    }

    if (connectedMs >= this.backoff.resetAfterMs) this.attempt = 0;
    let delayMs: number;
    if (c.status === 401 || c.status === 403 || HOPELESS_CLOSE.has(code)) {
      // Retrying fast will not fix a token or a protocol: wait about the cap (jittered, so a
      // fleet whose tokens were revoked at once does not come back in step).
      delayMs = Math.floor(this.backoff.capMs * (0.5 + 0.5 * (this.opts.random ?? Math.random)()));
      this.attempt = Math.max(this.attempt, 1);
    } else {
      delayMs = backoffDelay(this.attempt, this.backoff, this.opts.random);
      this.attempt++;
    }
    this._state = 'waiting';
    this.emit('retry', { attempt: this.attempt, delayMs });
    this.retryTimer = setTimeout(() => this.dial(), delayMs);
  }

  /** The first failure of a streak, then one line every five minutes. */
  private shouldLogFailure(): boolean {
    const now = performance.now();
    if (this.failStreak > 0 && now - this.failLoggedAt < 300_000) return false;
    this.failLoggedAt = now;
    return true;
  }

  // ── messages ──

  private handle(c: Conn, text: string): void {
    let msg: ControllerMessage;
    try {
      msg = JSON.parse(text) as ControllerMessage;
    } catch {
      this.log.warn({ bytes: text.length }, 'ignoring a controller message that is not JSON');
      return;
    }
    if (typeof msg !== 'object' || msg === null) return;
    switch (msg.t) {
      case 'welcome':
        return this.welcomed(c, msg);
      case 'ack':
        if (Number.isSafeInteger(msg.seq)) {
          this.opts.buffer.ack(msg.seq);
          if (c.ackWait && this.opts.buffer.ackedSeq >= c.ackWait.seq) {
            clearTimeout(c.ackWait.timer);
            c.ackWait.resolve(true);
            c.ackWait = null;
          }
        }
        return;
      case 'job':
        if (!c.welcomed) return;
        void this.runJob(msg);
        return;
      case 'error': {
        const err = { code: String(msg.code), message: String(msg.message).slice(0, 500) };
        this.log.warn(err, 'the controller reported an error');
        this.emit('controller-error', err);
        return;
      }
      default:
        // Unknown types are ignored: a newer controller may speak more than this agent knows.
        this.log.debug({ t: (msg as { t?: unknown }).t }, 'ignoring an unknown controller message');
    }
  }

  private welcomed(c: Conn, w: Welcome): void {
    if (c.welcomed) return;
    const ack = Number.isSafeInteger(w.ack) && w.ack >= 0 ? w.ack : 0;
    c.welcomed = true;
    if (typeof w.heartbeatMs === 'number' && Number.isFinite(w.heartbeatMs) && w.heartbeatMs > 0) this._heartbeatMs = Math.min(Math.max(w.heartbeatMs, 100), 3_600_000);
    if (ack > 0) this.opts.buffer.ack(ack);
    // Replay from what the controller has, not what this buffer believes was acked: after a
    // controller-side restore the two differ and the controller's word decides.
    c.sentUpTo = ack;
    this.stats.welcomes++;
    this._state = 'replaying';
    this.log.info({ ack, unacked: this.opts.buffer.size, heartbeatMs: this._heartbeatMs }, 'connected to the controller');
    this.emit('welcome', { ...w, ack, seeds: Array.isArray(w.seeds) ? w.seeds : [] });
    void this.replay(c);
  }

  /** Sends the buffered samples after `sentUpTo` in acked batches, then goes live. */
  private async replay(c: Conn): Promise<void> {
    if (this.conn !== c || !c.welcomed) return;
    if (this._state === 'live') this._state = 'replaying';
    else if (c.ackWait) return; // a replay is already running on this connection
    const batch = Math.min(Math.max(this.opts.replayBatch ?? 500, 1), 1000);
    for (;;) {
      if (this.conn !== c || c.ws.readyState !== WebSocket.OPEN) return;
      const items = this.opts.buffer.pending(c.sentUpTo, batch);
      if (items.length === 0) {
        // Samples taken while the last batch was in flight were picked up above; none left, so
        // from here each new sample goes out as it is taken (offer), still in seq order.
        this._state = 'live';
        return;
      }
      const last = items[items.length - 1]!.seq;
      c.sentUpTo = last;
      this.stats.batches++;
      this.stats.replayed += items.length;
      c.ws.send(JSON.stringify({ t: 'batch', items } satisfies AgentMessage));
      const ok = await this.waitAck(c, last);
      if (!ok) {
        if (this.conn === c && c.ws.readyState === WebSocket.OPEN) {
          this.log.warn({ seq: last, timeoutMs: this.opts.ackTimeoutMs ?? 30_000 }, 'replayed batch not acked; reconnecting to replay it again');
          c.ws.terminate();
        }
        return;
      }
    }
  }

  private waitAck(c: Conn, seq: number): Promise<boolean> {
    if (this.opts.buffer.ackedSeq >= seq) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        c.ackWait = null;
        resolve(false);
      }, this.opts.ackTimeoutMs ?? 30_000);
      c.ackWait = { seq, resolve, timer };
    });
  }

  // ── jobs ──

  private async runJob(msg: JobMessage): Promise<void> {
    const job = typeof msg.job === 'string' ? msg.job.slice(0, 100) : '';
    if (!job || this.activeJobs.has(job)) return; // a repeated job id is the same job, run once
    this.activeJobs.add(job);
    this.log.info({ job, kind: msg.kind }, 'job started');
    this.send({ t: 'job-started', job });
    let dropping = false;
    const outcome = await this.opts.jobs.run({ job, kind: String(msg.kind), params: msg.params, timeoutMs: Number(msg.timeoutMs) }, (stream, data) => {
      const ws = this.conn?.ws;
      // A slow link must not pile output up in memory: past the backlog, output is dropped
      // (the result still carries the last 64 KiB).
      if (ws && ws.bufferedAmount > (this.opts.maxOutputBacklog ?? 1024 * 1024)) {
        this.stats.outputDropped += data.length;
        if (!dropping) this.log.warn({ job }, 'job output dropped: the link is slower than the job writes');
        dropping = true;
        return;
      }
      dropping = false;
      this.send({ t: 'job-output', job, stream, data });
    });
    this.activeJobs.delete(job);
    const r = outcome.result;
    this.log.info({ job, kind: msg.kind, ok: r.ok, exitCode: r.exitCode, durationMs: r.durationMs, err: r.error }, 'job finished');
    // Within the controller's limits, or the whole connection is closed as malformed.
    const result: AgentMessage = {
      t: 'job-result',
      job,
      ...r,
      ...(r.error !== undefined ? { error: r.error.slice(0, 4096) } : {}),
      ...(r.output !== undefined ? { output: r.output.slice(-128 * 1024) } : {}),
    };
    const after = outcome.afterReport;
    let ran = false;
    const runAfter = () => {
      if (ran || !after) return;
      ran = true;
      after();
    };
    // Power jobs act only once their result is written, so the controller sees the ack first.
    if (!this.send(result, runAfter)) runAfter();
  }
}
