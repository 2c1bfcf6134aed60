// The DHCP listener, on ONE named interface only (SO_BINDTODEVICE through native/netsock.c):
// proxy mode adds Pi boot information beside the LAN's own DHCP server; full mode also leases
// addresses on an isolated cluster network. Replies leave through the same interface.
import type { Socket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import type { Logger } from 'pino';
import { bindToInterface } from '../netsock.js';
import { LeaseTable } from './leases.js';
import { clientMac, DhcpParseError, messageType, MSG, OP, OPT, parseDhcp, serializeDhcp, type DhcpPacket } from './packet.js';
import { macPrefix } from './pi.js';
import { ipBytes, ipOf, proxyReply, pxeClientReply, type ProxyDecision } from './proxy.js';

export interface FullModeOptions {
  range: string;
  leaseSeconds: number;
  router?: string | undefined;
  dns?: string[] | undefined;
  leasesFile: string | null;
}

export interface DhcpServerOptions {
  interface: string;
  mode: 'proxy' | 'full';
  port?: number;
  clientPort?: number;
  piOuis: ReadonlySet<string>;
  /** Delay before answering a Pi 3 ROM, which can miss an OFFER that beats the LAN's. */
  pi3DelayMs: number;
  full?: FullModeOptions;
  log?: Logger;
  /** Also answer standard PXE/iPXE clients that are not Pis, with iPXE and this script URL. */
  pxeClients?: { ipxeScriptUrl: (serverIp: string) => string } | undefined;
  /** A Pi was answered: netboot records it. */
  onPi?: (d: ProxyDecision, req: DhcpPacket, leasedIp: string | null) => void;
}

export interface DhcpStats {
  received: number;
  malformed: number;
  ignored: number;
  offers: number;
  acks: number;
  naks: number;
}

export class DhcpServer {
  private sock: Socket | undefined;
  serverIp = '';
  private netmask = '';
  private leases: LeaseTable | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Set at start when PXE clients are served: the script URL depends only on our address. */
  private pxeCtx: { serverIp: string; ipxeScriptUrl: string } | undefined;
  readonly stats: DhcpStats = { received: 0, malformed: 0, ignored: 0, offers: 0, acks: 0, naks: 0 };

  constructor(private readonly o: DhcpServerOptions) {}

  async start(): Promise<void> {
    const addrs = networkInterfaces()[this.o.interface]?.filter((a) => a.family === 'IPv4');
    if (!addrs?.length) throw new Error(`interface ${this.o.interface} does not exist or has no IPv4 address`);
    this.serverIp = addrs[0]!.address;
    this.netmask = addrs[0]!.netmask;
    if (this.o.pxeClients) this.pxeCtx = { serverIp: this.serverIp, ipxeScriptUrl: this.o.pxeClients.ipxeScriptUrl(this.serverIp) };
    if (this.o.mode === 'full') {
      if (!this.o.full) throw new Error('full mode needs a lease range');
      this.leases = new LeaseTable(this.o.full.range, this.o.full.leaseSeconds, this.o.full.leasesFile);
    }
    // 4 MiB of queue: about 10,000 DISCOVERs waiting while a burst of new Pis is being recorded.
    this.sock = await bindToInterface(this.o.interface, this.o.port ?? 67, '0.0.0.0', 4 * 1024 * 1024);
    this.sock.on('message', (msg) => this.onPacket(msg));
    this.sock.on('error', (err) => this.o.log?.error({ err }, 'dhcp socket error'));
    this.o.log?.info({ interface: this.o.interface, address: this.serverIp, mode: this.o.mode }, 'dhcp serving');
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    await new Promise<void>((r) => (this.sock ? this.sock.close(() => r()) : r()));
    this.sock = undefined;
  }

  private onPacket(msg: Buffer): void {
    this.stats.received++;
    let req: DhcpPacket;
    try {
      req = parseDhcp(msg);
    } catch (err) {
      if (!(err instanceof DhcpParseError)) throw err;
      this.stats.malformed++;
      return;
    }
    if (req.op !== OP.request) return;
    const reply = this.o.mode === 'full' ? this.fullReply(req) : this.proxy(req);
    if (!reply) {
      this.stats.ignored++;
      return;
    }
    const { packet, decision, leasedIp } = reply;
    const type = messageType(packet);
    if (type === MSG.offer) this.stats.offers++;
    else if (type === MSG.ack) this.stats.acks++;
    else if (type === MSG.nak) this.stats.naks++;
    const send = () => {
      // Relayed requests go back to the relay; otherwise broadcast: the client has no address.
      const [to, port] = req.giaddr !== '0.0.0.0' ? [req.giaddr, this.o.port ?? 67] : ['255.255.255.255', this.o.clientPort ?? 68];
      this.sock?.send(serializeDhcp(packet), port, to);
      if (decision) this.o.onPi?.(decision, req, leasedIp);
    };
    const delay = decision?.pi.mac && macPrefix(decision.pi.mac) === 'b8:27:eb' && decision.pi.pi3Rom && this.o.mode === 'proxy' ? this.o.pi3DelayMs : 0;
    if (delay > 0) {
      const t = setTimeout(() => {
        this.timers.delete(t);
        send();
      }, delay);
      this.timers.add(t);
    } else send();
  }

  private proxy(req: DhcpPacket): { packet: DhcpPacket; decision: ProxyDecision | null; leasedIp: null } | null {
    const d = proxyReply(req, { serverIp: this.serverIp, piOuis: this.o.piOuis });
    if (d) return { packet: d.reply, decision: d, leasedIp: null };
    const pxe = this.pxeCtx && pxeClientReply(req, this.pxeCtx);
    if (pxe) this.o.log?.info({ mac: clientMac(req), file: pxe.file }, 'dhcp: answered a PXE client');
    return pxe ? { packet: pxe, decision: null, leasedIp: null } : null;
  }

  /** Full mode: an address for every client on this network, plus boot information for Pis. */
  private fullReply(req: DhcpPacket): { packet: DhcpPacket; decision: ProxyDecision | null; leasedIp: string | null } | null {
    const mac = clientMac(req);
    const type = messageType(req);
    if (!mac || !this.leases) return null;
    if (type === MSG.release) {
      this.leases.release(mac);
      return null;
    }
    let yiaddr: string | null;
    let replyType: number;
    if (type === MSG.discover) {
      yiaddr = this.leases.offer(mac);
      if (!yiaddr) {
        this.o.log?.warn({ mac }, 'dhcp: address range exhausted');
        return null;
      }
      // Reserve it now: the Pi 3 ROM takes the OFFER and never sends a REQUEST.
      this.leases.commit(mac, yiaddr);
      replyType = MSG.offer;
    } else if (type === MSG.request) {
      const sid = req.options.get(OPT.serverId);
      if (sid && ipOf(sid) !== this.serverIp) return null; // the client chose another server
      const wanted = req.options.get(OPT.requestedIp);
      const ip = wanted?.length === 4 ? ipOf(wanted) : req.ciaddr;
      if (this.leases.commit(mac, ip)) {
        yiaddr = ip;
        replyType = MSG.ack;
      } else {
        yiaddr = null;
        replyType = MSG.nak;
      }
    } else return null;

    const boot = proxyReply(req, { serverIp: this.serverIp, piOuis: this.o.piOuis });
    const pxe = !boot && this.pxeCtx ? pxeClientReply(req, this.pxeCtx, true) : null;
    const options = new Map<number, Buffer>();
    options.set(OPT.messageType, Buffer.from([replyType]));
    options.set(OPT.serverId, ipBytes(this.serverIp));
    if (replyType !== MSG.nak) {
      options.set(OPT.subnetMask, ipBytes(this.netmask));
      if (this.o.full?.router) options.set(OPT.router, ipBytes(this.o.full.router));
      if (this.o.full?.dns?.length) options.set(OPT.dns, Buffer.concat(this.o.full.dns.map(ipBytes)));
      const lease = Buffer.alloc(4);
      lease.writeUInt32BE(this.o.full!.leaseSeconds);
      options.set(OPT.leaseTime, lease);
      const extra = boot?.reply ?? pxe;
      if (extra) for (const [k, v] of extra.options) if (k !== OPT.messageType && k !== OPT.serverId) options.set(k, v);
    }
    const packet: DhcpPacket = {
      op: OP.reply, htype: req.htype, hlen: req.hlen, hops: 0, xid: req.xid, secs: 0, flags: req.flags,
      ciaddr: '0.0.0.0', yiaddr: yiaddr ?? '0.0.0.0', siaddr: boot || pxe ? this.serverIp : '0.0.0.0', giaddr: req.giaddr,
      chaddr: req.chaddr, sname: '', file: pxe?.file ?? '', options,
    };
    return { packet, decision: boot, leasedIp: yiaddr };
  }
}
