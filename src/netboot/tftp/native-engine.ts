// Runs transfers in the native engine (native/tftp_engine.c): a few threads, each an epoll loop
// over its transfers' sockets. The listener, file resolution and option negotiation stay here;
// the engine only pumps DATA and ACKs, with the same semantics as transfer.ts.
import { loadNative, type NativeAddon } from '../native.js';
import { buildOack } from './packet.js';
import type { TransferJob } from './runner.js';
import type { TransferOutcome, TransferReport } from './transfer.js';

const OUTCOMES: TransferOutcome[] = ['complete', 'early-terminate', 'client-error', 'timeout', 'aborted'];

export class NativeTransferEngine {
  private readonly addon: NativeAddon;
  private readonly engine: object;
  private readonly pending = new Map<number, { job: TransferJob; started: number; onEnd: (r: TransferReport) => void }>();
  private nextId = 1;
  private closed = false;

  static available(): boolean {
    return loadNative() !== null;
  }

  constructor(threads: number) {
    const addon = loadNative();
    if (!addon) throw new Error('The native addon is not built; run `npm run build:native`.');
    this.addon = addon;
    this.engine = addon.tftpEngineCreate(threads, (id, outcome, bytesAcked, retransmits, errCode, errMsg) => {
      const p = this.pending.get(id);
      if (!p) return;
      this.pending.delete(id);
      const { job } = p;
      p.onEnd({
        client: job.client,
        path: job.path,
        size: job.data.length,
        bytesAcked,
        blksize: job.negotiated.blksize,
        windowsize: job.negotiated.windowsize,
        outcome: OUTCOMES[outcome] ?? 'aborted',
        ...(errCode >= 0 && outcome === 2 ? { clientError: { code: errCode, message: errMsg } } : {}),
        retransmits,
        ms: Date.now() - p.started,
      });
    });
  }

  /** Throws (synchronously) when the socket cannot be made, e.g. out of file descriptors. */
  start(job: TransferJob, onEnd: (r: TransferReport) => void): void {
    if (this.closed) throw new Error('tftp engine closed');
    const id = this.nextId++;
    if (this.nextId > 0xffff_fff0) this.nextId = 1;
    const n = job.negotiated;
    this.pending.set(id, { job, started: Date.now(), onEnd });
    try {
      this.addon.tftpEngineStart(
        this.engine, id, job.host, job.client.address, job.client.port, job.data,
        n.blksize, n.windowsize, n.timeoutMs, job.limits.maxRetries, n.oack ? buildOack(n.oack) : null,
      );
    } catch (err) {
      this.pending.delete(id);
      throw err;
    }
  }

  /** Aborts every transfer and stops the threads; their reports arrive before this resolves. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.addon.tftpEngineClose(this.engine);
    // The engine's reports are queued for this thread: let them run.
    for (let i = 0; i < 50 && this.pending.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
  }
}
