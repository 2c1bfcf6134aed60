// The DHCP half of a Pi's network boot (docs/pi-netboot.md §1): broadcast a Pi-shaped
// DISCOVER, collect OFFERs, take the address from the LAN server's OFFER and the boot server
// from the OFFER that carries the Pi boot menu; Pi 4/5 then REQUEST and wait for the ACK, the
// Pi 3 ROM does not. Runs inside a network namespace on one interface.
//
// One deliberate difference from the real ROM: the BROADCAST flag is set, because a Linux socket
// (unlike the bootloader, which reads frames) cannot receive a unicast to an address its
// interface does not have yet.
import type { Socket } from 'node:dgram';
import { MSG, OP, OPT, parseDhcp, serializeDhcp, type DhcpPacket } from '../dhcp/packet.js';
import { ipOf } from '../dhcp/proxy.js';
import { bindToInterface } from '../netsock.js';
import { isPi3, piDhcpPacket, piXid, type PiHardware } from './models.js';

export interface DhcpLease {
  ip: string;
  netmask: string;
  router: string | null;
  /** Where to fetch boot files: option 66 if given, else option 54 of the Pi-menu OFFER. */
  tftpServer: string;
  addressServer: string;
  offers: number;
  ms: number;
}

export interface PiDhcpOptions {
  interface: string;
  serverPort?: number;
  clientPort?: number;
  /** How long to gather OFFERs after the first one (several servers answer). */
  gatherMs?: number;
  /** The Pi 3 ROM sends 5 DISCOVERs 5 s apart; later bootloaders retry for DHCP_TIMEOUT (45 s). */
  discoverIntervalMs?: number;
  attempts?: number;
}

const MENU = 'Raspberry Pi Boot';

/** Whether an OFFER's option 43 carries a boot menu this model accepts. */
export function offersPiMenu(p: DhcpPacket, model: PiHardware['model']): boolean {
  const v = p.options.get(OPT.vendorOptions)?.toString('latin1');
  if (!v) return false;
  // The Pi 3B ROM compares a fixed length: it needs the three trailing spaces.
  return model === 'pi3b' ? v.includes(`${MENU}   `) : v.includes(MENU);
}

export async function piDhcp(hw: PiHardware, o: PiDhcpOptions): Promise<DhcpLease> {
  const t0 = Date.now();
  const sock: Socket = await bindToInterface(o.interface, o.clientPort ?? 68);
  const serverPort = o.serverPort ?? 67;
  const xid = piXid(hw.model);
  // The Pi 3 ROM's xid is the same on every board: like any client, match on our MAC too.
  const chaddr = Buffer.from(hw.mac.replace(/:/g, ''), 'hex');
  const inbox: DhcpPacket[] = [];
  let wake: (() => void) | undefined;
  sock.on('message', (msg) => {
    try {
      const p = parseDhcp(msg);
      if (p.op === OP.reply && p.xid === xid && p.chaddr.subarray(0, 6).equals(chaddr)) {
        inbox.push(p);
        wake?.();
      }
    } catch {
      /* not for us */
    }
  });
  // Returns at once when packets are already waiting, else on the next packet or after `ms`.
  const waitFor = (ms: number) =>
    new Promise<void>((resolve) => {
      if (inbox.length) return resolve();
      const t = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  const send = (p: DhcpPacket) => new Promise<void>((r) => sock.send(serializeDhcp({ ...p, flags: 0x8000 }), serverPort, '255.255.255.255', () => r()));
  try {
    const attempts = o.attempts ?? 5;
    const interval = o.discoverIntervalMs ?? (isPi3(hw.model) ? 5000 : 4000);
    let address: DhcpPacket | undefined;
    let boot: DhcpPacket | undefined;
    let addressServer = '0.0.0.0';
    // Like the bootloader: without an ACK (DHCP_REQ_TIMEOUT) it starts over with a DISCOVER.
    for (let cycle = 0; ; cycle++) {
      address = undefined;
      boot = undefined;
      for (let a = 0; a < attempts && !(address && boot); a++) {
        await send(piDhcpPacket(hw, 'discover', xid));
        const until = Date.now() + interval;
        while (Date.now() < until && !(address && boot)) {
          await waitFor(until - Date.now());
          for (const p of inbox.splice(0)) {
            if (p.options.get(OPT.messageType)?.[0] !== MSG.offer) continue;
            if (!address && p.yiaddr !== '0.0.0.0') address = p;
            if (!boot && offersPiMenu(p, hw.model)) boot = p;
          }
          // Give slower servers a moment once the first answer is in.
          if ((address || boot) && !(address && boot)) await waitFor(Math.min(o.gatherMs ?? 1500, until - Date.now()));
        }
      }
      if (!address) throw new Error('no DHCP server offered an address');
      if (!boot) throw new Error('no DHCP offer carried the Raspberry Pi boot menu');
      addressServer = ipOf(address.options.get(OPT.serverId) ?? Buffer.from([0, 0, 0, 0]));
      if (isPi3(hw.model)) break; // the Pi 3 ROM takes the OFFER and never REQUESTs
      // Pi 4/5: REQUEST the offered address and wait for the address server's ACK.
      await send(piDhcpPacket(hw, 'request', xid, { requestedIp: address.yiaddr, serverId: addressServer }));
      const until = Date.now() + 4000; // DHCP_REQ_TIMEOUT
      let acked = false;
      while (!acked) {
        if (Date.now() >= until && !inbox.length) break;
        await waitFor(Math.max(0, until - Date.now()));
        for (const p of inbox.splice(0)) {
          const type = p.options.get(OPT.messageType)?.[0];
          if (type === MSG.ack && p.yiaddr === address.yiaddr) acked = true;
          if (type === MSG.nak) throw new Error(`the DHCP server ${addressServer} refused the address`);
        }
      }
      if (acked) break;
      if (cycle >= 2) throw new Error('no DHCPACK for the requested address');
    }
    const opt66 = boot.options.get(OPT.tftpServer)?.toString('latin1').replace(/\0.*$/, '');
    const mask = address.options.get(OPT.subnetMask);
    const router = address.options.get(OPT.router);
    return {
      ip: address.yiaddr,
      netmask: mask?.length === 4 ? ipOf(mask) : '255.255.255.0',
      router: router?.length ? ipOf(router) : null,
      tftpServer: opt66 && /^\d+\.\d+\.\d+\.\d+$/.test(opt66) ? opt66 : ipOf(boot.options.get(OPT.serverId)!),
      addressServer,
      offers: 0,
      ms: Date.now() - t0,
    };
  } finally {
    sock.close();
  }
}

export function prefixLength(netmask: string): number {
  return netmask.split('.').reduce((n, p) => n + Number(p).toString(2).replace(/0/g, '').length, 0);
}
