// Connected agents: one session per device (a new connection replaces the old one), the hello
// handshake (what the agent runs, where its stream stands), heartbeat ingest, gossip views, and
// sending jobs. Transport-free: the WebSocket route hands sessions in; the virtual fleet and
// tests can do the same.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { AgentMessage, ControllerMessage, Sample, ViewMember } from '../agent/protocol.js';
import { AGENT_PROTOCOL } from '../agent/protocol.js';
import { inTransaction, type ServiceContext } from './context.js';
import { MetricsIngest, type IngestOptions, DEFAULT_INGEST } from './metrics-ingest.js';

export interface AgentSession {
  readonly deviceId: string;
  readonly remote: string | null;
  send(msg: ControllerMessage): void;
  close(code: number, reason: string): void;
}

export interface AgentInfo {
  version: string;
  bootId: string;
  imageId: string | null;
  stream: string;
  gossip: { addr: string; port: number } | null;
  connectedAt: number;
}

export interface AgentEvents {
  hello: [deviceId: string, info: AgentInfo, bootChanged: boolean];
  heartbeat: [deviceId: string, at: number];
  view: [deviceId: string, members: ViewMember[]];
  gone: [deviceId: string];
  'job-message': [deviceId: string, msg: Extract<AgentMessage, { t: 'job-started' | 'job-output' | 'job-result' }>];
}

export interface AgentsOptions {
  heartbeatMs: number;
  ingest?: Partial<IngestOptions>;
  logger?: Logger | undefined;
  /** The controller's own gossip member, given to agents as a seed. */
  controllerGossip?: () => { node: string; addr: string; port: number } | null;
}

export class AgentsService extends EventEmitter<AgentEvents> {
  private readonly sessions = new Map<string, { session: AgentSession; info: AgentInfo | null }>();
  /** Devices whose agent advertises a gossip member, as an array for O(1) random seed picks. */
  private readonly gossipers: string[] = [];
  private readonly gossiperIndex = new Map<string, number>();
  readonly ingest: MetricsIngest;

  constructor(
    private readonly ctx: ServiceContext,
    private readonly opts: AgentsOptions,
  ) {
    super();
    this.ingest = new MetricsIngest(ctx, { ...DEFAULT_INGEST, ...opts.ingest, logger: opts.logger });
  }

  get heartbeatMs(): number {
    return this.opts.heartbeatMs;
  }

  isConnected(deviceId: string): boolean {
    return this.sessions.get(deviceId)?.info != null;
  }

  connected(): string[] {
    return [...this.sessions.entries()].filter(([, s]) => s.info).map(([id]) => id);
  }

  info(deviceId: string): AgentInfo | null {
    return this.sessions.get(deviceId)?.info ?? null;
  }

  /** Sends to the device's agent; false when it has none. */
  send(deviceId: string, msg: ControllerMessage): boolean {
    const s = this.sessions.get(deviceId);
    if (!s?.info) return false;
    s.session.send(msg);
    return true;
  }

  attach(session: AgentSession): void {
    const old = this.sessions.get(session.deviceId);
    if (old && old.session !== session) old.session.close(4000, 'replaced by a newer connection');
    this.sessions.set(session.deviceId, { session, info: null });
  }

  /** One message from an agent (already validated). */
  async receive(session: AgentSession, msg: AgentMessage): Promise<void> {
    const entry = this.sessions.get(session.deviceId);
    if (!entry || entry.session !== session) return;
    if (msg.t === 'hello') return this.hello(session, msg);
    if (!entry.info) {
      session.send({ t: 'error', code: 'DROVER_AGENT_PROTOCOL', message: 'Send hello first.' });
      return;
    }
    switch (msg.t) {
      case 'hb':
        this.emit('heartbeat', session.deviceId, this.ctx.clock().getTime());
        this.store(session, entry.info, [msg]);
        return;
      case 'batch':
        this.store(session, entry.info, msg.items);
        return;
      case 'view':
        this.emit('view', session.deviceId, msg.members);
        return;
      default:
        this.emit('job-message', session.deviceId, msg);
    }
  }

  private store(session: AgentSession, info: AgentInfo, items: Sample[]): void {
    this.ingest.push(session.deviceId, info.stream, items, (seq) => {
      if (this.sessions.get(session.deviceId)?.session === session) session.send({ t: 'ack', seq });
    });
  }

  private async hello(session: AgentSession, msg: Extract<AgentMessage, { t: 'hello' }>): Promise<void> {
    if (msg.v !== AGENT_PROTOCOL) {
      session.send({ t: 'error', code: 'DROVER_AGENT_PROTOCOL', message: `Protocol ${msg.v} is not spoken here (controller speaks ${AGENT_PROTOCOL}).` });
      session.close(4002, 'protocol version');
      return;
    }
    if (msg.node !== session.deviceId) {
      session.send({ t: 'error', code: 'DROVER_AUTH_FORBIDDEN', message: 'The hello names another device than the token.' });
      session.close(4003, 'wrong device');
      return;
    }
    const now = this.ctx.clock();
    const before = await this.ctx.store.health.get(session.deviceId);
    const bootChanged = before?.agent.bootId !== msg.bootId;
    const sameStream = before?.stream === msg.stream;
    const ack = sameStream ? before!.lastSeq : 0;
    const info: AgentInfo = { version: msg.version, bootId: msg.bootId, imageId: msg.imageId, stream: msg.stream, gossip: msg.gossip ?? null, connectedAt: now.getTime() };
    const health = await this.ctx.store.health.upsert(
      session.deviceId,
      {
        stream: msg.stream,
        lastSeq: ack,
        gossip: info.gossip,
        agent: { connected: true, version: msg.version, bootId: msg.bootId, imageId: msg.imageId, ...(bootChanged ? { bootedAt: now.toISOString() } : {}) },
      },
      now.toISOString(),
    );
    this.ctx.bus.publish({ kind: 'health', health });
    this.ingest.setStored(session.deviceId, msg.stream, ack);
    const entry = this.sessions.get(session.deviceId);
    if (!entry || entry.session !== session) return;
    entry.info = info;
    if (info.gossip) this.addGossiper(session.deviceId);
    else this.removeGossiper(session.deviceId);
    session.send({ t: 'welcome', heartbeatMs: this.opts.heartbeatMs, ack, seeds: this.seeds(session.deviceId) });
    this.opts.logger?.info({ device: session.deviceId, version: msg.version, bootChanged, ack, remote: session.remote }, 'agent connected');
    this.emit('hello', session.deviceId, info, bootChanged);
    // The boot's last phase (the dashboard's boot timeline ends with it); a reconnect within one boot is not one.
    if (bootChanged) {
      await inTransaction(this.ctx, (tx) => tx.emit({ type: 'agent.up', deviceId: session.deviceId, actor: 'agent', data: { version: msg.version, bootId: msg.bootId, imageId: msg.imageId } })).catch((err: unknown) =>
        this.opts.logger?.error({ err, device: session.deviceId }, 'could not record agent.up'));
    }
  }

  /**
   * Up to five gossip members for a joining agent: the controller's own member first, then
   * random agents. Picks by index, not by shuffling: after a controller restart every agent says
   * hello at once, and a pass over all sessions per hello would be quadratic.
   */
  private seeds(except: string): { node: string; addr: string; port: number }[] {
    const out: { node: string; addr: string; port: number }[] = [];
    const own = this.opts.controllerGossip?.();
    if (own) out.push(own);
    const picked = new Set<string>([except]);
    for (let tries = 0; out.length < 5 && tries < 20 && picked.size <= this.gossipers.length; tries++) {
      const id = this.gossipers[Math.floor(Math.random() * this.gossipers.length)]!;
      if (picked.has(id)) continue;
      picked.add(id);
      const gossip = this.sessions.get(id)?.info?.gossip;
      if (gossip) out.push({ node: id, ...gossip });
    }
    return out;
  }

  private addGossiper(id: string): void {
    if (this.gossiperIndex.has(id)) return;
    this.gossiperIndex.set(id, this.gossipers.length);
    this.gossipers.push(id);
  }

  private removeGossiper(id: string): void {
    const i = this.gossiperIndex.get(id);
    if (i === undefined) return;
    const last = this.gossipers.pop()!;
    this.gossiperIndex.delete(id);
    if (last !== id) {
      this.gossipers[i] = last;
      this.gossiperIndex.set(last, i);
    }
  }

  async detach(session: AgentSession): Promise<void> {
    const entry = this.sessions.get(session.deviceId);
    if (!entry || entry.session !== session) return;
    this.sessions.delete(session.deviceId);
    this.removeGossiper(session.deviceId);
    if (!entry.info) return;
    const health = await this.ctx.store.health.upsert(session.deviceId, { agent: { connected: false } }, this.ctx.clock().toISOString());
    this.ctx.bus.publish({ kind: 'health', health });
    this.opts.logger?.info({ device: session.deviceId }, 'agent disconnected');
    this.emit('gone', session.deviceId);
  }

  async close(): Promise<void> {
    for (const { session } of this.sessions.values()) session.close(1001, 'controller shutting down');
    this.sessions.clear();
    await this.ingest.close();
  }
}
