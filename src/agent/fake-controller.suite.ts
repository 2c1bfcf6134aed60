// A controller double for the agent's tests: a real `ws` WebSocketServer on 127.0.0.1 that
// speaks protocol.ts the way the controller does (Bearer token on the upgrade, 401 with a JSON
// body when it is wrong, hello → welcome with the stored seq, cumulative acks, duplicates acked
// but not stored) and checks every agent message with the controller's own validator.
// (`.suite.ts`: kept out of the build and not run by itself.)
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { parseAgentMessage } from '../api/agent-messages.js';
import { AGENT_PROTOCOL, AGENT_WS_PATH, type AgentMessage, type ControllerMessage, type JobKind, type JobParams, type Sample } from './protocol.js';

export interface FakeControllerOptions {
  token: string;
  heartbeatMs?: number;
  seeds?: { node: string; addr: string; port: number }[];
  /** Acks go out this long after a batch/hb arrives (the real one commits every 250 ms). */
  ackDelayMs?: number;
  /** Answer upgrades with this status instead of accepting (e.g. 401). */
  refuseWith?: number | null;
  /** Port to listen on (0: any); reused by comeBack(). */
  port?: number;
}

type Hello = Extract<AgentMessage, { t: 'hello' }>;

export class FakeController {
  private server: Server | null = null;
  private readonly wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  port = 0;
  refuseWith: number | null;
  ackDelayMs: number;
  /** Stop acking (to test ack timeouts). */
  ackPaused = false;
  readonly sockets = new Set<WebSocket>();
  readonly messages: AgentMessage[] = [];
  readonly invalid: string[] = [];
  readonly hellos: Hello[] = [];
  /** Every sample stored, in arrival order (what the real ingest would insert). */
  readonly stored: (Sample & { stream: string })[] = [];
  duplicates = 0;
  upgrades = 0;
  refused = 0;
  /** Batches that arrived while an earlier batch of the same connection was not yet acked. */
  overlappingBatches = 0;
  readonly closes: { code: number; reason: string }[] = [];
  private readonly seen = new Map<string, number>(); // stream → highest stored seq
  private readonly listeners = new Set<() => void>();

  constructor(private readonly opts: FakeControllerOptions) {
    this.refuseWith = opts.refuseWith ?? null;
    this.ackDelayMs = opts.ackDelayMs ?? 0;
    this.port = opts.port ?? 0;
  }

  static async start(opts: FakeControllerOptions): Promise<FakeController> {
    const c = new FakeController(opts);
    await c.listen();
    return c;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Storable seqs per stream, for "nothing lost, nothing twice" checks. */
  seqs(stream?: string): number[] {
    return this.stored.filter((s) => stream === undefined || s.stream === stream).map((s) => s.seq);
  }

  of<T extends AgentMessage['t']>(t: T): Extract<AgentMessage, { t: T }>[] {
    return this.messages.filter((m): m is Extract<AgentMessage, { t: T }> => m.t === t);
  }

  async listen(): Promise<void> {
    const server = createServer((_req, res) => {
      res.statusCode = 404;
      res.end();
    });
    server.on('upgrade', (req, socket, head) => this.upgrade(req, socket, head));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Goes away like a crashed controller or a cut link: sockets dropped, port closed. */
  async goOffline(): Promise<void> {
    for (const ws of this.sockets) ws.terminate();
    const s = this.server;
    this.server = null;
    if (s) {
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  }

  /** Back on the same port (the agent's URL stays valid). */
  async comeBack(): Promise<void> {
    await this.listen();
  }

  /** Drops every agent connection but keeps listening. */
  dropConnections(): void {
    for (const ws of this.sockets) ws.terminate();
  }

  sendJob<K extends JobKind>(job: string, kind: K, params: JobParams[K], timeoutMs = 10_000): void {
    this.broadcast({ t: 'job', job, kind, params, timeoutMs });
  }

  broadcast(msg: ControllerMessage): void {
    for (const ws of this.sockets) ws.send(JSON.stringify(msg));
  }

  /** Resolves when `pred` holds (checked after every message and connection change, and every 10 ms for agent-side state). */
  waitFor(pred: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!pred()) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const poll = setInterval(check, 10);
      const cleanup = () => {
        clearTimeout(timer);
        clearInterval(poll);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
    });
  }

  async close(): Promise<void> {
    await this.goOffline();
    this.wss.close();
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.upgrades++;
    if ((req.url ?? '').split('?')[0] !== AGENT_WS_PATH) {
      socket.destroy();
      return;
    }
    const ok = req.headers.authorization === `Bearer ${this.opts.token}`;
    const status = this.refuseWith ?? (ok ? null : 401);
    if (status !== null) {
      this.refused++;
      const body = JSON.stringify({ statusCode: status, code: 'DROVER_AUTH_INVALID', error: 'Unauthorized', message: 'The token is not valid.' });
      socket.end(`HTTP/1.1 ${status} Unauthorized\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
      this.notify();
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.serve(ws));
  }

  private serve(ws: WebSocket): void {
    this.sockets.add(ws);
    let stream: string | null = null;
    let unackedBatch = false;
    ws.on('message', (data, isBinary) => {
      const text = data.toString();
      const msg = isBinary ? null : parseAgentMessage(text);
      if (!msg) {
        this.invalid.push(text.slice(0, 500));
        ws.close(1008, 'malformed message');
        return;
      }
      this.messages.push(msg);
      switch (msg.t) {
        case 'hello': {
          this.hellos.push(msg);
          stream = msg.stream;
          if (msg.v !== AGENT_PROTOCOL) ws.close(4002, 'protocol version');
          else ws.send(JSON.stringify({ t: 'welcome', heartbeatMs: this.opts.heartbeatMs ?? 10_000, ack: this.seen.get(msg.stream) ?? 0, seeds: this.opts.seeds ?? [] } satisfies ControllerMessage));
          break;
        }
        case 'hb':
        case 'batch': {
          if (!stream) break;
          if (msg.t === 'batch') {
            if (unackedBatch) this.overlappingBatches++;
            unackedBatch = true;
          }
          const items: Sample[] = msg.t === 'batch' ? msg.items : [{ seq: msg.seq, ts: msg.ts, m: msg.m }];
          let seen = this.seen.get(stream) ?? 0;
          for (const it of items) {
            if (it.seq <= seen) {
              this.duplicates++;
              continue;
            }
            seen = it.seq;
            this.stored.push({ ...it, stream });
          }
          this.seen.set(stream, seen);
          const isBatch = msg.t === 'batch';
          const ack = () => {
            if (this.ackPaused) return;
            if (isBatch) unackedBatch = false;
            if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ t: 'ack', seq: seen } satisfies ControllerMessage));
          };
          if (this.ackDelayMs > 0) setTimeout(ack, this.ackDelayMs).unref(); // a late ack must not hold the test process
          else ack();
          break;
        }
        default:
          break;
      }
      this.notify();
    });
    ws.on('close', (code, reason) => {
      this.sockets.delete(ws);
      this.closes.push({ code, reason: reason.toString() });
      this.notify();
    });
    ws.on('error', () => {});
    this.notify();
  }
}
