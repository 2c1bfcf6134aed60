// What Drover answers to a Pi's DHCP packet: pure, so golden tests can pin the bytes.
// Proxy mode adds boot information only (yiaddr 0.0.0.0); the LAN's DHCP server gives the address.
import { identifyPi, PXE_VENDOR_PREFIX, type PiIdentity } from './pi.js';
import { messageType, MSG, OP, OPT, type DhcpPacket } from './packet.js';

/** The boot menu text. Pi 3B needs the three trailing spaces (ROM string-length bug); later
 * bootloaders match a substring, so the padded form works for every model. */
export const PI_MENU_TEXT = 'Raspberry Pi Boot   ';

/**
 * PXE vendor options (option 43) as dnsmasq's `pxe-service=0,"<text>"` builds them:
 * sub-option 6 (discovery control) = 3, sub-option 10 (menu prompt, timeout 0, "PXE"),
 * sub-option 9 (boot menu: type 0, length, text), end.
 */
export function pxeMenuOption(text = PI_MENU_TEXT, discoveryControl = 3): Buffer {
  const key = `${discoveryControl}:${text}`;
  let cached = menuCache.get(key);
  if (!cached) menuCache.set(key, (cached = buildMenu(text, discoveryControl)));
  return cached;
}

/** Replies share these buffers: they are only ever read. */
const menuCache = new Map<string, Buffer>();
const PXE_CLIENT = Buffer.from(PXE_VENDOR_PREFIX, 'latin1');
const ipCache = new Map<string, Buffer>();

function buildMenu(text: string, discoveryControl: number): Buffer {
  const t = Buffer.from(text, 'latin1');
  return Buffer.concat([
    Buffer.from([6, 1, discoveryControl]),
    Buffer.from([10, 4, 0]),
    Buffer.from('PXE', 'latin1'),
    Buffer.from([9, t.length + 3, 0, 0, t.length]),
    t,
    Buffer.from([255]),
  ]);
}

export interface ProxyContext {
  /** Drover's address on the interface the request came in on: option 54 and siaddr. */
  serverIp: string;
  /** TFTP server address if not serverIp (sent as option 66 too). */
  tftpIp?: string | undefined;
  /** Send option 66 even when it equals serverIp. */
  sendOption66?: boolean | undefined;
  menuText?: string | undefined;
  piOuis: ReadonlySet<string>;
}

export interface ProxyDecision {
  reply: DhcpPacket;
  pi: PiIdentity;
  kind: 'offer' | 'ack';
}

/** The proxy reply to a Pi's DISCOVER (OFFER) or Pi 4/5 REQUEST (ACK); null for anything else. */
export function proxyReply(req: DhcpPacket, ctx: ProxyContext): ProxyDecision | null {
  if (req.op !== OP.request) return null;
  const type = messageType(req);
  let kind: ProxyDecision['kind'];
  let pi: PiIdentity | null;
  if (type === MSG.discover) {
    kind = 'offer';
    pi = identifyPi(req, ctx.piOuis, true);
  } else if (type === MSG.request) {
    // Pi 4/5 REQUESTs omit option 60; recognise them by option 97 or MAC prefix alone.
    kind = 'ack';
    pi = identifyPi(req, ctx.piOuis, false);
    // Its option 54 names the LAN server whose lease it takes; the boot ACK is ours regardless.
  } else {
    return null;
  }
  if (!pi) return null;
  const tftp = ctx.tftpIp ?? ctx.serverIp;
  const options = pxeOptions(req, kind === 'offer' ? MSG.offer : MSG.ack, ctx.serverIp);
  if (ctx.sendOption66 || tftp !== ctx.serverIp) options.set(OPT.tftpServer, Buffer.from(tftp, 'latin1'));
  options.set(OPT.vendorOptions, pxeMenuOption(ctx.menuText ?? PI_MENU_TEXT));
  return {
    kind,
    pi,
    reply: {
      op: OP.reply,
      htype: req.htype,
      hlen: req.hlen,
      hops: 0,
      xid: req.xid,
      secs: 0,
      flags: req.flags,
      ciaddr: '0.0.0.0',
      yiaddr: '0.0.0.0',
      siaddr: tftp,
      giaddr: req.giaddr,
      chaddr: req.chaddr,
      sname: '',
      file: '',
      options,
    },
  };
}

/** What every PXE answer starts with, in this order: 53, 54, 60 "PXEClient", 97 echoed. */
function pxeOptions(req: DhcpPacket, type: number, serverIp: string): Map<number, Buffer> {
  let sid = ipCache.get(serverIp);
  if (!sid) {
    if (ipCache.size > 64) ipCache.clear();
    ipCache.set(serverIp, (sid = ipBytes(serverIp)));
  }
  const options = new Map<number, Buffer>([[OPT.messageType, Buffer.from([type])], [OPT.serverId, sid], [OPT.vendorClass, PXE_CLIENT]]);
  const guid = req.options.get(OPT.clientGuid);
  if (guid) options.set(OPT.clientGuid, guid);
  return options;
}

export function ipBytes(addr: string): Buffer {
  return Buffer.from(addr.split('.').map(Number));
}

export function ipOf(b: Buffer): string {
  return [...b.subarray(0, 4)].join('.');
}

/** Boot files for standard PXE ROMs by client architecture (option 93, RFC 4578), iPXE's names. */
export const PXE_BOOTFILES: Record<number, string> = {
  0: 'undionly.kpxe', // x86 BIOS
  6: 'ipxe-i386.efi', // x86 UEFI
  7: 'ipxe.efi', // x64 UEFI
  9: 'ipxe.efi', // x64 UEFI (EBC id used by some firmware)
  11: 'ipxe-arm64.efi', // ARM64 UEFI
};

export interface PxeClientContext {
  serverIp: string;
  tftpIp?: string | undefined;
  /** Where iPXE fetches its script (an http:// URL). */
  ipxeScriptUrl: string;
}

/** iPXE says who it is in the user class (option 77) and its own option 175. */
export function isIpxe(req: DhcpPacket): boolean {
  return req.options.has(175) || (req.options.get(77)?.toString('latin1').includes('iPXE') ?? false);
}

/**
 * For users who enable it (`--pxe-clients on`): the proxy OFFER to a standard PXE or iPXE client
 * that is not a Pi. PXE ROMs get iPXE by architecture (discovery control 8: "boot the file named
 * in this offer", no boot server discovery); iPXE gets the URL of Drover's script. Null for
 * anything else (the Pi logic runs first and takes Pis).
 */
export function pxeClientReply(req: DhcpPacket, ctx: PxeClientContext, alsoRequest = false): DhcpPacket | null {
  const type = messageType(req);
  // Proxy mode answers the DISCOVER; full mode also puts the boot file into the REQUEST's ACK.
  if (req.op !== OP.request || !(type === MSG.discover || (alsoRequest && type === MSG.request))) return null;
  const vc = req.options.get(OPT.vendorClass)?.toString('latin1') ?? '';
  const ipxe = isIpxe(req);
  if (!vc.startsWith(PXE_VENDOR_PREFIX) && !ipxe) return null;
  const archOpt = req.options.get(OPT.clientArch);
  const arch = archOpt && archOpt.length >= 2 ? archOpt.readUInt16BE(0) : 0;
  const file = ipxe ? ctx.ipxeScriptUrl : PXE_BOOTFILES[arch];
  if (!file) return null;
  const tftp = ctx.tftpIp ?? ctx.serverIp;
  const options = pxeOptions(req, MSG.offer, ctx.serverIp);
  options.set(OPT.vendorOptions, Buffer.from([6, 1, 8, 255]));
  if (!ipxe) options.set(OPT.tftpServer, Buffer.from(tftp, 'latin1'));
  options.set(OPT.bootfile, Buffer.from(file, 'latin1'));
  return {
    op: OP.reply, htype: req.htype, hlen: req.hlen, hops: 0, xid: req.xid, secs: 0, flags: req.flags,
    ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: tftp, giaddr: req.giaddr, chaddr: req.chaddr, sname: '', file, options,
  };
}
