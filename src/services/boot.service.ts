// What a booting device's initramfs asks the controller for: its boot config (image, squashfs
// URL and sha256, overlay, tmpfs size, retry policy), its per-device overlay (hostname, hosts,
// machine-id, SSH host keys kept in the data dir, authorized_keys, agent config, the group's
// overlay directory rendered with device facts), and where it reports each boot phase.
import { createHash, randomBytes } from 'node:crypto';
import { chmod, link, lstat, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { gzipSync } from 'node:zlib';
import { DroverError } from '../domain/errors.js';
import type { Device, Group, Image } from '../domain/records.js';
import { tarOfFiles } from '../images/tar.js';
import { generateHostKeys, parseAuthorizedKey, type HostKey } from '../security/ssh-keys.js';
import { inTransaction, type ServiceContext } from './context.js';
import type { DeviceTokensService } from './device-tokens.service.js';
import type { ImagesService } from './images.service.js';
import type { NfsBoot, NfsService } from './nfs.service.js';

export interface BootDefaults {
  /** Size of the tmpfs upper layer (mount size= syntax: 50%, 2G). */
  tmpfsSize: string;
  /** Seconds a failed boot waits before rebooting. */
  retrySeconds: number;
  /** Seconds without the controller before an SD stub boots its cached image. */
  offlineAfterSeconds: number;
  /** authorized_keys lines for root on every device. */
  authorizedKeys: string[];
}

export interface BootConfig {
  node: string;
  serial: string;
  hostname: string;
  bootMode: string;
  image: { id: string; name: string; tag: string; sha256: string | null };
  rootfs: { url: string; sha256: string; size: number };
  overlay: { url: string; sha256: string };
  tmpfsSize: string;
  retrySeconds: number;
  offlineAfterSeconds: number;
  reimage: number;
  stub: { version: string; url: string } | null;
  /** Boot mode nfs: the image root and the device layer to mount (SERVER:/path each). */
  nfs: NfsBoot | null;
}

export interface BootReport {
  phase: string;
  status: 'ok' | 'failed' | 'progress' | 'start';
  message?: string | undefined;
  [key: string]: unknown;
}

const PROGRESS_EVENT_INTERVAL_MS = 15_000;
const MAX_OVERLAY_FILES = 2000;
const MAX_OVERLAY_BYTES = 32 * 1024 * 1024;

export const defaultHostname = (d: Device) => d.hostname ?? `pi-${d.serial}`;

/** Group settings a boot reads (all optional; anything else in settings is ignored here). */
interface GroupBootSettings {
  tmpfsSize?: string;
  retrySeconds?: number;
  offlineAfterSeconds?: number;
  authorizedKeys?: string[];
  /** A directory on the controller host copied over the image; `*.tmpl` files are rendered. */
  overlayDir?: string;
  dns?: string[];
}

export class BootService {
  private readonly lastProgress = new Map<string, number>();
  private readonly keyGeneration = new Map<string, Promise<HostKey[]>>();

  constructor(
    private readonly ctx: ServiceContext,
    private readonly images: ImagesService,
    private readonly tokens: DeviceTokensService,
    private readonly dataDir: string,
    private readonly defaults: BootDefaults,
    private readonly nfs: NfsService,
  ) {}

  async imageAndGroup(device: Device): Promise<{ image: Image; group: Group | undefined }> {
    const group = device.groupId ? await this.ctx.store.groups.get(device.groupId) : undefined;
    const id = device.imageId ?? group?.imageId ?? null;
    const image = id ? await this.ctx.store.images.get(id) : await this.images.defaultImage();
    if (!image) throw new DroverError('DROVER_NO_DEFAULT_IMAGE');
    return { image, group };
  }

  private settings(group: Group | undefined): GroupBootSettings {
    return (group?.settings ?? {}) as GroupBootSettings;
  }

  async reimageGeneration(deviceId: string): Promise<number> {
    return Number((await this.ctx.store.meta.get(`reimage-generation:${deviceId}`)) ?? 0);
  }

  /** The image a device boots from RAM, refusing devices nobody accepted and images without a root. */
  async bootableImage(device: Device): Promise<{ image: Image; group: Group | undefined; rootfs: { sha256: string; bytes?: number } }> {
    if (device.state === 'incoming') throw new DroverError('DROVER_AUTH_FORBIDDEN', 'The device is waiting to be accepted.');
    const { image, group } = await this.imageAndGroup(device);
    const rootfs = image.metadata.rootfs as { sha256?: string; bytes?: number } | undefined;
    if (!rootfs?.sha256) throw new DroverError('DROVER_IMAGE_INVALID', `Image ${image.name}:${image.tag} is a boot tree without a root filesystem; assign an OS image (drover image add FILE).`);
    return { image, group, rootfs: { sha256: rootfs.sha256, ...(rootfs.bytes !== undefined ? { bytes: rootfs.bytes } : {}) } };
  }

  /**
   * `clientIp` is the address the request came from: in boot mode nfs the exports are made to
   * name exactly that address before the device is told where to mount.
   */
  async config(device: Device, serverUrl: string, clientIp: string | null = null): Promise<BootConfig> {
    const { image, group, rootfs } = await this.bootableImage(device);
    const s = this.settings(group);
    const bootMode = device.bootMode ?? group?.bootMode ?? 'ramroot';
    let nfs: NfsBoot | null = null;
    if (bootMode === 'nfs') {
      if (!clientIp) throw new DroverError('DROVER_VALIDATION', 'Boot mode nfs: the device\'s address is unknown.');
      nfs = await this.nfs.prepare(device, image, this.images.rootfsPath(image), rootfs.sha256, clientIp, serverUrl);
    }
    const overlay = await this.overlay(device, serverUrl);
    return {
      node: device.id,
      serial: device.serial,
      hostname: defaultHostname(device),
      bootMode,
      image: { id: image.id, name: image.name, tag: image.tag, sha256: image.sha256 },
      rootfs: { url: `${serverUrl}/boot/v1/images/${image.id}/rootfs.squashfs`, sha256: rootfs.sha256, size: rootfs.bytes ?? 0 },
      overlay: { url: `${serverUrl}/boot/v1/overlay`, sha256: overlay.sha256 },
      tmpfsSize: s.tmpfsSize ?? this.defaults.tmpfsSize,
      retrySeconds: s.retrySeconds ?? this.defaults.retrySeconds,
      offlineAfterSeconds: s.offlineAfterSeconds ?? this.defaults.offlineAfterSeconds,
      reimage: await this.reimageGeneration(device.id),
      stub: this.stubVersion(image, serverUrl),
      nfs,
    };
  }

  private stubVersion(image: Image, serverUrl: string): BootConfig['stub'] {
    const version = stubVersionOf(image);
    return version ? { version, url: `${serverUrl}/boot/v1/stub.tar` } : null;
  }

  /** Shell assignments for the initramfs (values single-quoted; nothing is evaluated). */
  static toShell(c: BootConfig): string {
    const q = (v: string | number) => `'${String(v).replace(/'/g, `'\\''`)}'`;
    const lines: [string, string | number][] = [
      ['NODE', c.node], ['SERIAL', c.serial], ['HOSTNAME', c.hostname], ['BOOT_MODE', c.bootMode],
      ['IMAGE_ID', c.image.id], ['IMAGE_NAME', `${c.image.name}:${c.image.tag}`], ['IMAGE_SHA256', c.image.sha256 ?? ''],
      ['ROOTFS_URL', c.rootfs.url], ['ROOTFS_SHA256', c.rootfs.sha256], ['ROOTFS_SIZE', c.rootfs.size],
      ['OVERLAY_URL', c.overlay.url], ['OVERLAY_SHA256', c.overlay.sha256],
      ['TMPFS_SIZE', c.tmpfsSize], ['RETRY', c.retrySeconds], ['OFFLINE_AFTER', c.offlineAfterSeconds], ['REIMAGE', c.reimage],
      ['STUB_VERSION', c.stub?.version ?? ''], ['STUB_URL', c.stub?.url ?? ''],
      ['NFS_ROOT', c.nfs?.root ?? ''], ['NFS_RW', c.nfs?.rw ?? ''],
    ];
    // Every name gets the DROVER_ prefix, so nothing in the image's environment is overwritten.
    return `${lines.map(([k, v]) => `DROVER_${k}=${q(v)}`).join('\n')}\n`;
  }

  /** SSH host keys, generated on first use and kept (0600) in DATA_DIR/devices/<id>/ssh. */
  async hostKeys(device: Device): Promise<HostKey[]> {
    const dir = join(this.dataDir, 'devices', device.id, 'ssh');
    const file = join(dir, 'host-keys.json');
    try {
      return JSON.parse(await readFile(file, 'utf8')) as HostKey[];
    } catch {
      /* first boot */
    }
    // Concurrent first requests (config and overlay, an admin's look) share one generation.
    let pending = this.keyGeneration.get(device.id);
    if (!pending) {
      pending = this.createHostKeys(device, dir, file).finally(() => this.keyGeneration.delete(device.id));
      this.keyGeneration.set(device.id, pending);
    }
    return pending;
  }

  private async createHostKeys(device: Device, dir: string, file: string): Promise<HostKey[]> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const keys = generateHostKeys(`root@${defaultHostname(device)}`);
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(tmp, JSON.stringify(keys), { mode: 0o600 });
    await chmod(tmp, 0o600);
    try {
      // Another process may have stored keys first: link never replaces, so the first one wins.
      await link(tmp, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      await rm(tmp, { force: true });
    }
    return JSON.parse(await readFile(file, 'utf8')) as HostKey[];
  }

  /** The per-device overlay as a deterministic tar.gz (the same inputs give the same sha256). */
  async overlay(device: Device, serverUrl: string): Promise<{ data: Buffer; sha256: string }> {
    const { image, group } = await this.imageAndGroup(device);
    const s = this.settings(group);
    const hostname = defaultHostname(device);
    const mtimeNs = BigInt(Date.parse(device.createdAt)) * 1_000_000n;
    const files = new Map<string, { data: Buffer; mode: number }>();
    const put = (path: string, text: string | Buffer, mode = 0o644) => files.set(path, { data: Buffer.isBuffer(text) ? text : Buffer.from(text), mode });

    put('etc/hostname', `${hostname}\n`);
    put('etc/hosts', `127.0.0.1\tlocalhost\n127.0.1.1\t${hostname}\n::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n`);
    // Stable per device, so journald and DHCP client ids survive reboots.
    put('etc/machine-id', `${createHash('sha256').update(`machine-id\0${device.id}`).digest('hex').slice(0, 32)}\n`, 0o444);
    for (const k of await this.hostKeys(device)) {
      put(`etc/ssh/${k.file}`, k.privateKey, 0o600);
      put(`etc/ssh/${k.file}.pub`, k.publicKey, 0o644);
    }
    const keys = [...this.defaults.authorizedKeys, ...(s.authorizedKeys ?? [])].filter((l) => parseAuthorizedKey(l) !== null);
    if (keys.length) put('root/.ssh/authorized_keys', `${keys.join('\n')}\n`, 0o600);
    const token = await this.tokens.tokenFor(device);
    put('etc/drover/agent.json', `${JSON.stringify({ server: serverUrl, node: device.id, serial: device.serial, token }, null, 2)}\n`, 0o600);
    put('etc/drover/device.json', `${JSON.stringify({ node: device.id, serial: device.serial, hostname, model: device.model, group: group?.name ?? null, labels: device.labels, image: `${image.name}:${image.tag}` }, null, 2)}\n`);
    if (s.dns?.length) put('etc/resolv.conf', `${s.dns.map((d) => `nameserver ${d}`).join('\n')}\n`);
    if (s.overlayDir) await this.userOverlay(s.overlayDir, { hostname, serial: device.serial, node: device.id, model: device.model ?? '', group: group?.name ?? '', image: `${image.name}:${image.tag}`, labels: device.labels }, put);

    const tar = await tarOfFiles([...files].map(([path, f]) => ({ path, ...f })), { mtimeNs, dirModes: { root: 0o700, 'root/.ssh': 0o700 } });
    const data = gzipSync(tar, { level: 6 });
    return { data, sha256: createHash('sha256').update(data).digest('hex') };
  }

  /** Copies a group's overlay directory; `name.tmpl` becomes `name` with {{facts}} filled in. */
  private async userOverlay(root: string, facts: { hostname: string; serial: string; node: string; model: string; group: string; image: string; labels: Record<string, string> }, put: (p: string, d: string | Buffer, mode?: number) => void): Promise<void> {
    let count = 0;
    let bytes = 0;
    const walk = async (dir: string): Promise<void> => {
      for (const name of (await readdir(dir)).sort()) {
        const abs = join(dir, name);
        const st = await lstat(abs);
        if (st.isSymbolicLink()) continue; // never follow links out of the overlay directory
        if (st.isDirectory()) {
          await walk(abs);
          continue;
        }
        if (!st.isFile()) continue;
        if (++count > MAX_OVERLAY_FILES || (bytes += st.size) > MAX_OVERLAY_BYTES) throw new DroverError('DROVER_IMAGE_INVALID', `The overlay directory ${root} is larger than ${MAX_OVERLAY_FILES} files or ${MAX_OVERLAY_BYTES} bytes.`);
        let rel = relative(root, abs).split(sep).join('/');
        let data: Buffer | string = await readFile(abs);
        if (rel.endsWith('.tmpl')) {
          rel = rel.slice(0, -5);
          data = renderTemplate(data.toString('utf8'), facts);
        }
        put(rel, data, st.mode & 0o7777);
      }
    };
    try {
      await walk(root);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new DroverError('DROVER_IMAGE_INVALID', `The group's overlay directory ${root} does not exist on the controller host.`);
      throw err;
    }
  }

  /** A phase report from the initramfs: an event, and the device's state. */
  async report(device: Device, r: BootReport, ip: string | null): Promise<void> {
    if (r.status === 'progress') {
      const now = Date.now();
      if (now - (this.lastProgress.get(device.id) ?? 0) < PROGRESS_EVENT_INTERVAL_MS) return;
      this.lastProgress.set(device.id, now);
    }
    await inTransaction(this.ctx, async (tx) => {
      const current = await tx.devices.get(device.id);
      if (!current) return;
      let state = current.state;
      if (r.status === 'failed' && r.phase !== 'rootfs-download' && r.phase !== 'stub-update') state = 'failed';
      else if (r.phase === 'initramfs') state = 'booting';
      else if (r.phase === 'switch-root' && r.status === 'ok') state = 'running';
      if (current.state === 'retired') state = current.state;
      const ipAddresses = ip && !ip.startsWith('127.') && current.ipAddresses[0] !== ip ? [ip] : undefined;
      const updated = await tx.devices.update(current.id, { state, lastSeen: tx.now, ipAddresses }, tx.now);
      const { phase, ...data } = r;
      await tx.emit({ type: `boot.${phase}`, deviceId: device.id, actor: 'initramfs', data });
      tx.changed(updated);
    });
  }

  /** Forces a fresh download on the next boot: the SD cache is dropped, the squashfs fetched again. */
  async reimage(device: Device, actor: string): Promise<number> {
    const gen = (await this.reimageGeneration(device.id)) + 1;
    await inTransaction(this.ctx, async (tx) => {
      await tx.meta.set(`reimage-generation:${device.id}`, String(gen));
      await tx.emit({ type: 'device.reimage', deviceId: device.id, actor, data: { generation: gen } });
    });
    return gen;
  }
}

/** The SD stub's version for an image: its boot files and initramfs checksums decide. */
export function stubVersionOf(image: Image): string {
  const kernels = (image.metadata.kernels ?? []) as { initramfsSha256?: string }[];
  if (!kernels.length || typeof kernels[0] !== 'object') return '';
  return createHash('sha256').update(`${image.sha256}\n${kernels.map((k) => k.initramfsSha256).join('\n')}`).digest('hex').slice(0, 16);
}

export function renderTemplate(text: string, facts: { hostname: string; serial: string; node: string; model: string; group: string; image: string; labels: Record<string, string> }): string {
  return text.replace(/\{\{\s*([a-zA-Z]+)(?:\.([A-Za-z0-9._/-]+))?\s*\}\}/g, (all, key: string, sub?: string) => {
    if (key === 'label' && sub) return facts.labels[sub] ?? '';
    const v = (facts as unknown as Record<string, unknown>)[key];
    return typeof v === 'string' ? v : all;
  });
}
