// A TFTP client that behaves like the Raspberry Pi bootloader (docs/pi-netboot.md §3): every file
// is first requested with `tsize 0 blksize N`; the Pi reads the size from the OACK, answers
// "Early terminate" (ERROR 0) and asks again from a new port; no windowsize; lockstep ACKs;
// block numbers wrap past 65535; the RRQ is retransmitted every 2 s for up to 30 s.
import { createSocket, type Socket } from 'node:dgram';
import { buildAck, buildError, buildRequest, OPCODE } from '../tftp/packet.js';

export type FetchResult =
  | { status: 'ok'; data: Buffer; size: number; ms: number }
  | { status: 'not-found'; ms: number }
  | { status: 'error'; message: string; ms: number };

export interface PiTftpOptions {
  host: string;
  port: number;
  blksize: number;
  /** RRQ retransmission interval (the Pi: about 2 s). */
  retransmitMs?: number;
  /** Give up on a file after this long (the Pi's TFTP_FILE_TIMEOUT: 30 s). */
  fileTimeoutMs?: number;
  /** Local address to send from (inside a network namespace: the leased address). */
  localAddress?: string;
}

class Channel {
  readonly sock: Socket;
  private queue: { msg: Buffer; port: number; address: string }[] = [];
  private wake: (() => void) | undefined;
  constructor(localAddress?: string) {
    this.sock = createSocket('udp4');
    this.sock.on('message', (msg, r) => {
      this.queue.push({ msg, port: r.port, address: r.address });
      this.wake?.();
    });
    this.sock.on('error', () => this.wake?.());
    this.local = localAddress;
  }
  private readonly local: string | undefined;
  bind(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.sock.once('error', reject);
      this.sock.bind(0, this.local, () => {
        this.sock.off('error', reject);
        resolve();
      });
    });
  }
  private pending: Promise<void> = Promise.resolve();
  send(buf: Buffer, port: number, host: string) {
    const sent = new Promise<void>((resolve) => this.sock.send(buf, port, host, () => resolve()));
    this.pending = this.pending.then(() => sent);
  }
  /** Closing right after a send would drop it (the final ACK, the early terminate). */
  async flush(): Promise<void> {
    await this.pending;
  }
  async next(ms: number): Promise<{ msg: Buffer; port: number; address: string } | null> {
    if (!this.queue.length) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, ms);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
    return this.queue.shift() ?? null;
  }
  close() {
    try {
      this.sock.close();
    } catch {
      /* closed */
    }
  }
}

function parseOack(msg: Buffer): Record<string, string> {
  const parts = msg.subarray(2).toString('latin1').split('\0');
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < parts.length; i += 2) if (parts[i]) out[parts[i]!.toLowerCase()] = parts[i + 1]!;
  return out;
}

/** One RRQ; with `probe` the transfer stops at the OACK (the tsize read). */
async function attempt(o: PiTftpOptions, path: string, probe: boolean): Promise<FetchResult & { tsize?: number }> {
  const t0 = Date.now();
  const retransmit = o.retransmitMs ?? 2000;
  const deadline = t0 + (o.fileTimeoutMs ?? 30_000);
  const ch = new Channel(o.localAddress);
  await ch.bind();
  try {
    const rrq = buildRequest(1, path, 'octet', { tsize: 0, blksize: o.blksize });
    ch.send(rrq, o.port, o.host);
    let tid: { port: number; address: string } | null = null;
    let blksize = 512;
    let expected = 1; // counted, not wrapped
    const chunks: Buffer[] = [];
    let lastSent = rrq;
    let lastTo = { port: o.port, address: o.host };
    let tsize: number | undefined;
    for (;;) {
      if (Date.now() > deadline) return { status: 'error', message: `timeout fetching ${path}`, ms: Date.now() - t0 };
      const m = await ch.next(retransmit);
      if (!m) {
        ch.send(lastSent, lastTo.port, lastTo.address);
        continue;
      }
      if (tid && (m.port !== tid.port || m.address !== tid.address)) continue;
      if (m.msg.length < 4) continue;
      const op = m.msg.readUInt16BE(0);
      if (op === OPCODE.error) {
        const code = m.msg.readUInt16BE(2);
        return code === 1 ? { status: 'not-found', ms: Date.now() - t0 } : { status: 'error', message: m.msg.subarray(4).toString('latin1').replace(/\0.*$/, ''), ms: Date.now() - t0 };
      }
      tid ??= { port: m.port, address: m.address };
      lastTo = tid;
      if (op === OPCODE.oack) {
        const opts = parseOack(m.msg);
        tsize = opts.tsize !== undefined ? Number(opts.tsize) : undefined;
        if (opts.blksize) blksize = Number(opts.blksize);
        if (probe) {
          ch.send(buildError(0, 'Early terminate'), tid.port, tid.address);
          return { status: 'ok', data: Buffer.alloc(0), size: tsize ?? -1, ms: Date.now() - t0, ...(tsize !== undefined ? { tsize } : {}) };
        }
        lastSent = buildAck(0);
        ch.send(lastSent, tid.port, tid.address);
        continue;
      }
      if (op !== OPCODE.data) continue;
      const block = m.msg.readUInt16BE(2);
      if (block === (expected & 0xffff)) {
        const payload = m.msg.subarray(4);
        chunks.push(Buffer.from(payload));
        lastSent = buildAck(block);
        ch.send(lastSent, tid.port, tid.address);
        expected++;
        if (payload.length < blksize) {
          const data = Buffer.concat(chunks);
          return { status: 'ok', data, size: data.length, ms: Date.now() - t0, ...(tsize !== undefined ? { tsize } : {}) };
        }
      } else if (block === ((expected - 1) & 0xffff)) {
        // A resent block we already have: the Pi acknowledges it again.
        ch.send(buildAck(block), tid.port, tid.address);
      }
    }
  } finally {
    await ch.flush();
    ch.close();
  }
}

/** Fetches a file the way the Pi does: tsize probe with early terminate, then the transfer. */
export async function piFetch(o: PiTftpOptions, path: string): Promise<FetchResult> {
  const t0 = Date.now();
  const probe = await attempt(o, path, true);
  if (probe.status !== 'ok') return probe;
  const r = await attempt(o, path, false);
  if (r.status === 'ok' && probe.size >= 0 && r.size !== probe.size) {
    return { status: 'error', message: `${path}: tsize said ${probe.size}, got ${r.size}`, ms: Date.now() - t0 };
  }
  return { ...r, ms: Date.now() - t0 };
}

/** Only the size probe (the Pi's `<prefix>/start4.elf` check). */
export async function piProbe(o: PiTftpOptions, path: string): Promise<FetchResult> {
  return attempt(o, path, true);
}
