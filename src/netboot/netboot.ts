// The netboot services of `drover serve`: TFTP over the per-device boot tree (and, in proxy or
// full mode on a named interface, DHCP), reporting boot progress as device events.
import type { Logger } from 'pino';
import { DroverError } from '../domain/errors.js';
import type { Device } from '../domain/records.js';
import { join } from 'node:path';
import type { Config } from '../config/load.js';
import { recordSighting } from '../services/devices.service.js';
import type { Services } from '../services/index.js';
import { piOuiSet } from './dhcp/ouis.js';
import type { ProxyDecision } from './dhcp/proxy.js';
import { DhcpServer } from './dhcp/server.js';
import { macForIp } from './neighbours.js';
import { BootPathError } from './bootfiles/paths.js';
import { BootTree } from './bootfiles/tree.js';
import type { BootProgress } from './progress.js';
import { TFTP_ERROR } from './tftp/packet.js';
import { TftpFileError, TftpServer, type TftpClient } from './tftp/server.js';

export interface NetbootOptions {
  services: Services;
  bootTree: BootTree;
  progress: BootProgress;
  log: Logger;
  tftpListen: { host: string; port: number } | null;
  tftpThreads?: number;
  maxTransfers?: number;
  dhcp: Config['dhcp'];
  piOuis: string[];
  dataDir: string;
  /** For a startup warning when devices could not reach the API. */
  apiHost?: string;
  publicUrl?: string | undefined;
  /** The controller's URL as devices see it (for the iPXE script URL). */
  serverUrl?: (clientAddress: string | null) => string;
  /** Override ports for tests in namespaces without privileges (defaults 67/68). */
  dhcpPorts?: { server: number; client: number };
}

const MODEL_NAMES: Record<string, string> = {
  pi3b: 'Raspberry Pi 3 Model B',
  'pi3b+': 'Raspberry Pi 3 Model B+',
  pi4: 'Raspberry Pi 4',
  pi5: 'Raspberry Pi 5',
};

export class Netboot {
  tftp: TftpServer | undefined;
  dhcp: DhcpServer | undefined;
  tftpPort: number | undefined;
  private readonly deviceOf = new Map<string, Device | null>();
  private lastNoImageWarning = 0;

  constructor(private readonly o: NetbootOptions) {}

  async start(): Promise<void> {
    await this.startTftp();
    await this.startDhcp();
    if ((this.tftp || this.dhcp) && this.o.apiHost && /^(127\.|::1$|localhost$)/.test(this.o.apiHost) && !this.o.publicUrl) {
      this.o.log.warn({ listen: this.o.apiHost }, 'the API listens on loopback only: booting devices cannot reach it; use --listen 0.0.0.0:PORT or set --public-url');
    }
  }

  private async startDhcp(): Promise<void> {
    const c = this.o.dhcp;
    if (!c) return;
    // Unlike TFTP, DHCP on a named interface is an explicit request: failing to serve it is fatal.
    this.dhcp = new DhcpServer({
      interface: c.interface,
      mode: c.mode,
      ...(this.o.dhcpPorts ? { port: this.o.dhcpPorts.server, clientPort: this.o.dhcpPorts.client } : {}),
      piOuis: piOuiSet(this.o.piOuis),
      pi3DelayMs: c.pi3ReplyDelay,
      ...(c.mode === 'full' ? { full: { range: c.range!, leaseSeconds: c.leaseTime, router: c.router, dns: c.dns, leasesFile: join(this.o.dataDir, 'dhcp-leases.json') } } : {}),
      log: this.o.log,
      ...(c.pxeClients && this.o.serverUrl ? { pxeClients: { ipxeScriptUrl: (ip: string) => `${this.o.serverUrl!(ip)}/boot/v1/ipxe` } } : {}),
      onPi: (d, _req, ip) => this.sighted(d, ip),
    });
    try {
      await this.dhcp.start();
    } catch (err) {
      this.dhcp = undefined;
      throw new DroverError('DROVER_DHCP_UNAVAILABLE', `Cannot serve DHCP on ${c.interface}: ${(err as Error).message}`);
    }
  }

  /** MAC → when it was last recorded: a Pi 3 ROM retries every 5 s, storms repeat faster. */
  private readonly lastSighting = new Map<string, number>();
  /**
   * Sightings wait here and are recorded one at a time, yielding between them: answering DHCP
   * comes first, and a storm of new Pis must not stall the event loop with database writes.
   */
  private readonly sightings = new Map<string, { d: ProxyDecision; ip: string | null }>();
  private draining = false;
  private static readonly MAX_QUEUED = 10_000;

  private sighted(d: ProxyDecision, ip: string | null): void {
    const now = Date.now();
    if (now - (this.lastSighting.get(d.pi.mac) ?? 0) < 5000 && !ip) return;
    if (this.lastSighting.size > 100_000) this.lastSighting.clear();
    this.lastSighting.set(d.pi.mac, now);
    if (this.sightings.size >= Netboot.MAX_QUEUED) return; // recorded on its next DISCOVER
    this.sightings.set(d.pi.mac, { d, ip });
    if (!this.draining) {
      this.draining = true;
      setImmediate(() => void this.drainSightings());
    }
  }

  private async drainSightings(): Promise<void> {
    try {
      for (const [mac, { d, ip }] of this.sightings) {
        this.sightings.delete(mac);
        await this.record(d, ip);
        await new Promise((r) => setImmediate(r));
      }
    } finally {
      this.draining = false;
      if (this.sightings.size) {
        this.draining = true;
        setImmediate(() => void this.drainSightings());
      }
    }
  }

  private async record(d: ProxyDecision, ip: string | null): Promise<void> {
    try {
      const device = await recordSighting(this.o.services.ctx, {
        serial: d.pi.serial, mac: d.pi.mac, model: MODEL_NAMES[d.pi.model] ?? null, boardRevision: d.pi.boardRevision, ip, via: 'dhcp',
      });
      if (device) await this.o.progress.dhcp(device, { kind: d.kind, mac: d.pi.mac, model: d.pi.model, ...(ip ? { ip } : {}), mode: this.o.dhcp?.mode });
      else {
        if (this.serialless.size > 10_000) this.serialless.clear();
        const model = MODEL_NAMES[d.pi.model];
        if (model) this.serialless.set(d.pi.mac, model);
        this.o.log.info({ mac: d.pi.mac, model: d.pi.model }, 'dhcp: answered a Pi that sends no serial; it is recorded when it asks for boot files');
      }
    } catch (err) {
      this.o.log.error({ err }, 'dhcp: recording a Pi failed');
    }
  }

  private async startTftp(): Promise<void> {
    if (!this.o.tftpListen) return;
    const { host, port } = this.o.tftpListen;
    this.tftp = new TftpServer({
      host,
      port,
      log: this.o.log,
      maxTransfers: this.o.maxTransfers ?? 1024,
      threads: this.o.tftpThreads ?? 0,
      resolve: (path, client) => this.resolve(path, client),
      onTransferEnd: (r) => {
        const key = `${r.client.address}:${r.client.port}`;
        const device = this.deviceOf.get(key);
        this.deviceOf.delete(key);
        if (r.outcome === 'timeout' || r.outcome === 'client-error') {
          this.o.log.info({ client: r.client.address, path: r.path, outcome: r.outcome, acked: r.bytesAcked, error: r.clientError }, 'tftp transfer did not complete');
        }
        if (device) {
          this.o.progress.tftp(device, BootTree.split(r.path).rest, r.bytesAcked, r.outcome, r.client.address);
          if (device.macs.length === 0) void this.linkMac(device, r.client.address);
        }
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

  /** Serial-less Pis answered over DHCP (the Pi 3B ROM): MAC → model, until TFTP names a serial. */
  private readonly serialless = new Map<string, string>();
  private readonly linking = new Set<string>();

  /**
   * A device known only by the serial it asked TFTP for: find its MAC in the neighbour table,
   * and the model its DHCP packets implied, and record both.
   */
  private async linkMac(device: Device, ip: string): Promise<void> {
    if (this.linking.has(device.id)) return;
    this.linking.add(device.id);
    try {
      const mac = await macForIp(ip);
      if (!mac || !device.serial) return;
      const model = this.serialless.get(mac) ?? null;
      const d = await recordSighting(this.o.services.ctx, { serial: device.serial, mac, model, boardRevision: null, ip, via: 'tftp' });
      if (d?.macs.includes(mac)) this.o.log.info({ device: d.id, serial: d.serial, mac }, 'tftp: linked a serial-less DHCP client to its device by its MAC');
    } catch (err) {
      this.o.log.error({ err }, 'tftp: linking a device to its MAC failed');
    } finally {
      // A later transfer may try again (the neighbour entry may not exist yet).
      setTimeout(() => this.linking.delete(device.id), 2000).unref();
    }
  }

  async stop(): Promise<void> {
    await this.dhcp?.stop();
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
