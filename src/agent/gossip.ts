// The agent's seat in the fleet's gossip group: a SWIM member named after the device, which
// joins through the seeds each controller welcome hands out (and mDNS on one named interface),
// advertises its address in the hello, and reports its view of the group to the controller, so
// a dead Pi is agreed on by its peers even while the controller is away.
import type { Agent, Seed } from './agent.js';
import type { AgentLogger } from './log.js';
import { GossipMember, toView } from '../gossip/swim.js';
import { joinViaMdns, type MdnsDiscovery } from '../gossip/mdns.js';
import type { GossipTimings } from '../gossip/config.js';
import type { Transport } from '../gossip/transport.js';

export interface AgentGossipOptions {
  /** Member name: the device id. */
  name: string;
  bindAddr: string;
  bindPort: number;
  advertiseAddr?: string | undefined;
  advertisePort?: number | undefined;
  /** IPv4 address of the one interface mDNS may use; none = seeds only. */
  mdnsInterface?: string | undefined;
  timings?: GossipTimings;
  lifeguard?: boolean;
  /** The virtual fleet passes a simulated or relayed transport. */
  transport?: Transport;
  /** The view is re-sent this often even without membership changes (phi moves; default 10 s). */
  refreshMs?: number;
  /** A failed bind is retried this often (default 30 s); the agent keeps reporting meanwhile. */
  retryMs?: number;
  log: AgentLogger;
}

export class AgentGossip {
  private member: GossipMember | null = null;
  private mdns: MdnsDiscovery | null = null;
  private refresh: NodeJS.Timeout | null = null;
  private retry: NodeJS.Timeout | null = null;
  private stopped = false;
  private lastSeeds: Seed[] = [];
  private readonly onSeeds = (seeds: Seed[]) => this.join(seeds);

  constructor(
    private readonly agent: Agent,
    private readonly opts: AgentGossipOptions,
  ) {}

  /** The running member (null until bound, or while a failed bind waits for its retry). */
  get gossip(): GossipMember | null {
    return this.member;
  }

  /**
   * Binds and starts the member. A bind failure (port taken) is logged and retried: metrics and
   * jobs matter more than gossip, so the agent never stops for it.
   */
  async start(): Promise<void> {
    this.agent.on('seeds', this.onSeeds);
    this.agent.setGossipAdvert(() => this.member?.address ?? undefined);
    await this.bind();
  }

  private async bind(): Promise<void> {
    if (this.stopped) return;
    const o = this.opts;
    const member = new GossipMember({
      name: o.name,
      bindAddr: o.bindAddr,
      bindPort: o.bindPort,
      ...(o.advertiseAddr !== undefined ? { advertiseAddr: o.advertiseAddr } : {}),
      ...(o.advertisePort !== undefined ? { advertisePort: o.advertisePort } : {}),
      ...(o.transport ? { transport: o.transport } : {}),
      ...(o.lifeguard !== undefined ? { lifeguard: o.lifeguard } : {}),
      // The leave is gossiped for ~2 s: enough for a LAN group to hear it, and well within the
      // agent's 5 s stop deadline (systemd stops it on every reboot).
      leaveTimeoutMs: 2000,
      ...o.timings,
      logger: o.log,
    });
    try {
      await member.start();
    } catch (err) {
      o.log.error({ err: (err as Error).message, bind: `${o.bindAddr}:${o.bindPort}`, retryMs: o.retryMs ?? 30_000 }, 'gossip cannot bind; the agent reports without it and retries');
      await member.stop().catch(() => undefined);
      this.retry = setTimeout(() => {
        this.retry = null;
        void this.bind();
      }, o.retryMs ?? 30_000);
      this.retry.unref?.();
      return;
    }
    if (this.stopped) {
      await member.stop().catch(() => undefined);
      return;
    }
    this.member = member;
    o.log.info({ member: o.name, advertise: member.address }, 'gossip member started');
    member.on('change', (m) => {
      if (m.name !== o.name) o.log.debug({ member: m.name, state: m.state, incarnation: m.incarnation }, 'gossip member changed');
      this.report();
    });
    this.refresh = setInterval(() => this.report(), o.refreshMs ?? 10_000);
    this.refresh.unref?.();
    if (o.mdnsInterface) {
      try {
        this.mdns = await joinViaMdns(member, { interface: o.mdnsInterface, onError: (err) => o.log.warn({ err: err.message }, 'mDNS join failed') });
      } catch (err) {
        o.log.error({ err: (err as Error).message, interface: o.mdnsInterface }, 'mDNS cannot start; joining through controller seeds only');
      }
    }
    // Seeds that arrived while unbound.
    if (this.lastSeeds.length) this.join(this.lastSeeds);
    this.report();
  }

  /** Joins the seeds we do not already see alive (every welcome brings some; most are known). */
  private join(seeds: Seed[]): void {
    this.lastSeeds = seeds;
    const m = this.member;
    if (!m) return;
    const fresh = seeds.filter((s) => s.node !== this.opts.name && m.stateOf(s.node) !== 'alive');
    if (!fresh.length) return;
    m.join(fresh.map((s) => ({ addr: s.addr, port: s.port }))).then(
      (n) => this.opts.log.debug({ seeds: fresh.length, reached: n }, 'gossip join'),
      (err: unknown) => this.opts.log.warn({ err: (err as Error).message }, 'gossip join failed'),
    );
  }

  private report(): void {
    if (this.member) this.agent.setView(toView(this.member.members()));
  }

  /** Announces the leave (bounded), then closes the sockets. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.agent.off('seeds', this.onSeeds);
    if (this.refresh) clearInterval(this.refresh);
    if (this.retry) clearTimeout(this.retry);
    this.refresh = this.retry = null;
    await this.mdns?.stop().catch(() => undefined);
    this.mdns = null;
    const m = this.member;
    this.member = null;
    if (!m) return;
    await m.leave().catch(() => undefined);
    await m.stop().catch(() => undefined);
  }

  /** Stops without a leave message, as a crash would (the fault tests and the demo's kill). */
  async crash(): Promise<void> {
    this.stopped = true;
    this.agent.off('seeds', this.onSeeds);
    if (this.refresh) clearInterval(this.refresh);
    if (this.retry) clearTimeout(this.retry);
    await this.mdns?.stop().catch(() => undefined);
    this.mdns = null;
    const m = this.member;
    this.member = null;
    await m?.stop().catch(() => undefined);
  }
}
