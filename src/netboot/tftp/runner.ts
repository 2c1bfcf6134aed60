// Runs one transfer in JavaScript on a fresh socket connected to the client: the engine used when
// the native addon is not built (or --tftp-threads 0).
import { createSocket } from 'node:dgram';
import { Transfer, type NegotiatedOptions, type TransferLimits, type TransferReport } from './transfer.js';

export interface TransferJob {
  host: string;
  client: { address: string; port: number };
  path: string;
  data: Buffer;
  negotiated: NegotiatedOptions;
  limits: TransferLimits;
}

export async function runTransfer(job: TransferJob, onEnd: (r: TransferReport) => void): Promise<{ abort(): void }> {
  const sock = createSocket({ type: job.host.includes(':') ? 'udp6' : 'udp4' });
  await new Promise<void>((resolve) => sock.bind(0, job.host, () => resolve()));
  // Connected to the client: every send skips the per-packet address lookup, and the kernel
  // drops packets from anyone else.
  await new Promise<void>((resolve) => sock.connect(job.client.port, job.client.address, () => resolve()));
  const t = new Transfer(sock, job.client, job.path, job.data, job.negotiated, job.limits, onEnd);
  t.start();
  return t;
}
