// A transfer worker: runs the transfers the main thread hands it, so sending spreads over the
// machine's cores. File bytes arrive as SharedArrayBuffers (no copy); the worker keeps one view
// per file so ready-made DATA packets are shared by all its transfers of that file.
import { parentPort } from 'node:worker_threads';
import { runTransfer } from './runner.js';
import type { NegotiatedOptions, TransferLimits } from './transfer.js';

export interface StartMessage {
  type: 'start';
  id: number;
  host: string;
  client: { address: string; port: number };
  path: string;
  /** Shared file bytes (with a file id), or a small private copy. */
  file: { id: number; sab: SharedArrayBuffer; offset: number; length: number } | { bytes: Uint8Array };
  negotiated: NegotiatedOptions;
  limits: TransferLimits;
}

const views = new Map<number, Buffer>();
const MAX_VIEWS = 64;
const running = new Map<number, { abort(): void }>();

parentPort!.on('message', async (m: StartMessage | { type: 'abort-all' }) => {
  if (m.type === 'abort-all') {
    for (const t of running.values()) t.abort();
    return;
  }
  let data: Buffer;
  if ('sab' in m.file) {
    data = views.get(m.file.id) ?? Buffer.from(m.file.sab, m.file.offset, m.file.length);
    views.delete(m.file.id);
    views.set(m.file.id, data); // most recent last
    if (views.size > MAX_VIEWS) views.delete(views.keys().next().value!);
  } else data = Buffer.from(m.file.bytes.buffer, m.file.bytes.byteOffset, m.file.bytes.byteLength);
  try {
    const t = await runTransfer({ host: m.host, client: m.client, path: m.path, data, negotiated: m.negotiated, limits: m.limits }, (report) => {
      running.delete(m.id);
      parentPort!.postMessage({ type: 'end', id: m.id, report });
    });
    running.set(m.id, t);
  } catch (err) {
    parentPort!.postMessage({ type: 'end', id: m.id, report: null, error: String(err) });
  }
});
