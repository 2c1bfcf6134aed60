// DHCPv4/BOOTP packet codec (RFC 2131, 2132). Pure: bytes in, object out and back. Parsing is
// strict about lengths so that malformed input throws DhcpParseError instead of reading junk.

export const DHCP_MAGIC = 0x63825363;
const HEADER_LEN = 236;
const MIN_REPLY_LEN = 300; // BOOTP minimum; some ROMs drop shorter replies

export const OP = { request: 1, reply: 2 } as const;

export const MSG = { discover: 1, offer: 2, request: 3, decline: 4, ack: 5, nak: 6, release: 7, inform: 8 } as const;
export type MessageType = (typeof MSG)[keyof typeof MSG];

export const OPT = {
  pad: 0,
  subnetMask: 1,
  router: 3,
  dns: 6,
  hostname: 12,
  requestedIp: 50,
  leaseTime: 51,
  overload: 52,
  messageType: 53,
  serverId: 54,
  paramList: 55,
  maxSize: 57,
  renewal: 58,
  rebinding: 59,
  vendorClass: 60,
  clientId: 61,
  tftpServer: 66,
  bootfile: 67,
  clientArch: 93,
  clientNdi: 94,
  clientGuid: 97,
  vendorOptions: 43,
  end: 255,
} as const;

export class DhcpParseError extends Error {
  constructor(readonly reason: string) {
    super(`malformed DHCP packet: ${reason}`);
  }
}

export interface DhcpPacket {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  /** Client hardware address, 16 bytes as sent. */
  chaddr: Buffer;
  sname: string;
  file: string;
  /** Options in arrival order; a code that repeats is concatenated (RFC 3396). Values parsed
   * from a packet are views into its buffer (which dgram allocates afresh per message). */
  options: Map<number, Buffer>;
}

const ip = (b: Buffer, off: number) => `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;

function cstring(b: Buffer): string {
  const nul = b.indexOf(0);
  return b.subarray(0, nul < 0 ? b.length : nul).toString('latin1');
}

export function parseDhcp(buf: Buffer): DhcpPacket {
  if (buf.length < HEADER_LEN + 4) throw new DhcpParseError(`too short (${buf.length} bytes)`);
  const op = buf[0]!;
  if (op !== OP.request && op !== OP.reply) throw new DhcpParseError(`bad op ${op}`);
  const hlen = buf[2]!;
  if (hlen > 16) throw new DhcpParseError(`bad hlen ${hlen}`);
  if (buf.readUInt32BE(HEADER_LEN) !== DHCP_MAGIC) throw new DhcpParseError('no DHCP magic cookie');
  const options = new Map<number, Buffer>();
  let i = HEADER_LEN + 4;
  let ended = false;
  while (i < buf.length) {
    const code = buf[i]!;
    if (code === OPT.pad) {
      i++;
      continue;
    }
    if (code === OPT.end) {
      ended = true;
      break;
    }
    if (i + 1 >= buf.length) throw new DhcpParseError(`option ${code} has no length`);
    const len = buf[i + 1]!;
    if (i + 2 + len > buf.length) throw new DhcpParseError(`option ${code} overruns the packet`);
    const value = buf.subarray(i + 2, i + 2 + len);
    const prev = options.get(code);
    options.set(code, prev ? Buffer.concat([prev, value]) : value);
    i += 2 + len;
  }
  if (!ended) throw new DhcpParseError('options not terminated');
  return {
    op,
    htype: buf[1]!,
    hlen,
    hops: buf[3]!,
    xid: buf.readUInt32BE(4),
    secs: buf.readUInt16BE(8),
    flags: buf.readUInt16BE(10),
    ciaddr: ip(buf, 12),
    yiaddr: ip(buf, 16),
    siaddr: ip(buf, 20),
    giaddr: ip(buf, 24),
    chaddr: buf.subarray(28, 44),
    sname: cstring(buf.subarray(44, 108)),
    file: cstring(buf.subarray(108, 236)),
    options,
  };
}

/** Parsed addresses: replies repeat the same few (our own, 0.0.0.0, the broadcast). */
const ipParts = new Map<string, number[]>();

function writeIp(b: Buffer, off: number, addr: string): void {
  if (addr === '0.0.0.0') return; // the buffer is zeroed
  let parts = ipParts.get(addr);
  if (!parts) {
    parts = addr.split('.').map(Number);
    if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new Error(`bad IPv4 address ${addr}`);
    if (ipParts.size > 1024) ipParts.clear();
    ipParts.set(addr, parts);
  }
  b[off] = parts[0]!;
  b[off + 1] = parts[1]!;
  b[off + 2] = parts[2]!;
  b[off + 3] = parts[3]!;
}

export function serializeDhcp(p: DhcpPacket): Buffer {
  // Values over 255 bytes are split into several instances of the option (RFC 3396).
  let optLen = 1; // the end option
  for (const value of p.options.values()) optLen += value.length === 0 ? 2 : value.length + 2 * Math.ceil(value.length / 255);
  const out = Buffer.alloc(Math.max(MIN_REPLY_LEN, HEADER_LEN + 4 + optLen));
  out[0] = p.op;
  out[1] = p.htype;
  out[2] = p.hlen;
  out[3] = p.hops;
  out.writeUInt32BE(p.xid >>> 0, 4);
  out.writeUInt16BE(p.secs, 8);
  out.writeUInt16BE(p.flags, 10);
  writeIp(out, 12, p.ciaddr);
  writeIp(out, 16, p.yiaddr);
  writeIp(out, 20, p.siaddr);
  writeIp(out, 24, p.giaddr);
  p.chaddr.copy(out, 28, 0, 16);
  if (p.sname) out.write(p.sname.slice(0, 63), 44, 'latin1');
  if (p.file) out.write(p.file.slice(0, 127), 108, 'latin1');
  out.writeUInt32BE(DHCP_MAGIC, HEADER_LEN);
  let i = HEADER_LEN + 4;
  for (const [code, value] of p.options) {
    let off = 0;
    do {
      const n = Math.min(255, value.length - off);
      out[i] = code;
      out[i + 1] = n;
      value.copy(out, i + 2, off, off + n);
      i += 2 + n;
      off += n;
    } while (off < value.length);
  }
  out[i] = OPT.end;
  return out;
}

export function messageType(p: DhcpPacket): number | undefined {
  const v = p.options.get(OPT.messageType);
  return v && v.length === 1 ? v[0] : undefined;
}

/** The client MAC as `aa:bb:cc:dd:ee:ff` (Ethernet only). */
export function clientMac(p: DhcpPacket): string | null {
  if (p.htype !== 1 || p.hlen !== 6) return null;
  const c = p.chaddr;
  return `${HEX[c[0]!]}:${HEX[c[1]!]}:${HEX[c[2]!]}:${HEX[c[3]!]}:${HEX[c[4]!]}:${HEX[c[5]!]}`;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
