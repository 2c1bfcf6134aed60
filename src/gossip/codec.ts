// Wire format of the gossip protocol: compact binary, big-endian, no schema library.
//
// A datagram is always "compound" (memberlist sends single messages bare and wraps several in a
// compound; one shape is simpler to validate):
//   0xD7 | version | kind=1 | sender:str8 | count:u8 | count × (len:u16 | message)
// A push-pull stream payload (TCP in production) is:
//   0xD7 | version | kind=2 | sender:str8 | flags:u8 (bit 0 join) | count:u32 | count × node
// str8 = u8 byte length + UTF-8; str16 = u16 length + UTF-8; meta = u8 count × (str8 key, str16 value).
//
// The sender's name travels in every datagram so a receiver can feed its phi detector for that
// peer and ignore its own echoes; it costs ~10 bytes per packet.
//
// Everything that arrives is untrusted: decode* never throw, they return null for anything
// malformed (bad magic or version, truncated, trailing bytes, empty names, port 0, unknown
// type or state), and the caller counts and drops it.

export const MAGIC = 0xd7;
export const VERSION = 1;
const KIND_PACKET = 1;
const KIND_PUSH_PULL = 2;

/** Bytes each message adds to a datagram beyond its own encoding (its length prefix). */
export const PART_OVERHEAD = 2;
/** Upper bound on encoded meta (memberlist's MetaMaxSize is 512 too). */
export const META_MAX_BYTES = 512;
/** Push-pull payloads above this are refused: 100,000 members of ~100 bytes. */
export const MAX_STREAM_BYTES = 16 * 1024 * 1024;
const MAX_STREAM_NODES = 200_000;

export type MemberState = 'alive' | 'suspect' | 'dead' | 'left';
const STATES: readonly MemberState[] = ['alive', 'suspect', 'dead', 'left'];

export type Meta = Record<string, string>;

export interface NodeAddress {
  name: string;
  addr: string;
  port: number;
}

export type GossipMessage =
  /** Direct probe. `target` lets a member reject a ping meant for whoever had its address before. */
  | { type: 'ping'; seq: number; target: string; source: NodeAddress }
  /**
   * Ask the receiver to probe `target` for us within `timeoutMs` (the time our probe has left);
   * `nack` asks for a nack when no ack came in time (Lifeguard).
   */
  | { type: 'ping-req'; seq: number; target: NodeAddress; nack: boolean; timeoutMs: number; source: NodeAddress }
  | { type: 'ack'; seq: number }
  | { type: 'nack'; seq: number }
  | { type: 'alive'; node: string; addr: string; port: number; incarnation: number; meta: Meta }
  | { type: 'suspect'; node: string; incarnation: number; from: string }
  | { type: 'dead'; node: string; incarnation: number; from: string };

export interface DecodedPacket {
  sender: string;
  messages: GossipMessage[];
}

export interface PushNodeState {
  name: string;
  addr: string;
  port: number;
  incarnation: number;
  state: MemberState;
  meta: Meta;
}

export interface PushPull {
  sender: string;
  join: boolean;
  nodes: PushNodeState[];
}

const T_PING = 1;
const T_PING_REQ = 2;
const T_ACK = 3;
const T_NACK = 4;
const T_ALIVE = 5;
const T_SUSPECT = 6;
const T_DEAD = 7;

class Writer {
  buf: Buffer;
  off = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }
  private room(n: number): void {
    if (this.off + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.off + n));
    this.buf.copy(next, 0, 0, this.off);
    this.buf = next;
  }
  u8(v: number): void {
    this.room(1);
    this.buf[this.off++] = v;
  }
  u16(v: number): void {
    this.room(2);
    this.buf.writeUInt16BE(v, this.off);
    this.off += 2;
  }
  u32(v: number): void {
    this.room(4);
    this.buf.writeUInt32BE(v >>> 0, this.off);
    this.off += 4;
  }
  str8(s: string): void {
    const n = Buffer.byteLength(s);
    if (n > 255) throw new RangeError(`string longer than 255 bytes: ${s.slice(0, 40)}…`);
    this.room(1 + n);
    this.buf[this.off++] = n;
    this.off += this.buf.write(s, this.off, 'utf8');
  }
  str16(s: string): void {
    const n = Buffer.byteLength(s);
    if (n > 0xffff) throw new RangeError('string longer than 65535 bytes');
    this.u16(n);
    this.room(n);
    this.off += this.buf.write(s, this.off, 'utf8');
  }
  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.off);
    this.off += b.length;
  }
  meta(m: Meta): void {
    const keys = Object.keys(m);
    if (keys.length > 255) throw new RangeError('more than 255 meta keys');
    this.u8(keys.length);
    for (const k of keys) {
      this.str8(k);
      this.str16(m[k]!);
    }
  }
  done(): Buffer {
    return this.buf.subarray(0, this.off);
  }
}

/** Thrown inside the reader only; decode* turn it into null. */
class Malformed extends Error {}

class Reader {
  off: number;
  constructor(
    readonly buf: Buffer,
    start = 0,
    readonly end = buf.length,
  ) {
    this.off = start;
  }
  private need(n: number): void {
    if (this.off + n > this.end) throw new Malformed('truncated');
  }
  u8(): number {
    this.need(1);
    return this.buf[this.off++]!;
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.off);
    this.off += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.off);
    this.off += 4;
    return v;
  }
  str8(allowEmpty = false): string {
    const n = this.u8();
    if (n === 0 && !allowEmpty) throw new Malformed('empty string');
    this.need(n);
    const s = this.buf.toString('utf8', this.off, this.off + n);
    this.off += n;
    return s;
  }
  str16(): string {
    const n = this.u16();
    this.need(n);
    const s = this.buf.toString('utf8', this.off, this.off + n);
    this.off += n;
    return s;
  }
  port(): number {
    const p = this.u16();
    if (p === 0) throw new Malformed('port 0');
    return p;
  }
  meta(): Meta {
    const start = this.off;
    const n = this.u8();
    const m: Meta = {};
    for (let i = 0; i < n; i++) {
      const k = this.str8();
      // Assigning "__proto__" would silently do nothing (or worse, on an object value).
      if (k === '__proto__') throw new Malformed('meta key __proto__');
      m[k] = this.str16();
    }
    if (this.off - start > META_MAX_BYTES) throw new Malformed('meta too large');
    return m;
  }
  address(): NodeAddress {
    const name = this.str8();
    const addr = this.str8();
    return { name, addr, port: this.port() };
  }
}

function bufferOf(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** Throws for meta we would refuse to send; run on our own configuration, never on input. */
export function validateMeta(meta: Meta): void {
  if (Object.hasOwn(meta, '__proto__')) throw new RangeError('meta key __proto__ is not allowed');
  const w = new Writer(64);
  w.meta(meta);
  if (w.off > META_MAX_BYTES) throw new RangeError(`meta encodes to ${w.off} bytes, more than ${META_MAX_BYTES}`);
}

export function encodeMessage(m: GossipMessage): Buffer {
  const w = new Writer(64);
  switch (m.type) {
    case 'ping':
      w.u8(T_PING);
      w.u32(m.seq);
      w.str8(m.target);
      writeAddress(w, m.source);
      break;
    case 'ping-req':
      w.u8(T_PING_REQ);
      w.u32(m.seq);
      writeAddress(w, m.target);
      w.u8(m.nack ? 1 : 0);
      w.u16(Math.max(1, Math.min(0xffff, Math.round(m.timeoutMs))));
      writeAddress(w, m.source);
      break;
    case 'ack':
    case 'nack':
      w.u8(m.type === 'ack' ? T_ACK : T_NACK);
      w.u32(m.seq);
      break;
    case 'alive':
      w.u8(T_ALIVE);
      w.u32(m.incarnation);
      w.str8(m.node);
      w.str8(m.addr);
      w.u16(m.port);
      w.meta(m.meta);
      break;
    case 'suspect':
    case 'dead':
      w.u8(m.type === 'suspect' ? T_SUSPECT : T_DEAD);
      w.u32(m.incarnation);
      w.str8(m.node);
      w.str8(m.from);
      break;
  }
  return w.done();
}

function writeAddress(w: Writer, a: NodeAddress): void {
  w.str8(a.name);
  w.str8(a.addr);
  w.u16(a.port);
}

/** Header bytes of a datagram from `sender` (magic, version, kind, name, count). */
export function packetHeaderSize(sender: string): number {
  return 3 + 1 + Buffer.byteLength(sender) + 1;
}

export function encodePacket(sender: string, parts: readonly Uint8Array[]): Buffer {
  if (parts.length === 0 || parts.length > 255) throw new RangeError(`a packet carries 1..255 messages, not ${parts.length}`);
  let size = packetHeaderSize(sender);
  for (const p of parts) size += PART_OVERHEAD + p.length;
  const w = new Writer(size);
  w.u8(MAGIC);
  w.u8(VERSION);
  w.u8(KIND_PACKET);
  w.str8(sender);
  w.u8(parts.length);
  for (const p of parts) {
    if (p.length > 0xffff) throw new RangeError('message larger than 64 KiB');
    w.u16(p.length);
    w.bytes(p);
  }
  return w.done();
}

export function decodePacket(data: Uint8Array): DecodedPacket | null {
  try {
    const buf = bufferOf(data);
    const r = new Reader(buf);
    if (r.u8() !== MAGIC || r.u8() !== VERSION || r.u8() !== KIND_PACKET) return null;
    const sender = r.str8();
    const count = r.u8();
    if (count === 0) return null;
    const messages: GossipMessage[] = [];
    for (let i = 0; i < count; i++) {
      const len = r.u16();
      const end = r.off + len;
      if (end > buf.length) return null;
      const mr = new Reader(buf, r.off, end);
      messages.push(readMessage(mr));
      if (mr.off !== end) return null;
      r.off = end;
    }
    if (r.off !== buf.length) return null;
    return { sender, messages };
  } catch {
    return null;
  }
}

function readMessage(r: Reader): GossipMessage {
  const type = r.u8();
  switch (type) {
    case T_PING: {
      const seq = r.u32();
      const target = r.str8();
      return { type: 'ping', seq, target, source: r.address() };
    }
    case T_PING_REQ: {
      const seq = r.u32();
      const target = r.address();
      const flags = r.u8();
      if (flags > 1) throw new Malformed('flags');
      const timeoutMs = r.u16();
      if (timeoutMs === 0) throw new Malformed('timeout 0');
      return { type: 'ping-req', seq, target, nack: flags === 1, timeoutMs, source: r.address() };
    }
    case T_ACK:
      return { type: 'ack', seq: r.u32() };
    case T_NACK:
      return { type: 'nack', seq: r.u32() };
    case T_ALIVE: {
      const incarnation = r.u32();
      const node = r.str8();
      const addr = r.str8();
      const port = r.port();
      return { type: 'alive', node, addr, port, incarnation, meta: r.meta() };
    }
    case T_SUSPECT:
    case T_DEAD: {
      const incarnation = r.u32();
      const node = r.str8();
      const from = r.str8();
      return { type: type === T_SUSPECT ? 'suspect' : 'dead', node, incarnation, from };
    }
    default:
      throw new Malformed(`unknown message type ${type}`);
  }
}

export function encodePushPull(p: PushPull): Buffer {
  const w = new Writer(64 + p.nodes.length * 48);
  w.u8(MAGIC);
  w.u8(VERSION);
  w.u8(KIND_PUSH_PULL);
  w.str8(p.sender);
  w.u8(p.join ? 1 : 0);
  w.u32(p.nodes.length);
  for (const n of p.nodes) {
    w.str8(n.name);
    w.str8(n.addr);
    w.u16(n.port);
    w.u32(n.incarnation);
    w.u8(STATES.indexOf(n.state));
    w.meta(n.meta);
  }
  return w.done();
}

export function decodePushPull(data: Uint8Array): PushPull | null {
  try {
    const buf = bufferOf(data);
    if (buf.length > MAX_STREAM_BYTES) return null;
    const r = new Reader(buf);
    if (r.u8() !== MAGIC || r.u8() !== VERSION || r.u8() !== KIND_PUSH_PULL) return null;
    const sender = r.str8();
    const flags = r.u8();
    if (flags > 1) return null;
    const count = r.u32();
    if (count > MAX_STREAM_NODES) return null;
    const nodes: PushNodeState[] = [];
    for (let i = 0; i < count; i++) {
      const name = r.str8();
      const addr = r.str8();
      const port = r.port();
      const incarnation = r.u32();
      const state = STATES[r.u8()];
      if (state === undefined) return null;
      nodes.push({ name, addr, port, incarnation, state, meta: r.meta() });
    }
    if (r.off !== buf.length) return null;
    return { sender, join: flags === 1, nodes };
  } catch {
    return null;
  }
}
