// The TFTP listener: takes read requests on one socket and runs each transfer on a fresh
// ephemeral socket. Write requests are refused; malformed packets are dropped and counted.
// Files come from a resolver (the per-device boot tree), which throws TftpFileError to refuse.
import { createSocket, type Socket } from 'node:dgram';
import type { Logger } from 'pino';
import { buildError, OPCODE, opcodeOf, parseRequest, TFTP_ERROR, TftpParseError, toNetascii } from './packet.js';
import { NativeTransferEngine } from './native-engine.js';
import { runTransfer } from './runner.js';
import { negotiate, type TransferLimits, type TransferReport } from './transfer.js';

export class TftpFileError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export interface TftpClient {
  address: string;
  port: number;
}

/** Returns the file's bytes for a request path, or throws TftpFileError. */
export type TftpResolver = (path: string, client: TftpClient) => Promise<Buffer>;

export interface TftpServerOptions extends Partial<TransferLimits> {
  host: string;
  port: number;
  resolve: TftpResolver;
  /** Threads of the native transfer engine (0, or no addon: transfers run in JavaScript on this thread). */
  threads?: number;
  /** Concurrent transfers; requests beyond are dropped (the client retransmits). */
  maxTransfers?: number;
  log?: Logger;
  onTransferEnd?: (r: TransferReport) => void;
  onRequest?: (path: string, client: TftpClient) => void;
}

export interface TftpStats {
  requests: number;
  transfers: number;
  active: number;
  completed: number;
  earlyTerminated: number;
  failed: number;
  notFound: number;
  refused: number;
  malformed: number;
  busyDropped: number;
  bytesSent: number;
}

export class TftpServer {
  private socket: Socket | undefined;
  private readonly active = new Map<string, { abort(): void }>();
  private engine: NativeTransferEngine | undefined;
  /** Requests whose file is still being resolved, so a retransmitted RRQ does not start twice. */
  private readonly pending = new Set<string>();
  readonly stats: TftpStats = {
    requests: 0, transfers: 0, active: 0, completed: 0, earlyTerminated: 0, failed: 0,
    notFound: 0, refused: 0, malformed: 0, busyDropped: 0, bytesSent: 0,
  };
  private readonly limits: TransferLimits;

  constructor(private readonly opts: TftpServerOptions) {
    this.limits = {
      maxBlksize: opts.maxBlksize ?? 65464,
      maxWindowsize: opts.maxWindowsize ?? 64,
      timeoutMs: opts.timeoutMs ?? 1000,
      maxRetries: opts.maxRetries ?? 5,
    };
  }

  /** Resolves with the bound port (useful with port 0). */
  listen(): Promise<number> {
    const threads = this.opts.threads ?? 0;
    if (threads > 0 && NativeTransferEngine.available()) this.engine = new NativeTransferEngine(threads);
    else if (threads > 0) this.opts.log?.warn('tftp: the native addon is not built (npm run build:native); transfers run in JavaScript, slower');
    return new Promise((resolve, reject) => {
      const s = createSocket({ type: this.opts.host.includes(':') ? 'udp6' : 'udp4', reuseAddr: false });
      s.once('error', reject);
      s.on('message', (msg, rinfo) => this.onRequest(msg, rinfo));
      s.bind(this.opts.port, this.opts.host, () => {
        s.off('error', reject);
        s.on('error', (err) => this.opts.log?.error({ err }, 'tftp listener error'));
        this.socket = s;
        resolve(s.address().port);
      });
    });
  }

  async close(): Promise<void> {
    for (const t of this.active.values()) t.abort();
    await this.engine?.close();
    this.engine = undefined;
    await new Promise<void>((r) => (this.socket ? this.socket.close(() => r()) : r()));
    this.socket = undefined;
  }

  private reply(buf: Buffer, to: TftpClient): void {
    this.socket?.send(buf, to.port, to.address);
  }

  private onRequest(msg: Buffer, rinfo: TftpClient): void {
    let req;
    try {
      const op = opcodeOf(msg);
      if (op === OPCODE.wrq) {
        this.stats.refused++;
        this.reply(buildError(TFTP_ERROR.accessViolation, 'Write requests are refused'), rinfo);
        return;
      }
      req = parseRequest(msg);
    } catch (err) {
      if (!(err instanceof TftpParseError)) throw err;
      this.stats.malformed++;
      this.opts.log?.debug({ client: rinfo.address, reason: err.reason }, 'tftp: dropped malformed packet');
      return;
    }
    const key = `${rinfo.address}:${rinfo.port}`;
    // A retransmitted RRQ from a client whose transfer is already running: that transfer answers.
    if (this.active.has(key) || this.pending.has(key)) return;
    this.stats.requests++;
    if (this.active.size + this.pending.size >= (this.opts.maxTransfers ?? 512)) {
      this.stats.busyDropped++;
      return;
    }
    const client = { address: rinfo.address, port: rinfo.port };
    this.opts.onRequest?.(req.filename, client);
    void this.startTransfer(key, req.filename, req.mode, req.options, client);
  }

  private async startTransfer(key: string, path: string, mode: string, options: Record<string, string>, client: TftpClient): Promise<void> {
    let data: Buffer;
    this.pending.add(key);
    try {
      data = await this.opts.resolve(path, client);
    } catch (err) {
      this.pending.delete(key);
      const code = err instanceof TftpFileError ? err.code : TFTP_ERROR.undefined;
      if (code === TFTP_ERROR.notFound) this.stats.notFound++;
      else this.stats.refused++;
      if (!(err instanceof TftpFileError)) this.opts.log?.error({ err, path }, 'tftp: resolving a file failed');
      this.reply(buildError(code, err instanceof TftpFileError ? err.message : 'Server error'), client);
      return;
    }
    if (mode === 'netascii') data = toNetascii(data);
    const negotiated = negotiate(options, data.length, this.limits);
    const job = { host: this.opts.host, client, path, data, negotiated, limits: this.limits };
    const onEnd = (report: TransferReport) => {
      this.active.delete(key);
      this.stats.active = this.active.size;
      this.stats.bytesSent += report.bytesAcked;
      if (report.outcome === 'complete') this.stats.completed++;
      else if (report.outcome === 'early-terminate') this.stats.earlyTerminated++;
      else this.stats.failed++;
      this.opts.onTransferEnd?.(report);
    };
    this.stats.transfers++;
    if (this.engine) {
      try {
        this.engine.start(job, onEnd);
      } catch (err) {
        this.pending.delete(key);
        this.stats.failed++;
        this.opts.log?.error({ err, path }, 'tftp: starting a transfer failed');
        this.reply(buildError(TFTP_ERROR.undefined, 'Server busy'), client);
        return;
      }
      this.active.set(key, { abort: () => undefined }); // the engine aborts its own on close
      this.pending.delete(key);
      this.stats.active = this.active.size;
      return;
    }
    const transfer = await runTransfer(job, onEnd);
    this.pending.delete(key);
    this.active.set(key, transfer);
    this.stats.active = this.active.size;
  }
}
