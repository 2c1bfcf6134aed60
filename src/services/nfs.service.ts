// Boot mode `nfs`: what the controller does when a device in that mode asks for its boot config.
// Its image's root is unpacked once (shared by every device on that image), its writable layer
// made once, and the exports rewritten so that this device, at the address it asked from, and
// no one else may mount them. The layout, the rendering and the atomic file steps are in
// images/nfs-root.ts; this service keeps the list of NFS clients (EXPORT_ROOT/clients.json),
// writes the exports file (and ganesha's config when asked) and reloads the NFS server.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DroverError } from '../domain/errors.js';
import type { Device, Image } from '../domain/records.js';
import type { ServiceContext } from './context.js';
import {
  assertHostIPv4, deviceLayer, deviceLayerPath, findTool, imageRootPath, isIPv4, renderExports, renderGaneshaConfig, unpackRootOnce, writeExportsFile, type NfsExportEntry,
} from '../images/nfs-root.js';

export interface NfsSettings {
  exportRoot: string;
  /** The IPv4 address devices mount from; default the host in the URL devices use. */
  server: string | undefined;
  /** exports(5) file for the kernel NFS server, or null. */
  exportsFile: string | null;
  /** nfs-ganesha config file, or null. */
  ganeshaConfig: string | null;
  /** Shell command after the files change; null: none; undefined: `exportfs -ra` if it fits. */
  reloadCommand: string | null | undefined;
  /** Size of a new device layer (sparse). */
  layerBytes?: number;
}

export interface NfsBoot {
  /** SERVER:/…/images/<sha>/root, the image root (read-only). */
  root: string;
  /** SERVER:/…/devices/<id>, the device's layer directory (read-write). */
  rw: string;
}

/** How long a config request waits for a first unpack before telling the device to retry. */
const WAIT_FOR_UNPACK_MS = 5_000;

/** 127.0.0.1 as Node reports an IPv4 peer on a dual-stack socket: ::ffff:127.0.0.1. */
const plainIPv4 = (ip: string) => (ip.startsWith('::ffff:') && isIPv4(ip.slice(7)) ? ip.slice(7) : ip);

export class NfsService {
  private clients: Record<string, NfsExportEntry> | null = null;
  /** Writes of clients.json and the export files, one at a time. */
  private writing: Promise<unknown> = Promise.resolve();

  constructor(private readonly s: NfsSettings) {}

  get exportRoot(): string {
    return this.s.exportRoot;
  }

  /** The server address for a device that reached the controller at `serverUrl`. */
  serverAddress(serverUrl: string): string {
    if (this.s.server) return this.s.server;
    const host = new URL(serverUrl).hostname;
    if (isIPv4(host)) return host;
    throw new DroverError('DROVER_NFS_FAILED', `Boot mode nfs needs the NFS server's IPv4 address: set nfsServer (the controller URL ${serverUrl} names no IPv4 address).`);
  }

  /** The nfsroot= and drover.nfs.rw= values for a device on an image (no side effects). */
  paths(serverIp: string, deviceId: string, imageSha256: string): NfsBoot {
    return { root: `${serverIp}:${imageRootPath(this.s.exportRoot, imageSha256)}`, rw: `${serverIp}:${deviceLayerPath(this.s.exportRoot, deviceId)}` };
  }

  /**
   * Makes the device's NFS root ready for a boot from `clientIp`: the image unpacked, the layer
   * made (a fresh one when the device moved to another image), the exports naming this address.
   * A first unpack that takes longer than a few seconds answers DROVER_NFS_PREPARING and goes
   * on in the background; the device retries.
   */
  async prepare(device: Device, image: Image, rootfsPath: string, rootfsSha256: string, clientIp: string, serverUrl: string): Promise<NfsBoot> {
    const ip = plainIPv4(clientIp);
    assertHostIPv4(ip, `The address ${device.id} boots from`);
    const server = this.serverAddress(serverUrl);
    const work = (async () => {
      await unpackRootOnce({ sha256: rootfsSha256, rootfsPath }, this.s.exportRoot);
      await deviceLayer(this.s.exportRoot, device.id, { imageSha256: rootfsSha256, ...(this.s.layerBytes ? { sizeBytes: this.s.layerBytes } : {}) });
      await this.setClient({ deviceId: device.id, ip, imageSha256: rootfsSha256 });
    })();
    let timer: NodeJS.Timeout | undefined;
    const slow = new Promise<'slow'>((r) => (timer = setTimeout(() => r('slow'), WAIT_FOR_UNPACK_MS)));
    work.catch(() => undefined); // a background failure is seen by the device's next request
    try {
      const r = await Promise.race([work, slow]);
      if (r === 'slow') throw new DroverError('DROVER_NFS_PREPARING', `Unpacking ${image.name}:${image.tag} for NFS; retry shortly.`);
    } catch (err) {
      if (err instanceof DroverError && err.code !== 'DROVER_INTERNAL' && err.code !== 'DROVER_VALIDATION') throw err;
      throw new DroverError('DROVER_NFS_FAILED', (err as Error).message);
    } finally {
      clearTimeout(timer);
    }
    return this.paths(server, device.id, rootfsSha256);
  }

  /** Drops a device from the exports (retired, or moved off NFS). */
  async forget(deviceId: string): Promise<void> {
    const clients = await this.load();
    if (!clients[deviceId]) return;
    const next = { ...clients };
    delete next[deviceId];
    await this.save(next);
  }

  /**
   * Keeps the exports to devices that may still boot over NFS: a rejected or retired device, or
   * one whose boot mode is no longer nfs, loses its exports at once (its layer stays on disk).
   * Returns the unsubscribe function. Errors are passed to `onError` (the server logs them).
   */
  followDevices(ctx: ServiceContext, onError: (err: unknown, deviceId: string) => void): () => void {
    return ctx.bus.subscribe((m) => {
      if (m.kind !== 'event' || !m.event.deviceId) return;
      const { type, deviceId } = m.event;
      const fields = (m.event.data as { fields?: string[] } | undefined)?.fields ?? [];
      if (type !== 'device.rejected' && type !== 'device.retired' && !(type === 'device.updated' && (fields.includes('bootMode') || fields.includes('groupId')))) return;
      void (async () => {
        if (!(await this.load())[deviceId]) return;
        if (type === 'device.updated') {
          const d = await ctx.store.devices.get(deviceId);
          const group = d?.groupId ? await ctx.store.groups.get(d.groupId) : undefined;
          if (d && (d.bootMode ?? group?.bootMode ?? 'ramroot') === 'nfs') return;
        }
        await this.forget(deviceId);
      })().catch((err) => onError(err, deviceId));
    });
  }

  /** The devices the exports currently name. */
  async list(): Promise<NfsExportEntry[]> {
    return Object.values(await this.load());
  }

  private async load(): Promise<Record<string, NfsExportEntry>> {
    if (this.clients) return this.clients;
    try {
      this.clients = JSON.parse(await readFile(join(this.s.exportRoot, 'clients.json'), 'utf8')) as Record<string, NfsExportEntry>;
    } catch {
      this.clients = {};
    }
    return this.clients;
  }

  private async setClient(entry: NfsExportEntry): Promise<void> {
    const clients = await this.load();
    const had = clients[entry.deviceId];
    if (had && had.ip === entry.ip && had.imageSha256 === entry.imageSha256) return;
    // An address belongs to one device: DHCP gave this one's old address to another.
    const next = Object.fromEntries(Object.entries(clients).filter(([id, c]) => id !== entry.deviceId && c.ip !== entry.ip));
    next[entry.deviceId] = entry;
    await this.save(next);
  }

  private save(next: Record<string, NfsExportEntry>): Promise<void> {
    const step = this.writing.then(async () => {
      const entries = Object.values(next);
      // Render first: a bad entry fails here and nothing is written.
      const exportsText = renderExports(entries, this.s.exportRoot);
      const ganeshaText = this.s.ganeshaConfig ? renderGaneshaConfig(entries, this.s.exportRoot) : null;
      await writeExportsFile(join(this.s.exportRoot, 'clients.json'), `${JSON.stringify(next, null, 2)}\n`);
      this.clients = next;
      if (this.s.exportsFile) await writeExportsFile(this.s.exportsFile, exportsText);
      if (this.s.ganeshaConfig && ganeshaText !== null) await writeExportsFile(this.s.ganeshaConfig, ganeshaText);
      await this.reload();
    });
    this.writing = step.catch(() => undefined);
    return step;
  }

  private async reload(): Promise<void> {
    let cmd = this.s.reloadCommand;
    if (cmd === undefined) cmd = this.s.exportsFile && findTool('exportfs') ? 'exportfs -ra' : null;
    if (!cmd) return;
    await new Promise<void>((resolve, reject) => {
      execFile('sh', ['-c', cmd!], { timeout: 30_000, env: { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` } }, (err, _stdout, stderr) => {
        if (err) reject(new DroverError('DROVER_NFS_FAILED', `The NFS reload command \`${cmd}\` failed: ${String(stderr).trim().slice(-300) || err.message}`));
        else resolve();
      });
    });
  }
}
