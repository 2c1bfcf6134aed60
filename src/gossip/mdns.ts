// Zero-configuration join: members announce themselves as DNS-SD service `_drover._udp.local`
// over multicast DNS and join the first peers they discover, so a fleet on one LAN segment
// forms its gossip group even before (or without) a controller handing out seeds.
//
// Off unless the caller creates it, and confined to ONE interface the caller names by its IPv4
// address: queries and announcements leave only through that interface, group membership is
// joined only there, and anything whose source is outside that interface's subnet is ignored
// (Linux delivers multicast joined by any socket to every socket bound to the port). Peers
// advertising an address outside the subnet are ignored too unless allowOffSubnet is set, so a
// stray announcement cannot point us at an arbitrary host.
//
// Records per member: PTR _drover._udp.local → <label>._drover._udp.local, SRV (port, target
// <label>.local), A <label>.local, and TXT v=1 name=<member name> addr=<addr> port=<port> (the
// TXT carries the exact member name, which a 63-byte DNS label may not).
import type { Answer, StringAnswer } from 'dns-packet';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import os from 'node:os';
import makeMdns from 'multicast-dns';
import type { GossipMember } from './swim.js';

export interface MdnsPeer {
  name: string;
  addr: string;
  port: number;
}

export interface MdnsDiscoveryOptions {
  /** IPv4 address of the one interface to use (required; there is no "all interfaces"). */
  interface: string;
  /** Our member name, and where our gossip member listens. */
  name: string;
  port: number;
  /** Address to announce (default: the interface address). */
  addr?: string;
  /** DNS-SD service type (default `_drover._udp`). */
  service?: string;
  /** Re-query this often, ms (default 30 s); also announces ourselves then. */
  queryIntervalMs?: number;
  /** mDNS port (default 5353). */
  mdnsPort?: number;
  /** Accept peers announcing an address outside the interface's subnet (default false). */
  allowOffSubnet?: boolean;
  onError?: (err: Error) => void;
}

export interface MdnsEvents {
  peer: [peer: MdnsPeer];
}

const MDNS_GROUP = '224.0.0.251';
const TTL_S = 120;

function ipv4ToInt(a: string): number {
  return a.split('.').reduce((acc, o) => (acc << 8) + Number(o), 0) >>> 0;
}

function label(name: string): string {
  // Lower case: DNS names compare case-insensitively, and we compare them as strings.
  const l = name.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 63);
  return l || 'member';
}

function txtStrings(data: unknown): string[] {
  const items = Array.isArray(data) ? data : [data];
  return items.map((d) => (Buffer.isBuffer(d) ? d.toString('utf8') : typeof d === 'string' ? d : ''));
}

export class MdnsDiscovery extends EventEmitter<MdnsEvents> {
  private mdns: makeMdns.MulticastDNS | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly known = new Map<string, MdnsPeer>();
  private readonly service: string;
  private readonly instance: string;
  private readonly host: string;
  private readonly addr: string;
  private net = 0;
  private mask = 0;

  constructor(private readonly opts: MdnsDiscoveryOptions) {
    super();
    if (!net.isIPv4(opts.interface)) throw new Error(`mDNS interface must be an IPv4 address, got '${opts.interface}'`);
    this.service = `${opts.service ?? '_drover._udp'}.local`.toLowerCase();
    this.instance = `${label(opts.name)}.${this.service}`;
    this.host = `${label(opts.name)}.local`;
    this.addr = opts.addr ?? opts.interface;
  }

  /** Peers discovered so far (by member name). */
  peers(): MdnsPeer[] {
    return [...this.known.values()];
  }

  async start(): Promise<void> {
    if (this.mdns) return;
    const iface = Object.values(os.networkInterfaces())
      .flat()
      .find((a) => a?.family === 'IPv4' && a.address === this.opts.interface);
    if (!iface) throw new Error(`no local interface has address ${this.opts.interface}`);
    this.mask = ipv4ToInt(iface.netmask);
    this.net = ipv4ToInt(iface.address) & this.mask;
    const mdns = makeMdns({
      interface: this.opts.interface,
      // Bound to the group address, not the interface address: Linux filters multicast by
      // destination, so a socket bound to the unicast address would never see it.
      bind: MDNS_GROUP,
      port: this.opts.mdnsPort ?? 5353,
      reuseAddr: true,
      loopback: true,
    });
    this.mdns = mdns;
    await new Promise<void>((resolve, reject) => {
      mdns.once('ready', () => resolve());
      mdns.once('error', reject);
    });
    mdns.on('error', (err) => this.opts.onError?.(err));
    mdns.on('warning', (err) => this.opts.onError?.(err));
    mdns.on('query', (q, rinfo) => {
      if (!this.onSubnet(rinfo.address)) return;
      // dns-packet decodes QTYPE ANY (255) as 'ANY', which its typings do not list.
      const wanted = q.questions.some((x) => {
        const n = x.name.toLowerCase();
        return (n === this.service && (x.type === 'PTR' || (x.type as string) === 'ANY')) || n === this.instance;
      });
      if (wanted) this.announce();
    });
    mdns.on('response', (r, rinfo) => {
      if (!this.onSubnet(rinfo.address)) return;
      const records = [...r.answers, ...r.additionals];
      for (const rec of records) rec.name = rec.name.toLowerCase();
      this.onResponse(records);
    });
    this.announce();
    this.query();
    this.timer = setInterval(() => {
      this.announce();
      this.query();
    }, this.opts.queryIntervalMs ?? 30_000);
  }

  /** Asks who offers the service now. */
  query(): void {
    this.mdns?.query({ questions: [{ name: this.service, type: 'PTR' }] });
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const mdns = this.mdns;
    this.mdns = null;
    if (!mdns) return;
    // A goodbye (TTL 0) so others can forget us sooner.
    await new Promise<void>((resolve) => mdns.respond({ answers: this.records(0) }, () => resolve()));
    await new Promise<void>((resolve) => mdns.destroy(() => resolve()));
  }

  private onSubnet(a: string): boolean {
    return net.isIPv4(a) && (ipv4ToInt(a) & this.mask) === this.net;
  }

  private records(ttl: number): Answer[] {
    const port = this.opts.port;
    return [
      { type: 'PTR', name: this.service, ttl, data: this.instance },
      { type: 'SRV', name: this.instance, ttl, flush: true, data: { port, target: this.host, priority: 0, weight: 0 } },
      { type: 'TXT', name: this.instance, ttl, flush: true, data: ['v=1', `name=${this.opts.name}`, `addr=${this.addr}`, `port=${port}`] },
      { type: 'A', name: this.host, ttl, flush: true, data: this.addr },
    ];
  }

  private announce(): void {
    this.mdns?.respond({ answers: this.records(TTL_S) });
  }

  private onResponse(records: Answer[]): void {
    for (const ptr of records) {
      if (ptr.type !== 'PTR' || ptr.name !== this.service) continue;
      const instance = (ptr as StringAnswer).data.toLowerCase();
      if (instance === this.instance || (ptr.ttl ?? TTL_S) === 0) continue;
      const peer = this.peerFrom(instance, records);
      if (!peer || peer.name === this.opts.name) continue;
      if (!this.opts.allowOffSubnet && !this.onSubnet(peer.addr)) continue;
      const old = this.known.get(peer.name);
      if (old && old.addr === peer.addr && old.port === peer.port) continue;
      this.known.set(peer.name, peer);
      this.emit('peer', peer);
    }
  }

  /** Reads TXT (name, addr, port), falling back to SRV + A; null when incomplete or invalid. */
  private peerFrom(instance: string, records: Answer[]): MdnsPeer | null {
    let name: string | undefined;
    let addr: string | undefined;
    let port: number | undefined;
    for (const r of records) {
      if (r.name !== instance) continue;
      if (r.type === 'TXT') {
        for (const s of txtStrings(r.data)) {
          const eq = s.indexOf('=');
          if (eq < 0) continue;
          const k = s.slice(0, eq);
          const v = s.slice(eq + 1);
          if (k === 'name') name = v;
          else if (k === 'addr') addr = v;
          else if (k === 'port') port = Number(v);
        }
      } else if (r.type === 'SRV') {
        port ??= r.data.port;
        const target = r.data.target.toLowerCase();
        const a = records.find((x): x is StringAnswer => x.type === 'A' && x.name === target);
        addr ??= a?.data;
      }
    }
    if (!name || Buffer.byteLength(name) > 255 || !addr || !net.isIPv4(addr)) return null;
    if (port === undefined || !Number.isInteger(port) || port < 1 || port > 65535) return null;
    return { name, addr, port };
  }
}

/**
 * Announces `member` on the interface and joins every newly discovered peer it does not
 * already see alive. Returns the running discovery (stop it before stopping the member).
 */
export async function joinViaMdns(member: GossipMember, opts: Omit<MdnsDiscoveryOptions, 'name' | 'port' | 'addr'>): Promise<MdnsDiscovery> {
  const self = member.address;
  if (!self) throw new Error('start the gossip member before mDNS');
  const d = new MdnsDiscovery({ ...opts, name: member.name, addr: self.addr, port: self.port });
  d.on('peer', (p) => {
    if (member.member(p.name)?.state === 'alive') return;
    member.join([{ addr: p.addr, port: p.port }]).catch((err: unknown) => opts.onError?.(err instanceof Error ? err : new Error(String(err))));
  });
  await d.start();
  return d;
}
