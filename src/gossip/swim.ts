// A SWIM gossip member with the Lifeguard extensions, modelled on HashiCorp memberlist.
//
// Failure detection: every probe interval the member pings the next member of a shuffled list
// (randomized round-robin: each member is probed once per round, and a failed member is found
// within N intervals at worst). No ack within the probe timeout → it asks `indirectChecks`
// others to ping the target for it (ping-req), so one bad link does not condemn a member. No ack
// by the end of the interval → the target is *suspected*. A suspicion is gossiped; if the
// suspect hears it, it refutes by bumping its incarnation number and gossiping "alive". If not
// refuted in time, the suspicion becomes *dead*.
//
// Dissemination: membership updates ride piggy-back on every packet we send (pings, acks, …) and
// on dedicated gossip packets to `gossipNodes` random members every gossip interval, each update
// at most retransmitMult·ceil(log10(N+1)) times. A periodic push-pull (full state exchange with
// one random member over the reliable channel) repairs whatever gossip missed, e.g. after a
// partition heals. Joining is a push-pull with a seed.
//
// Lifeguard (on by default): (a) a local health score grows when our own probes fail without
// the nacks our helpers should send, or when we must refute; it stretches our probe interval and
// timeout so a slow member stops accusing healthy ones; (b) suspicion timeouts start at
// suspicionMaxTimeoutMult × the minimum and shrink as independent members confirm the suspicion;
// (c) ping-req helpers send a nack when the target stays silent, so we can tell "target dead"
// from "my own network is bad", and pings to a suspect carry the suspicion (buddy system).
// lifeguard:false gives plain SWIM: fixed minimum timeout, no health score, no nacks, no buddy.
//
// Every member also keeps a phi-accrual detector per peer over the arrival times of anything it
// hears directly from that peer; phi(name) exposes it (it does not drive SWIM's decisions).
//
// All time goes through the Scheduler and all I/O through the Transport, and the code is
// callback-style, so the same class runs on UDP with real timers and in virtual time.
import { EventEmitter } from 'node:events';
import os from 'node:os';
import type { ViewMember } from '../agent/protocol.js';
import { Awareness } from './awareness.js';
import { BroadcastQueue } from './broadcast-queue.js';
import {
  decodePacket,
  decodePushPull,
  encodeMessage,
  encodePacket,
  encodePushPull,
  packetHeaderSize,
  PART_OVERHEAD,
  validateMeta,
  type GossipMessage,
  type MemberState,
  type Meta,
  type NodeAddress,
  type PushNodeState,
} from './codec.js';
import { pushPullScale, resolveTimings, type GossipLogger, type GossipMemberOptions, type ResolvedTimings } from './config.js';
import { PhiAccrualDetector, type PhiOptions } from './phi.js';
import type { Random } from './rng.js';
import { RealScheduler, type Scheduler, type Timer } from './scheduler.js';
import { Suspicion, suspicionTimeout } from './suspicion.js';
import type { Endpoint, Transport } from './transport.js';
import { UdpTransport } from './udp-transport.js';

export type { MemberState, Meta } from './codec.js';

/** One member as this member sees it: protocol.ts's ViewMember plus address and meta. */
export interface GossipMemberInfo {
  name: string;
  addr: string;
  port: number;
  state: MemberState;
  incarnation: number;
  meta: Meta;
  /** Our phi for this member's traffic; absent for ourselves and before we heard from it. */
  phi?: number;
}

export interface GossipStats {
  packetsSent: number;
  packetsReceived: number;
  bytesSent: number;
  bytesReceived: number;
  /** Protocol messages (a packet carries one or more). */
  messagesSent: number;
  messagesReceived: number;
  pushPullsSent: number;
  pushPullsReceived: number;
  streamBytesSent: number;
  streamBytesReceived: number;
  /** Datagrams or push-pull payloads that failed validation (dropped). */
  malformed: number;
  /** Pings addressed to another member name (someone has a stale address for us). */
  misdirected: number;
  /** Alive messages for a known name at a different address, ignored. */
  conflicts: number;
  /** Times we refuted a suspicion or death notice about ourselves. */
  refutes: number;
  /** Stale accusations we answered with the newer alive message. */
  corrections: number;
  /** Probes that ended without an ack. */
  probesFailed: number;
  probesSent: number;
  /** Lifeguard local health score (0 = healthy; the multiplier is score + 1). */
  health: number;
  /** Updates waiting to be piggy-backed. */
  queued: number;
}

type Counters = Omit<GossipStats, 'health' | 'queued'>;

export interface GossipEvents {
  change: [member: GossipMemberInfo];
}

interface NodeRec {
  name: string;
  addr: string;
  port: number;
  meta: Meta;
  incarnation: number;
  state: MemberState;
  /** Scheduler time of the last state change. */
  stateChange: number;
  suspicion: Suspicion | null;
  detector: PhiAccrualDetector | null;
  /** When we last corrected stale news this member passed on (rate limit). */
  lastCorrection: number;
}

interface Probe {
  kind: 'probe';
  seq: number;
  target: NodeRec;
  incarnation: number;
  /** Scheduler time by which an ack must arrive (the next probe tick). */
  deadline: number;
  nacks: number;
  expectedNacks: number;
  timer: Timer | null;
}

interface Relay {
  kind: 'relay';
  origSeq: number;
  origin: Endpoint;
  nack: boolean;
  timer: Timer | null;
}

const UNSPECIFIED = new Set(['0.0.0.0', '::', '']);

function firstNonInternalIPv4(): string {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

/**
 * phi overflows to Infinity after a silence of many standard deviations; views travel as JSON,
 * where Infinity turns into null, so reported values stop at a (still absurdly certain) 1000.
 */
const PHI_CAP = 1000;
function finitePhi(phi: number): number {
  return phi < PHI_CAP ? phi : PHI_CAP;
}

function metaEqual(a: Meta, b: Meta): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (a[k] !== b[k]) return false;
  return true;
}

/** protocol.ts's ViewMember list (what an agent reports to the controller). */
export function toView(members: readonly GossipMemberInfo[]): ViewMember[] {
  return members.map((m) => (m.phi === undefined ? { node: m.name, state: m.state, incarnation: m.incarnation } : { node: m.name, state: m.state, incarnation: m.incarnation, phi: m.phi }));
}

export class GossipMember extends EventEmitter<GossipEvents> {
  readonly name: string;
  private readonly cfg: ResolvedTimings;
  private readonly lifeguard: boolean;
  private readonly sched: Scheduler;
  private readonly transport: Transport;
  private readonly random: Random;
  private readonly logger: GossipLogger | undefined;
  private readonly phiOptions: PhiOptions | false;
  private readonly opts: GossipMemberOptions;
  private readonly awareness: Awareness;
  private readonly broadcasts: BroadcastQueue;
  private readonly headerBytes: number;

  private self: NodeRec | null = null;
  private selfAddress: NodeAddress | null = null;
  /** Probe order (shuffled at each wrap); includes ourselves and not-yet-reaped dead members. */
  private nodes: NodeRec[] = [];
  private readonly byName = new Map<string, NodeRec>();
  private probeIndex = 0;
  private seq = 0;
  private readonly handlers = new Map<number, Probe | Relay>();
  private probe: Probe | null = null;

  private running = false;
  private started = false;
  private leaving = false;
  private leaveDone: (() => void) | null = null;
  private probeTimer: Timer | null = null;
  private gossipTimer: Timer | null = null;
  private gossipPhase = 0;
  private pushPullTimer: Timer | null = null;
  private reconnectTimer: Timer | null = null;
  /** Reaped dead members we still try to reach now and then (name → address, time of death). */
  private readonly failed = new Map<string, { addr: string; port: number; since: number }>();

  private readonly counters: Counters = {
    packetsSent: 0,
    packetsReceived: 0,
    bytesSent: 0,
    bytesReceived: 0,
    messagesSent: 0,
    messagesReceived: 0,
    pushPullsSent: 0,
    pushPullsReceived: 0,
    streamBytesSent: 0,
    streamBytesReceived: 0,
    malformed: 0,
    misdirected: 0,
    conflicts: 0,
    refutes: 0,
    corrections: 0,
    probesFailed: 0,
    probesSent: 0,
  };

  constructor(opts: GossipMemberOptions) {
    super();
    if (!opts.name || Buffer.byteLength(opts.name) > 255) throw new RangeError('gossip member name must be 1..255 bytes');
    validateMeta(opts.meta ?? {});
    this.opts = opts;
    this.name = opts.name;
    this.cfg = resolveTimings(opts);
    this.lifeguard = opts.lifeguard ?? true;
    this.sched = opts.scheduler ?? new RealScheduler();
    this.transport = opts.transport ?? new UdpTransport({ bindAddr: opts.bindAddr, bindPort: opts.bindPort, streamTimeoutMs: this.cfg.pushPullTimeoutMs });
    this.random = opts.random ?? Math.random;
    this.logger = opts.logger;
    this.phiOptions = opts.phi ?? {};
    this.awareness = new Awareness(this.cfg.awarenessMaxMultiplier);
    this.broadcasts = new BroadcastQueue(this.cfg.retransmitMult, () => this.nodes.length);
    this.headerBytes = packetHeaderSize(this.name);
  }

  // ---------------------------------------------------------------- lifecycle

  /** Binds the transport and starts probing, gossiping and syncing. */
  async start(): Promise<void> {
    if (this.started) throw new Error('gossip member already started');
    this.started = true;
    const bound = await this.transport.start({
      packet: (data, from) => this.onPacket(data, from),
      pushPull: (data, from) => this.onPushPull(data, from),
    });
    const addr = this.opts.advertiseAddr ?? (UNSPECIFIED.has(bound.addr) ? firstNonInternalIPv4() : bound.addr);
    const port = this.opts.advertisePort ?? bound.port;
    const now = this.sched.now();
    const self: NodeRec = { name: this.name, addr, port, meta: { ...(this.opts.meta ?? {}) }, incarnation: 1, state: 'alive', stateChange: now, suspicion: null, detector: null, lastCorrection: -Infinity };
    this.self = self;
    this.selfAddress = { name: this.name, addr, port };
    this.nodes = [self];
    this.byName.set(this.name, self);
    this.running = true;
    this.broadcast(this.name, encodeMessage(this.aliveOf(self)));
    // Random phases so members started together do not probe and gossip in lockstep.
    const c = this.cfg;
    this.probeTimer = this.sched.setTimeout(this.probeTick, this.random() * c.probeIntervalMs);
    this.gossipPhase = now + this.random() * c.gossipIntervalMs;
    this.gossipTimer = c.gossipNodes > 0 ? this.sched.setTimeout(this.gossipTick, this.gossipPhase - now) : null;
    if (c.pushPullIntervalMs > 0) this.pushPullTimer = this.sched.setTimeout(this.pushPullTick, this.random() * c.pushPullIntervalMs);
    if (c.reconnectIntervalMs > 0) this.reconnectTimer = this.sched.setTimeout(this.reconnectTick, (0.5 + this.random()) * c.reconnectIntervalMs);
    this.logger?.info({ name: this.name, addr, port, lifeguard: this.lifeguard }, 'gossip member started');
  }

  /**
   * Full state exchange with each seed (in parallel); resolves with how many answered.
   * Seeds equal to our own advertised address are skipped.
   */
  join(seeds: readonly { addr: string; port: number }[]): Promise<number> {
    const self = this.self;
    if (!this.running || !self) return Promise.reject(new Error('gossip member not running'));
    const targets = seeds.filter((s) => !(s.addr === self.addr && s.port === self.port));
    return new Promise((resolve) => {
      if (targets.length === 0) return resolve(0);
      let pending = targets.length;
      let ok = 0;
      for (const s of targets) {
        this.pushPullWith({ addr: s.addr, port: s.port }, true, (success) => {
          if (success) ok++;
          if (--pending === 0) {
            this.logger?.info({ contacted: ok, seeds: targets.length }, 'gossip join');
            resolve(ok);
          }
        });
      }
    });
  }

  /**
   * Announces that we leave (others mark us 'left', not 'dead') and waits until the announcement
   * has been gossiped its full retransmit count or leaveTimeoutMs passed. Call stop() afterwards.
   */
  leave(): Promise<void> {
    const self = this.self;
    if (!this.running || !self || this.leaving) return Promise.resolve();
    this.leaving = true;
    const others = this.nodes.some((n) => n !== self && (n.state === 'alive' || n.state === 'suspect'));
    return new Promise((resolve) => {
      let finished = false;
      const timer = this.sched.setTimeout(() => finish(), this.cfg.leaveTimeoutMs);
      const finish = () => {
        if (finished) return;
        finished = true;
        timer.cancel();
        this.leaveDone = null;
        resolve();
      };
      this.leaveDone = finish;
      this.deadNode({ node: self.name, incarnation: self.incarnation, from: self.name });
      if (!others) finish();
    });
  }

  /** Stops all timers and closes the transport, without telling anyone (a crash, to the others). */
  async stop(): Promise<void> {
    if (!this.started) return;
    this.running = false;
    for (const t of [this.probeTimer, this.gossipTimer, this.pushPullTimer, this.reconnectTimer]) t?.cancel();
    this.probeTimer = this.gossipTimer = this.pushPullTimer = this.reconnectTimer = null;
    for (const h of this.handlers.values()) h.timer?.cancel();
    this.handlers.clear();
    this.probe = null;
    for (const n of this.nodes) {
      n.suspicion?.cancel();
      n.suspicion = null;
    }
    this.broadcasts.clear();
    await this.transport.stop();
  }

  /** Changes our meta and gossips it (with a new incarnation). */
  setMeta(meta: Meta): void {
    validateMeta(meta);
    const self = this.self;
    if (!self) throw new Error('gossip member not started');
    self.meta = { ...meta };
    self.incarnation++;
    this.broadcast(self.name, encodeMessage(this.aliveOf(self)));
    this.emitChange(self);
  }

  // ---------------------------------------------------------------- queries

  /** Everyone we know of, ourselves included; dead and left members until they are reaped. */
  members(): GossipMemberInfo[] {
    const now = this.sched.now();
    return this.nodes.map((n) => this.info(n, now));
  }

  member(name: string): GossipMemberInfo | undefined {
    const n = this.byName.get(name);
    return n ? this.info(n, this.sched.now()) : undefined;
  }

  /** Just the state of `name` (cheap: no copy, no phi), undefined when unknown or reaped. */
  stateOf(name: string): MemberState | undefined {
    return this.byName.get(name)?.state;
  }

  /** Our phi for `name`'s traffic, undefined when we have not heard from it (or phi is off). */
  phi(name: string): number | undefined {
    const n = this.byName.get(name);
    return n?.detector ? finitePhi(n.detector.phi(this.sched.now())) : undefined;
  }

  /** The address others reach us on (after start). */
  get address(): Endpoint | null {
    return this.self ? { addr: this.self.addr, port: this.self.port } : null;
  }

  get incarnation(): number {
    return this.self?.incarnation ?? 0;
  }

  stats(): GossipStats {
    return { ...this.counters, health: this.awareness.score, queued: this.broadcasts.size };
  }

  private info(n: NodeRec, now: number): GossipMemberInfo {
    const i: GossipMemberInfo = { name: n.name, addr: n.addr, port: n.port, state: n.state, incarnation: n.incarnation, meta: { ...n.meta } };
    if (n.detector) i.phi = finitePhi(n.detector.phi(now));
    return i;
  }

  private emitChange(n: NodeRec): void {
    if (this.listenerCount('change') === 0) return;
    // Listeners run inside packet handling: one that throws must not take the protocol down.
    try {
      this.emit('change', this.info(n, this.sched.now()));
    } catch (err) {
      this.logger?.warn({ err: err instanceof Error ? err.message : String(err) }, 'change listener threw');
    }
  }

  // ---------------------------------------------------------------- probing

  private readonly probeTick = (): void => {
    this.probeTimer = null;
    if (!this.running) return;
    // The previous probe's deadline is this tick: still unanswered means failed.
    if (this.probe) this.finishProbe(this.probe, false);
    const interval = this.lifeguard ? this.awareness.scale(this.cfg.probeIntervalMs) : this.cfg.probeIntervalMs;
    this.startProbe(this.sched.now() + interval);
    this.probeTimer = this.sched.setTimeout(this.probeTick, interval);
  };

  /** memberlist's probe(): next live member in the shuffled list, reshuffling at each wrap. */
  private nextProbeTarget(): NodeRec | null {
    let checks = 0;
    while (checks < this.nodes.length) {
      if (this.probeIndex >= this.nodes.length) {
        this.resetNodes();
        this.probeIndex = 0;
        checks++;
        continue;
      }
      const n = this.nodes[this.probeIndex++]!;
      if (n === this.self || n.state === 'dead' || n.state === 'left') {
        checks++;
        continue;
      }
      return n;
    }
    return null;
  }

  private startProbe(deadline: number): void {
    const target = this.nextProbeTarget();
    const me = this.selfAddress;
    if (!target || !me) return;
    const probe: Probe = { kind: 'probe', seq: ++this.seq, target, incarnation: target.incarnation, deadline, nacks: 0, expectedNacks: 0, timer: null };
    this.handlers.set(probe.seq, probe);
    this.probe = probe;
    this.counters.probesSent++;
    const parts: Uint8Array[] = [encodeMessage({ type: 'ping', seq: probe.seq, target: target.name, source: me })];
    // Lifeguard's buddy system: a suspect gets the accusation with the ping, so it can refute
    // right away instead of waiting for gossip to reach it.
    if (this.lifeguard && target.state === 'suspect') parts.push(encodeMessage({ type: 'suspect', node: target.name, incarnation: target.incarnation, from: this.name }));
    this.send(target, parts);
    const timeout = this.lifeguard ? this.awareness.scale(this.cfg.probeTimeoutMs) : this.cfg.probeTimeoutMs;
    probe.timer = this.sched.setTimeout(() => this.indirectProbe(probe), timeout);
  }

  private indirectProbe(probe: Probe): void {
    probe.timer = null;
    const me = this.selfAddress;
    if (this.probe !== probe || !me) return;
    const t = probe.target;
    const helpers = this.kRandom(this.cfg.indirectChecks, (n) => n !== this.self && n !== t && n.state === 'alive');
    // Helpers get the time our probe has left, so their nack can still arrive before our deadline.
    const timeoutMs = Math.max(1, probe.deadline - this.sched.now());
    const req = encodeMessage({ type: 'ping-req', seq: probe.seq, target: { name: t.name, addr: t.addr, port: t.port }, nack: this.lifeguard, timeoutMs, source: me });
    for (const h of helpers) {
      if (this.lifeguard) probe.expectedNacks++;
      this.send(h, [req]);
    }
  }

  private finishProbe(probe: Probe, acked: boolean): void {
    this.handlers.delete(probe.seq);
    probe.timer?.cancel();
    if (this.probe === probe) this.probe = null;
    if (acked) {
      if (this.lifeguard) this.awareness.applyDelta(-1);
      return;
    }
    this.counters.probesFailed++;
    if (this.lifeguard) {
      // Helpers that should have nacked but did not suggest our own network is the problem.
      const missing = probe.expectedNacks - probe.nacks;
      this.awareness.applyDelta(probe.expectedNacks > 0 ? Math.max(0, missing) : 1);
    }
    const t = probe.target;
    if (this.byName.get(t.name) !== t || t.state === 'dead' || t.state === 'left') return;
    this.logger?.debug({ member: t.name }, 'probe failed, suspecting');
    this.suspectNode({ node: t.name, incarnation: probe.incarnation, from: this.name });
  }

  /** Drops dead members past gossipToTheDeadMs and reshuffles (memberlist resetNodes). */
  private resetNodes(): void {
    const now = this.sched.now();
    const keep: NodeRec[] = [];
    for (const n of this.nodes) {
      if (n !== this.self && (n.state === 'dead' || n.state === 'left') && now - n.stateChange > this.cfg.gossipToTheDeadMs) {
        this.byName.delete(n.name);
        if (n.state === 'dead') this.failed.set(n.name, { addr: n.addr, port: n.port, since: n.stateChange });
        continue;
      }
      keep.push(n);
    }
    for (let i = keep.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      const tmp = keep[i]!;
      keep[i] = keep[j]!;
      keep[j] = tmp;
    }
    this.nodes = keep;
  }

  /** Up to k distinct random members passing `accept` (memberlist kRandomNodes: 3n tries at most). */
  private kRandom(k: number, accept: (n: NodeRec) => boolean): NodeRec[] {
    const out: NodeRec[] = [];
    const n = this.nodes.length;
    for (let i = 0; i < 3 * n && out.length < k; i++) {
      const node = this.nodes[Math.floor(this.random() * n)]!;
      if (!accept(node) || out.includes(node)) continue;
      out.push(node);
    }
    return out;
  }

  // ---------------------------------------------------------------- gossip and push-pull

  private readonly gossipTick = (): void => {
    this.gossipTimer = null;
    if (!this.running) return;
    // Nothing to say: sleep until something is queued (wakeGossip) instead of ticking idle.
    if (this.broadcasts.size === 0) return;
    const now = this.sched.now();
    const dead = this.cfg.gossipToTheDeadMs;
    const targets = this.kRandom(this.cfg.gossipNodes, (n) => n !== this.self && (n.state === 'alive' || n.state === 'suspect' || (n.state === 'dead' && now - n.stateChange < dead)));
    const room = this.cfg.maxPacketBytes - this.headerBytes;
    for (const t of targets) {
      const parts = this.broadcasts.take(PART_OVERHEAD, room);
      if (parts.length === 0) break;
      this.sendRaw(t, encodePacket(this.name, parts), parts.length);
    }
    this.gossipTimer = this.sched.setTimeout(this.gossipTick, this.cfg.gossipIntervalMs);
  };

  /** Restarts the gossip ticker, on its original phase, when it went to sleep idle. */
  private wakeGossip(): void {
    if (this.gossipTimer || !this.running || this.cfg.gossipNodes === 0) return;
    const now = this.sched.now();
    const iv = this.cfg.gossipIntervalMs;
    const next = this.gossipPhase + Math.ceil((now - this.gossipPhase) / iv) * iv;
    this.gossipTimer = this.sched.setTimeout(this.gossipTick, next - now);
  }

  private readonly pushPullTick = (): void => {
    this.pushPullTimer = null;
    if (!this.running) return;
    const peer = this.kRandom(1, (n) => n !== this.self && n.state === 'alive')[0];
    if (peer) this.pushPullWith(peer, false, () => {});
    this.pushPullTimer = this.sched.setTimeout(this.pushPullTick, pushPullScale(this.cfg.pushPullIntervalMs, this.nodes.length));
  };

  /** Serf-style reconnect: a healed partition only merges if someone talks across it. */
  private readonly reconnectTick = (): void => {
    this.reconnectTimer = null;
    if (!this.running) return;
    const now = this.sched.now();
    for (const [name, f] of this.failed) if (now - f.since > this.cfg.reconnectTimeoutMs) this.failed.delete(name);
    let alive = 0;
    for (const n of this.nodes) if (n.state === 'alive') alive++;
    // With many failed members relative to live ones, try more often (Serf's probability).
    if (this.failed.size > 0 && this.random() < this.failed.size / Math.max(1, alive)) {
      let pick = Math.floor(this.random() * this.failed.size);
      for (const f of this.failed.values()) {
        if (pick-- > 0) continue;
        this.pushPullWith(f, true, () => {});
        break;
      }
    }
    this.reconnectTimer = this.sched.setTimeout(this.reconnectTick, this.cfg.reconnectIntervalMs);
  };

  private pushPullWith(to: Endpoint, join: boolean, done: (ok: boolean) => void): void {
    const payload = encodePushPull({ sender: this.name, join, nodes: this.localState() });
    this.counters.pushPullsSent++;
    this.counters.streamBytesSent += payload.length;
    this.transport.pushPull({ addr: to.addr, port: to.port }, payload, this.cfg.pushPullTimeoutMs, (err, reply) => {
      if (err || !reply || !this.running) {
        if (err) this.logger?.debug({ addr: to.addr, port: to.port, err: err.message }, 'push-pull failed');
        return done(false);
      }
      this.counters.streamBytesReceived += reply.length;
      const remote = decodePushPull(reply);
      if (!remote) {
        this.counters.malformed++;
        return done(false);
      }
      this.heardFrom(remote.sender);
      this.mergeRemote(remote.nodes);
      done(true);
    });
  }

  private onPushPull(data: Buffer, _from: Endpoint): Buffer | null {
    if (!this.running) return null;
    this.counters.pushPullsReceived++;
    this.counters.streamBytesReceived += data.length;
    const remote = decodePushPull(data);
    if (!remote) {
      this.counters.malformed++;
      return null;
    }
    // Reply with our state before merging theirs, as memberlist does.
    const reply = encodePushPull({ sender: this.name, join: false, nodes: this.localState() });
    this.counters.streamBytesSent += reply.length;
    this.heardFrom(remote.sender);
    this.mergeRemote(remote.nodes);
    return reply;
  }

  private localState(): PushNodeState[] {
    return this.nodes.map((n) => ({ name: n.name, addr: n.addr, port: n.port, incarnation: n.incarnation, state: n.state, meta: n.meta }));
  }

  /** memberlist mergeState: a remote "dead" only makes us suspect, so the member can still refute. */
  private mergeRemote(nodes: readonly PushNodeState[]): void {
    for (const r of nodes) {
      switch (r.state) {
        case 'alive':
          this.aliveNode({ type: 'alive', node: r.name, addr: r.addr, port: r.port, incarnation: r.incarnation, meta: r.meta });
          break;
        case 'left':
          this.deadNode({ node: r.name, incarnation: r.incarnation, from: r.name });
          break;
        case 'dead':
        case 'suspect':
          this.suspectNode({ node: r.name, incarnation: r.incarnation, from: this.name });
          break;
      }
    }
  }

  // ---------------------------------------------------------------- incoming packets

  private onPacket(data: Buffer, _from: Endpoint): void {
    if (!this.running) return;
    this.counters.packetsReceived++;
    this.counters.bytesReceived += data.length;
    const pkt = data.length > this.cfg.maxPacketBytes ? null : decodePacket(data);
    if (!pkt) {
      this.counters.malformed++;
      return;
    }
    if (pkt.sender === this.name) return;
    this.counters.messagesReceived += pkt.messages.length;
    this.heardFrom(pkt.sender);
    for (const m of pkt.messages) this.handle(m, pkt.sender);
  }

  private heardFrom(name: string): void {
    if (this.phiOptions === false) return;
    const n = this.byName.get(name);
    if (!n || n === this.self) return;
    (n.detector ??= new PhiAccrualDetector(this.phiOptions)).heartbeat(this.sched.now());
  }

  private handle(m: GossipMessage, sender: string): void {
    switch (m.type) {
      case 'ping':
        if (m.target !== this.name) {
          this.counters.misdirected++;
          return;
        }
        // Reply to the advertised source, which works through NATs that the datagram's source does not.
        this.send(m.source, [encodeMessage({ type: 'ack', seq: m.seq })]);
        return;
      case 'ping-req':
        this.relayPing(m.seq, m.target, m.source, m.nack, m.timeoutMs);
        return;
      case 'ack': {
        const h = this.handlers.get(m.seq);
        if (!h) return;
        if (h.kind === 'probe') this.finishProbe(h, true);
        else {
          this.handlers.delete(m.seq);
          h.timer?.cancel();
          this.send(h.origin, [encodeMessage({ type: 'ack', seq: h.origSeq })]);
        }
        return;
      }
      case 'nack': {
        const h = this.handlers.get(m.seq);
        if (h?.kind === 'probe') h.nacks++;
        return;
      }
      case 'alive':
        this.aliveNode(m);
        return;
      case 'suspect':
      case 'dead': {
        const n = this.byName.get(m.node);
        if (n && n.state === 'alive' && m.incarnation < n.incarnation) {
          this.correct(sender, n);
          return;
        }
        if (m.type === 'suspect') this.suspectNode(m);
        else this.deadNode(m);
        return;
      }
    }
  }

  /**
   * `sender` passed on an accusation older than the alive we know: it missed the refutation
   * (gossip reaches everyone only with high probability). Tell it directly rather than leave
   * it to declare a live member dead and wait for push-pull to undo that. Not in memberlist;
   * at most once per probe interval per sender.
   */
  private correct(sender: string, n: NodeRec): void {
    const s = this.byName.get(sender);
    if (!s || s === this.self || s.state === 'dead' || s.state === 'left') return;
    const now = this.sched.now();
    if (now - s.lastCorrection < this.cfg.probeIntervalMs) return;
    s.lastCorrection = now;
    this.counters.corrections++;
    this.send(s, [encodeMessage(this.aliveOf(n))]);
  }

  /**
   * Probes `target` on behalf of `origin`, which has `timeoutMs` left: forwards the ack if one
   * comes in that time; if asked, sends a nack after 80 % of it (the Lifeguard paper's footnote:
   * memberlist waits its own full ProbeTimeout, so its nacks arrive after the prober gave up).
   */
  private relayPing(origSeq: number, target: NodeAddress, origin: NodeAddress, nack: boolean, timeoutMs: number): void {
    const me = this.selfAddress;
    if (!me) return;
    const relay: Relay = { kind: 'relay', origSeq, origin: { addr: origin.addr, port: origin.port }, nack, timer: null };
    const seq = ++this.seq;
    this.handlers.set(seq, relay);
    this.send(target, [encodeMessage({ type: 'ping', seq, target: target.name, source: me })]);
    const nackAt = nack ? 0.8 * timeoutMs : timeoutMs;
    relay.timer = this.sched.setTimeout(() => {
      if (!this.running || this.handlers.get(seq) !== relay) return;
      if (relay.nack) {
        relay.nack = false;
        this.send(relay.origin, [encodeMessage({ type: 'nack', seq: origSeq })]);
        // Keep forwarding a late ack for the rest of the prober's time.
        relay.timer = this.sched.setTimeout(() => this.handlers.delete(seq), timeoutMs - nackAt);
        return;
      }
      this.handlers.delete(seq);
    }, nackAt);
  }

  // ---------------------------------------------------------------- state machine

  private aliveOf(n: NodeRec): GossipMessage & { type: 'alive' } {
    return { type: 'alive', node: n.name, addr: n.addr, port: n.port, incarnation: n.incarnation, meta: n.meta };
  }

  private aliveNode(a: GossipMessage & { type: 'alive' }): void {
    const self = this.self;
    if (!self) return;
    if (this.leaving && a.node === this.name) return;
    const now = this.sched.now();
    const n = this.byName.get(a.node);
    if (!n) {
      this.failed.delete(a.node);
      const rec: NodeRec = { name: a.node, addr: a.addr, port: a.port, meta: a.meta, incarnation: a.incarnation, state: 'alive', stateChange: now, suspicion: null, detector: null, lastCorrection: -Infinity };
      // Insert at a random position: appending would let every member probe newcomers last.
      const at = Math.floor(this.random() * (this.nodes.length + 1));
      this.nodes.push(rec);
      const tmp = this.nodes[at]!;
      this.nodes[at] = rec;
      this.nodes[this.nodes.length - 1] = tmp;
      this.byName.set(rec.name, rec);
      this.broadcast(a.node, encodeMessage(a));
      this.emitChange(rec);
      return;
    }
    let moved = false;
    if (n.addr !== a.addr || n.port !== a.port) {
      const reclaim = this.cfg.deadNodeReclaimMs > 0 && n.state === 'dead' && now - n.stateChange > this.cfg.deadNodeReclaimMs;
      if (n.state !== 'left' && !reclaim) {
        this.counters.conflicts++;
        this.logger?.debug({ member: a.node, known: `${n.addr}:${n.port}`, claimed: `${a.addr}:${a.port}` }, 'conflicting address, ignored');
        return;
      }
      moved = true;
    }
    const isSelf = n === self;
    if (!isSelf && !moved && a.incarnation <= n.incarnation) return;
    if (isSelf && a.incarnation < n.incarnation) return;
    n.suspicion?.cancel();
    n.suspicion = null;
    if (isSelf) {
      // Someone gossips an alive for us that is not ours (an old life of ours, or edited meta): outbid it.
      if (a.incarnation === n.incarnation && metaEqual(a.meta, n.meta)) return;
      this.refute(a.incarnation);
      return;
    }
    this.broadcast(a.node, encodeMessage(a));
    const changed = n.state !== 'alive' || moved || !metaEqual(a.meta, n.meta);
    n.incarnation = a.incarnation;
    n.meta = a.meta;
    n.addr = a.addr;
    n.port = a.port;
    if (n.state !== 'alive') {
      n.state = 'alive';
      n.stateChange = now;
    }
    if (changed) this.emitChange(n);
  }

  private suspectNode(s: { node: string; incarnation: number; from: string }): void {
    const n = this.byName.get(s.node);
    if (!n || s.incarnation < n.incarnation) return;
    if (n.suspicion) {
      // Lifeguard: an independent accuser shortens the timer; pass the news on so others count it too.
      if (this.lifeguard && n.suspicion.confirm(s.from)) this.broadcast(s.node, encodeMessage({ type: 'suspect', ...s }));
      return;
    }
    if (n.state !== 'alive') return;
    if (n === this.self) {
      this.logger?.info({ from: s.from, incarnation: s.incarnation }, 'refuting suspicion of ourselves');
      this.refute(s.incarnation);
      return;
    }
    this.broadcast(s.node, encodeMessage({ type: 'suspect', ...s }));
    n.incarnation = s.incarnation;
    n.state = 'suspect';
    const changedAt = (n.stateChange = this.sched.now());
    const size = this.nodes.length;
    let k = this.lifeguard ? this.cfg.indirectChecks : 0;
    // Ourselves and the suspect cannot confirm: a smaller group cannot produce k confirmations.
    if (size - 2 < k) k = 0;
    const min = suspicionTimeout(this.cfg.suspicionMult, size, this.cfg.probeIntervalMs);
    const max = this.lifeguard ? this.cfg.suspicionMaxTimeoutMult * min : min;
    const suspicion = new Suspicion(this.sched, s.from, k, min, max, (confirmations) => {
      if (n.suspicion === suspicion) n.suspicion = null;
      if (!this.running || this.byName.get(n.name) !== n || n.state !== 'suspect' || n.stateChange !== changedAt) return;
      this.logger?.info({ member: n.name, confirmations }, 'suspicion timed out, marking dead');
      this.deadNode({ node: n.name, incarnation: n.incarnation, from: this.name });
    });
    n.suspicion = suspicion;
    this.emitChange(n);
  }

  private deadNode(d: { node: string; incarnation: number; from: string }): void {
    const n = this.byName.get(d.node);
    if (!n || d.incarnation < n.incarnation) return;
    n.suspicion?.cancel();
    n.suspicion = null;
    if (n.state === 'dead' || n.state === 'left') return;
    const msg = encodeMessage({ type: 'dead', ...d });
    if (n === this.self) {
      if (!this.leaving) {
        this.logger?.info({ from: d.from, incarnation: d.incarnation }, 'refuting death notice about ourselves');
        this.refute(d.incarnation);
        return;
      }
      this.broadcast(d.node, msg, () => this.leaveDone?.());
    } else this.broadcast(d.node, msg);
    n.incarnation = d.incarnation;
    n.state = d.node === d.from ? 'left' : 'dead';
    n.stateChange = this.sched.now();
    this.emitChange(n);
  }

  /** Outbids an accusation with a higher incarnation and gossips that we are alive. */
  private refute(accused: number): void {
    const self = this.self;
    if (!self) return;
    let inc = self.incarnation + 1;
    if (accused >= inc) inc = accused + 1;
    self.incarnation = inc;
    this.counters.refutes++;
    // Having to refute means others could not hear us in time: likely our own fault.
    if (this.lifeguard) this.awareness.applyDelta(1);
    this.broadcast(self.name, encodeMessage(this.aliveOf(self)));
  }

  // ---------------------------------------------------------------- sending

  private broadcast(node: string, msg: Uint8Array, onDone?: () => void): void {
    this.broadcasts.queue(node, msg, onDone);
    this.wakeGossip();
  }

  /** Sends `parts` in one datagram, filling the rest of it with queued updates. */
  private send(to: Endpoint, parts: Uint8Array[]): void {
    let used = this.headerBytes;
    for (const p of parts) used += PART_OVERHEAD + p.length;
    const room = this.cfg.maxPacketBytes - used;
    const extra = room > 0 ? this.broadcasts.take(PART_OVERHEAD, room) : [];
    const all = extra.length ? parts.concat(extra) : parts;
    this.sendRaw(to, encodePacket(this.name, all), all.length);
  }

  private sendRaw(to: Endpoint, packet: Buffer, messages: number): void {
    this.counters.packetsSent++;
    this.counters.bytesSent += packet.length;
    this.counters.messagesSent += messages;
    this.transport.sendPacket(to, packet);
  }
}
