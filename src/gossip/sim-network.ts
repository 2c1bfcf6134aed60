// An in-process network for simulations and tests: every member gets a Transport whose
// datagrams are delivered through the scheduler after a latency (fixed + uniform jitter), lost
// with a global or per-link probability, blocked between partitioned sets of addresses, and
// counted per endpoint. Push-pull exchanges are reliable (TCP retransmits what UDP would lose)
// but fail on partitions and stopped endpoints, after the timeout as a real connect would.
//
// The gossip code above it is the production code; only the wire and the clock are simulated.
import type { Random } from './rng.js';
import type { Scheduler } from './scheduler.js';
import type { Endpoint, PushPullCallback, Transport, TransportHandlers } from './transport.js';

export interface SimNetworkOptions {
  /** Probability that a datagram is lost, each one independently (default 0). */
  loss?: number;
  /** One-way latency, ms (default 0.5, a LAN). */
  latencyMs?: number;
  /** Extra uniform random latency in [0, jitterMs) (default 0.5). */
  jitterMs?: number;
  random?: Random;
}

export interface SimEndpointStats {
  packetsSent: number;
  bytesSent: number;
  packetsReceived: number;
  bytesReceived: number;
  /** Datagrams from this endpoint that the network dropped (loss, partition, nobody listening). */
  packetsDropped: number;
  pushPullsSent: number;
  streamBytesSent: number;
  streamBytesReceived: number;
}

const emptyStats = (): SimEndpointStats => ({
  packetsSent: 0,
  bytesSent: 0,
  packetsReceived: 0,
  bytesReceived: 0,
  packetsDropped: 0,
  pushPullsSent: 0,
  streamBytesSent: 0,
  streamBytesReceived: 0,
});

const keyOf = (e: Endpoint) => `${e.addr}:${e.port}`;
const linkKey = (a: string, b: string) => (a < b ? `${a}|${b}` : `${b}|${a}`);

class SimEndpoint implements Transport {
  handlers: TransportHandlers | null = null;
  readonly stats = emptyStats();
  /** Extra delay on everything delivered here: a member whose CPU is starved. */
  processingDelayMs = 0;

  constructor(
    private readonly net: SimNetwork,
    readonly endpoint: Endpoint,
  ) {}

  get listening(): boolean {
    return this.handlers !== null;
  }

  start(handlers: TransportHandlers): Promise<Endpoint> {
    this.handlers = handlers;
    return Promise.resolve({ ...this.endpoint });
  }

  sendPacket(to: Endpoint, data: Uint8Array): void {
    if (this.handlers) this.net.deliverPacket(this, to, data);
  }

  pushPull(to: Endpoint, data: Uint8Array, timeoutMs: number, done: PushPullCallback): void {
    if (!this.handlers) {
      this.net.scheduler.setTimeout(() => done(new Error('transport stopped'), null), 0);
      return;
    }
    this.net.exchange(this, to, data, timeoutMs, done);
  }

  stop(): Promise<void> {
    this.handlers = null;
    return Promise.resolve();
  }
}

export class SimNetwork {
  /** Global datagram loss probability; may be changed while running. */
  loss: number;
  latencyMs: number;
  jitterMs: number;
  private readonly random: Random;
  private readonly endpoints = new Map<string, SimEndpoint>();
  /** The same endpoints by address then port: the per-packet lookup without building a key string. */
  private readonly byAddr = new Map<string, Map<number, SimEndpoint>>();
  private readonly forwards = new Map<string, Endpoint>();
  private readonly linkLoss = new Map<string, number>();
  private partitions: { a: Set<string>; b: Set<string> }[] = [];

  constructor(
    readonly scheduler: Scheduler,
    opts: SimNetworkOptions = {},
  ) {
    this.loss = opts.loss ?? 0;
    this.latencyMs = opts.latencyMs ?? 0.5;
    this.jitterMs = opts.jitterMs ?? 0.5;
    this.random = opts.random ?? Math.random;
  }

  /** A transport bound at addr:port (one per member; a second one replaces the first, like a restart). */
  transport(addr: string, port: number): Transport {
    const ep = new SimEndpoint(this, { addr, port });
    this.endpoints.set(keyOf(ep.endpoint), ep);
    let ports = this.byAddr.get(addr);
    if (!ports) this.byAddr.set(addr, (ports = new Map()));
    ports.set(port, ep);
    return ep;
  }

  /** Datagrams and streams sent to `publicEp` arrive at `privateEp`: a NAT port forward. */
  forward(publicEp: Endpoint, privateEp: Endpoint): void {
    this.forwards.set(keyOf(publicEp), privateEp);
  }

  /** Loss probability on the link between two addresses (both directions); null restores the global value. */
  setLinkLoss(a: string, b: string, p: number | null): void {
    if (p === null) this.linkLoss.delete(linkKey(a, b));
    else this.linkLoss.set(linkKey(a, b), p);
  }

  /** Blocks all traffic between the two sets of addresses until heal(). */
  partition(a: Iterable<string>, b: Iterable<string>): void {
    this.partitions.push({ a: new Set(a), b: new Set(b) });
  }

  heal(): void {
    this.partitions = [];
  }

  /** Delays everything delivered to `addr` by `ms` (0 = normal). */
  setProcessingDelay(addr: string, port: number, ms: number): void {
    const ep = this.endpoints.get(keyOf({ addr, port }));
    if (ep) ep.processingDelayMs = ms;
  }

  stats(addr: string, port: number): SimEndpointStats {
    return { ...(this.endpoints.get(keyOf({ addr, port }))?.stats ?? emptyStats()) };
  }

  totals(): SimEndpointStats {
    const t = emptyStats();
    for (const ep of this.endpoints.values()) {
      for (const k of Object.keys(t) as (keyof SimEndpointStats)[]) t[k] += ep.stats[k];
    }
    return t;
  }

  private resolve(to: Endpoint): SimEndpoint | undefined {
    if (this.forwards.size > 0) {
      const fwd = this.forwards.get(keyOf(to));
      if (fwd) return this.byAddr.get(fwd.addr)?.get(fwd.port);
    }
    return this.byAddr.get(to.addr)?.get(to.port);
  }

  private blocked(a: string, b: string): boolean {
    for (const p of this.partitions) {
      if ((p.a.has(a) && p.b.has(b)) || (p.b.has(a) && p.a.has(b))) return true;
    }
    return false;
  }

  private delay(dest: SimEndpoint): number {
    return this.latencyMs + (this.jitterMs > 0 ? this.random() * this.jitterMs : 0) + dest.processingDelayMs;
  }

  /** @internal */
  deliverPacket(src: SimEndpoint, to: Endpoint, data: Uint8Array): void {
    src.stats.packetsSent++;
    src.stats.bytesSent += data.length;
    const dest = this.resolve(to);
    const from = src.endpoint.addr;
    if (!dest || (this.partitions.length > 0 && this.blocked(from, dest.endpoint.addr))) {
      src.stats.packetsDropped++;
      return;
    }
    const p = this.linkLoss.size > 0 ? (this.linkLoss.get(linkKey(from, dest.endpoint.addr)) ?? this.loss) : this.loss;
    if (p > 0 && this.random() < p) {
      src.stats.packetsDropped++;
      return;
    }
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    this.scheduler.setTimeout(() => {
      const h = dest.handlers;
      if (!h) return;
      dest.stats.packetsReceived++;
      dest.stats.bytesReceived += buf.length;
      h.packet(buf, src.endpoint);
    }, this.delay(dest));
  }

  /** @internal A push-pull: connect (1 RTT), request, reply; fails like TCP would. */
  exchange(src: SimEndpoint, to: Endpoint, data: Uint8Array, timeoutMs: number, done: PushPullCallback): void {
    src.stats.pushPullsSent++;
    src.stats.streamBytesSent += data.length;
    let finished = false;
    const finish = (err: Error | null, reply: Buffer | null) => {
      if (finished) return;
      finished = true;
      done(err, reply);
    };
    const timeout = this.scheduler.setTimeout(() => finish(new Error(`push-pull to ${keyOf(to)} timed out`), null), timeoutMs);
    const dest = this.resolve(to);
    if (!dest || this.blocked(src.endpoint.addr, dest.endpoint.addr)) return; // only the timeout answers
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    this.scheduler.setTimeout(() => {
      const h = dest.handlers;
      if (!h) {
        timeout.cancel();
        finish(new Error(`push-pull to ${keyOf(to)}: connection refused`), null);
        return;
      }
      dest.stats.streamBytesReceived += buf.length;
      const reply = h.pushPull(buf, src.endpoint);
      if (!reply) {
        timeout.cancel();
        finish(new Error(`push-pull to ${keyOf(to)}: closed without reply`), null);
        return;
      }
      dest.stats.streamBytesSent += reply.length;
      this.scheduler.setTimeout(() => {
        if (finished) return;
        timeout.cancel();
        if (!src.handlers) return finish(new Error('transport stopped'), null);
        src.stats.streamBytesReceived += reply.length;
        finish(null, reply);
      }, this.delay(src));
    }, 3 * this.delay(dest));
  }
}
