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
  const options = new Map<number, Buffer>();
  options.set(OPT.messageType, Buffer.from([kind === 'offer' ? MSG.offer : MSG.ack]));
  let sid = ipCache.get(ctx.serverIp);
  if (!sid) {
    if (ipCache.size > 64) ipCache.clear();
    ipCache.set(ctx.serverIp, (sid = ipBytes(ctx.serverIp)));
  }
  options.set(OPT.serverId, sid);
  options.set(OPT.vendorClass, PXE_CLIENT);
  const guid = req.options.get(OPT.clientGuid);
  if (guid) options.set(OPT.clientGuid, guid);
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

export function ipBytes(addr: string): Buffer {
  return Buffer.from(addr.split('.').map(Number));
}

export function ipOf(b: Buffer): string {
  return [...b.subarray(0, 4)].join('.');
}
