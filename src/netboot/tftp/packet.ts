// TFTP packet codec: RFC 1350 (RRQ/WRQ/DATA/ACK/ERROR) and RFC 2347 (OACK). Pure.

export const OPCODE = { rrq: 1, wrq: 2, data: 3, ack: 4, error: 5, oack: 6 } as const;

export const TFTP_ERROR = {
  undefined: 0,
  notFound: 1,
  accessViolation: 2,
  diskFull: 3,
  illegalOperation: 4,
  unknownTid: 5,
  fileExists: 6,
  noSuchUser: 7,
  optionRefused: 8,
} as const;

export class TftpParseError extends Error {
  constructor(readonly reason: string) {
    super(`malformed TFTP packet: ${reason}`);
  }
}

export interface TftpRequest {
  opcode: typeof OPCODE.rrq | typeof OPCODE.wrq;
  filename: string;
  mode: 'octet' | 'netascii';
  /** Option names lower-cased; values as sent. */
  options: Record<string, string>;
}

const MAX_FILENAME = 1024;

export function opcodeOf(buf: Buffer): number {
  if (buf.length < 2) throw new TftpParseError('shorter than an opcode');
  return buf.readUInt16BE(0);
}

/** Parses an RRQ or WRQ: opcode, filename NUL, mode NUL, then option/value NUL pairs. */
export function parseRequest(buf: Buffer): TftpRequest {
  const opcode = opcodeOf(buf);
  if (opcode !== OPCODE.rrq && opcode !== OPCODE.wrq) throw new TftpParseError(`not a request (opcode ${opcode})`);
  const fields: string[] = [];
  let start = 2;
  while (start < buf.length) {
    const nul = buf.indexOf(0, start);
    if (nul < 0) throw new TftpParseError('field not NUL-terminated');
    fields.push(buf.subarray(start, nul).toString('latin1'));
    start = nul + 1;
  }
  if (fields.length < 2) throw new TftpParseError('missing filename or mode');
  const [filename, rawMode, ...rest] = fields as [string, string, ...string[]];
  if (!filename || filename.length > MAX_FILENAME) throw new TftpParseError('empty or overlong filename');
  const mode = rawMode.toLowerCase();
  if (mode !== 'octet' && mode !== 'netascii') throw new TftpParseError(`unsupported mode "${rawMode.slice(0, 20)}"`);
  // Some clients pad the packet with a trailing empty field; an odd leftover is ignored.
  const options: Record<string, string> = {};
  for (let i = 0; i + 1 < rest.length; i += 2) {
    const name = rest[i]!.toLowerCase();
    if (name && !(name in options)) options[name] = rest[i + 1]!;
  }
  return { opcode, filename, mode, options };
}

export function parseAck(buf: Buffer): number {
  if (buf.length < 4 || buf.readUInt16BE(0) !== OPCODE.ack) throw new TftpParseError('not an ACK');
  return buf.readUInt16BE(2);
}

export function parseError(buf: Buffer): { code: number; message: string } {
  if (buf.length < 4 || buf.readUInt16BE(0) !== OPCODE.error) throw new TftpParseError('not an ERROR');
  const end = buf.indexOf(0, 4);
  return { code: buf.readUInt16BE(2), message: buf.subarray(4, end < 0 ? buf.length : end).toString('latin1') };
}

export function buildAck(block: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt16BE(OPCODE.ack, 0);
  b.writeUInt16BE(block & 0xffff, 2);
  return b;
}

export function buildError(code: number, message: string): Buffer {
  const msg = Buffer.from(message.slice(0, 200), 'latin1');
  const b = Buffer.alloc(5 + msg.length);
  b.writeUInt16BE(OPCODE.error, 0);
  b.writeUInt16BE(code, 2);
  msg.copy(b, 4);
  return b;
}

export function buildOack(options: Record<string, string | number>): Buffer {
  const parts: Buffer[] = [Buffer.from([0, OPCODE.oack])];
  for (const [k, v] of Object.entries(options)) parts.push(Buffer.from(`${k}\0${v}\0`, 'latin1'));
  return Buffer.concat(parts);
}

export function buildRequest(opcode: 1 | 2, filename: string, mode: string, options: Record<string, string | number> = {}): Buffer {
  let s = `${filename}\0${mode}\0`;
  for (const [k, v] of Object.entries(options)) s += `${k}\0${v}\0`;
  return Buffer.concat([Buffer.from([0, opcode]), Buffer.from(s, 'latin1')]);
}

/** RFC 1350 netascii: CR → CR NUL, LF → CR LF. */
export function toNetascii(data: Buffer): Buffer {
  let extra = 0;
  for (const c of data) if (c === 10 || c === 13) extra++;
  if (extra === 0) return data;
  const out = Buffer.allocUnsafe(data.length + extra);
  let j = 0;
  for (const c of data) {
    if (c === 10) {
      out[j++] = 13;
      out[j++] = 10;
    } else if (c === 13) {
      out[j++] = 13;
      out[j++] = 0;
    } else out[j++] = c;
  }
  return out;
}
