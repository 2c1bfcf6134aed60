// One read transfer on its own ephemeral socket (the TID, RFC 1350): option negotiation
// (RFC 2347/2348/2349/7440), windowed sending, block-number rollover, retransmission with
// back-off. Duplicate or stale ACKs never trigger sends (no Sorcerer's Apprentice).
import type { Socket } from 'node:dgram';
import { dataPacket } from './data-packets.js';
import { buildOack, OPCODE, TFTP_ERROR, parseAck, parseError } from './packet.js';

export interface TransferLimits {
  maxBlksize: number;
  maxWindowsize: number;
  /** First retransmission timeout when the client did not negotiate one. */
  timeoutMs: number;
  maxRetries: number;
}

export type TransferOutcome = 'complete' | 'early-terminate' | 'client-error' | 'timeout' | 'aborted';

export interface TransferReport {
  client: { address: string; port: number };
  path: string;
  size: number;
  /** Bytes of file data acknowledged by the client. */
  bytesAcked: number;
  blksize: number;
  windowsize: number;
  outcome: TransferOutcome;
  clientError?: { code: number; message: string };
  retransmits: number;
  ms: number;
}

export interface NegotiatedOptions {
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  /** The OACK to send first, or null when the client asked for no option we honour. */
  oack: Record<string, number> | null;
}

/** RFC 2347: honour blksize (8–65464), tsize (RRQ: 0 → size), timeout (1–255 s), windowsize (1–65535). */
export function negotiate(requested: Record<string, string>, size: number, limits: TransferLimits): NegotiatedOptions {
  const oack: Record<string, number> = {};
  const int = (v: string | undefined) => (v !== undefined && /^\d{1,10}$/.test(v) ? Number(v) : NaN);
  let blksize = 512;
  let windowsize = 1;
  let timeoutMs = limits.timeoutMs;
  const b = int(requested.blksize);
  if (b >= 8 && b <= 65464) oack.blksize = blksize = Math.min(b, limits.maxBlksize);
  const t = int(requested.tsize);
  if (t === 0) oack.tsize = size;
  const to = int(requested.timeout);
  if (to >= 1 && to <= 255) {
    oack.timeout = to;
    timeoutMs = to * 1000;
  }
  const w = int(requested.windowsize);
  if (w >= 1 && w <= 65535) oack.windowsize = windowsize = Math.min(w, limits.maxWindowsize);
  return { blksize, windowsize, timeoutMs, oack: Object.keys(oack).length ? oack : null };
}

export class Transfer {
  private readonly totalBlocks: number;
  /** Blocks the client has acknowledged, counted from the start (not wrapped). */
  private acked = 0;
  private retries = 0;
  private retransmits = 0;
  private timer: NodeJS.Timeout | undefined;
  private awaitingOackAck: boolean;
  private done = false;
  private readonly started = Date.now();
  private currentTimeout: number;

  constructor(
    private readonly socket: Socket,
    private readonly client: { address: string; port: number },
    private readonly path: string,
    private readonly data: Buffer,
    private readonly opts: NegotiatedOptions,
    private readonly limits: TransferLimits,
    private readonly onEnd: (report: TransferReport) => void,
  ) {
    // The last block is shorter than blksize, possibly empty.
    this.totalBlocks = Math.floor(data.length / opts.blksize) + 1;
    this.awaitingOackAck = opts.oack !== null;
    this.currentTimeout = opts.timeoutMs;
    socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
    socket.on('error', () => this.finish('aborted'));
  }

  start(): void {
    if (this.opts.oack) this.send(buildOack(this.opts.oack));
    else this.sendWindow();
    this.arm();
  }

  abort(): void {
    this.finish('aborted');
  }

  private onMessage(msg: Buffer, rinfo: { address: string; port: number }): void {
    if (this.done) return;
    // The socket is connected, so the kernel only delivers the client's packets; strangers get
    // ICMP port-unreachable instead of an ERROR 5, and our transfer carries on (RFC 1350 §4).
    if (rinfo.address !== this.client.address || rinfo.port !== this.client.port) return;
    if (msg.length < 4) return;
    const op = msg.readUInt16BE(0);
    if (op === OPCODE.error) {
      const err = parseError(msg);
      // After an OACK, error 0/8 is the Pi's normal "Early terminate" once it has read tsize.
      const early = this.awaitingOackAck && (err.code === 0 || err.code === TFTP_ERROR.optionRefused);
      this.finish(early ? 'early-terminate' : 'client-error', err);
      return;
    }
    if (op !== OPCODE.ack) return;
    const block = parseAck(msg);
    if (this.awaitingOackAck) {
      if (block !== 0) return;
      this.awaitingOackAck = false;
      this.progress();
      return;
    }
    // Map the 16-bit number onto the blocks in flight: (acked, acked + window].
    for (let i = 1; i <= this.opts.windowsize; i++) {
      const idx = this.acked + i;
      if (idx > this.totalBlocks) break;
      if ((idx & 0xffff) === block) {
        this.acked = idx;
        this.progress();
        return;
      }
    }
    // Anything else is a duplicate or stale ACK: ignored; the timer resends if really lost.
  }

  private progress(): void {
    this.retries = 0;
    this.currentTimeout = this.opts.timeoutMs;
    if (this.acked >= this.totalBlocks) {
      this.finish('complete');
      return;
    }
    this.sendWindow();
    this.arm();
  }

  private sendWindow(): void {
    const { blksize, windowsize } = this.opts;
    const last = Math.min(this.acked + windowsize, this.totalBlocks);
    for (let idx = this.acked + 1; idx <= last; idx++) this.send(dataPacket(this.data, blksize, idx));
  }

  // The socket is connected to the client (see server.ts): no address lookup per packet.
  private send(packet: Buffer): void {
    this.socket.send(packet);
  }

  private arm(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.onTimeout(), this.currentTimeout);
  }

  private onTimeout(): void {
    if (this.done) return;
    if (++this.retries > this.limits.maxRetries) {
      this.finish('timeout');
      return;
    }
    this.retransmits++;
    this.currentTimeout = Math.min(this.currentTimeout * 2, this.opts.timeoutMs * 8);
    if (this.awaitingOackAck) this.send(buildOack(this.opts.oack!));
    else this.sendWindow();
    this.arm();
  }

  private finish(outcome: TransferOutcome, clientError?: { code: number; message: string }): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    try {
      this.socket.close();
    } catch {
      /* already closed */
    }
    this.onEnd({
      client: this.client,
      path: this.path,
      size: this.data.length,
      bytesAcked: Math.min(this.acked * this.opts.blksize, this.data.length),
      blksize: this.opts.blksize,
      windowsize: this.opts.windowsize,
      outcome,
      ...(clientError ? { clientError } : {}),
      retransmits: this.retransmits,
      ms: Date.now() - this.started,
    });
  }
}
