// The netboot services of `drover serve`: TFTP over the per-device boot tree (and, in proxy or
// full mode on a named interface, DHCP), reporting boot progress as device events.
import type { Logger } from 'pino';
import { DroverError } from '../domain/errors.js';
import type { Device } from '../domain/records.js';
import type { Services } from '../services/index.js';
import { BootPathError } from './bootfiles/paths.js';
import type { BootTree } from './bootfiles/tree.js';
import type { BootProgress } from './progress.js';
import { TFTP_ERROR } from './tftp/packet.js';
import { TftpFileError, TftpServer, type TftpClient } from './tftp/server.js';

export interface NetbootOptions {
  services: Services;
  bootTree: BootTree;
  progress: BootProgress;
  log: Logger;
  tftpListen: { host: string; port: number } | null;
  maxTransfers?: number;
}

export class Netboot {
  tftp: TftpServer | undefined;
  tftpPort: number | undefined;
  private readonly deviceOf = new Map<string, Device | null>();
  private lastNoImageWarning = 0;

  constructor(private readonly o: NetbootOptions) {}

  async start(): Promise<void> {
    if (!this.o.tftpListen) return;
    const { host, port } = this.o.tftpListen;
    this.tftp = new TftpServer({
      host,
      port,
      log: this.o.log,
      maxTransfers: this.o.maxTransfers ?? 1024,
      resolve: (path, client) => this.resolve(path, client),
      onTransferEnd: (r) => {
        const key = `${r.client.address}:${r.client.port}`;
        const device = this.deviceOf.get(key);
        this.deviceOf.delete(key);
        if (r.outcome === 'timeout' || r.outcome === 'client-error') {
          this.o.log.info({ client: r.client.address, path: r.path, outcome: r.outcome, acked: r.bytesAcked, error: r.clientError }, 'tftp transfer did not complete');
        }
        if (device) this.o.progress.tftp(device, r.path.replace(/^[^/]+\//, ''), r.bytesAcked, r.outcome);
      },
    });
    try {
      this.tftpPort = await this.tftp.listen();
      this.o.log.info({ listen: `${host}:${this.tftpPort}` }, 'tftp serving');
    } catch (err) {
      this.tftp = undefined;
      const code = (err as NodeJS.ErrnoException).code;
      // Not fatal: the API and dashboard are useful without netboot, and the fix is one flag away.
      this.o.log.warn(
        { listen: `${host}:${port}`, code },
        code === 'EACCES'
          ? 'TFTP disabled: port 69 needs root or CAP_NET_BIND_SERVICE (see packaging/systemd/drover.service), or pass --tftp-listen HOST:PORT / off'
          : 'TFTP disabled: cannot listen; pass --tftp-listen HOST:PORT or off',
      );
    }
  }

  async stop(): Promise<void> {
    await this.tftp?.close();
    await this.o.progress.flush();
    this.o.progress.stop();
  }

  private async resolve(path: string, client: TftpClient): Promise<Buffer> {
    try {
      const r = await this.o.bootTree.resolve(path, client.address);
      this.deviceOf.set(`${client.address}:${client.port}`, r.device);
      return r.data;
    } catch (err) {
      if (err instanceof BootPathError) {
        throw new TftpFileError(err.reason === 'not-found' ? TFTP_ERROR.notFound : TFTP_ERROR.accessViolation, err.message);
      }
      if (err instanceof DroverError && err.code === 'DROVER_NO_DEFAULT_IMAGE') {
        if (Date.now() - this.lastNoImageWarning > 60_000) {
          this.lastNoImageWarning = Date.now();
          this.o.log.warn({ path, client: client.address }, 'a device asked for boot files but no image is assigned and no default is set (drover image default IMAGE)');
        }
        throw new TftpFileError(TFTP_ERROR.notFound, 'File not found');
      }
      throw err;
    }
  }
}
