// Transfer workers. Sending one packet per syscall is most of a TFTP server's work; spreading
// transfers over worker threads uses every core (the listener, file resolution and the database
// stay on the main thread).
import { Worker } from 'node:worker_threads';
import type { TransferJob } from './runner.js';
import type { TransferReport } from './transfer.js';
import type { StartMessage } from './worker.js';

const fileIds = new WeakMap<SharedArrayBuffer, number>();
let nextFileId = 1;

export class TransferPool {
  private readonly workers: { w: Worker; active: number; dead: boolean }[] = [];
  private readonly pending = new Map<number, { worker: number; onEnd: (r: TransferReport | null) => void }>();
  private nextId = 1;
  private closing = false;
  onError: ((err: unknown) => void) | undefined;

  /** False once every worker has died: the server then runs transfers itself. */
  get usable(): boolean {
    return this.workers.some((s) => !s.dead);
  }

  constructor(size: number) {
    // From TypeScript sources (tests through tsx) the worker needs the same loader.
    const ts = import.meta.url.endsWith('.ts');
    const url = new URL(ts ? './worker.ts' : './worker.js', import.meta.url);
    for (let i = 0; i < size; i++) {
      const w = ts
        ? new Worker(`import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(url.href)}); });`, { eval: true })
        : new Worker(url);
      const slot = { w, active: 0, dead: false };
      // A worker that dies takes its transfers with it: report them aborted, use the others.
      const fail = (why: unknown) => {
        slot.dead = true;
        this.onError?.(why);
        for (const [id, p] of this.pending) {
          if (p.worker !== i) continue;
          this.pending.delete(id);
          p.onEnd(null);
        }
      };
      w.on('error', fail);
      w.on('exit', (code) => {
        if (!this.closing) fail(new Error(`transfer worker exited with ${code}`));
      });
      w.on('message', (m: { type: 'end'; id: number; report: TransferReport | null }) => {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        slot.active--;
        p.onEnd(m.report);
      });
      w.unref();
      this.workers.push(slot);
    }
  }

  start(job: TransferJob, onEnd: (r: TransferReport | null) => void): void {
    const alive = this.workers.map((s, k) => ({ s, k })).filter((x) => !x.s.dead);
    const i = alive.reduce((best, x) => (x.s.active < this.workers[best]!.active ? x.k : best), alive[0]!.k);
    const slot = this.workers[i]!;
    const id = this.nextId++;
    const buf = job.data;
    let file: StartMessage['file'];
    if (buf.buffer instanceof SharedArrayBuffer) {
      let fid = fileIds.get(buf.buffer);
      if (!fid) fileIds.set(buf.buffer, (fid = nextFileId++));
      file = { id: fid, sab: buf.buffer, offset: buf.byteOffset, length: buf.length };
    } else file = { bytes: new Uint8Array(buf) };
    this.pending.set(id, { worker: i, onEnd });
    slot.active++;
    const msg: StartMessage = { type: 'start', id, host: job.host, client: job.client, path: job.path, file, negotiated: job.negotiated, limits: job.limits };
    slot.w.postMessage(msg);
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const s of this.workers) if (!s.dead) s.w.postMessage({ type: 'abort-all' });
    await new Promise((r) => setTimeout(r, 50));
    await Promise.all(this.workers.map((s) => s.w.terminate()));
  }
}
