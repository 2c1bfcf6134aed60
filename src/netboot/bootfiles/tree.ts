// The per-device virtual boot tree served over TFTP and HTTP:
//   <serial>/<path>            (TFTP_PREFIX=0, the default)
//   <mac-with-dashes>/<path>   (TFTP_PREFIX=2)
//   <path>                     (no prefix: the default image)
// resolve to the boot files of the image assigned to the device, else its group's, else the
// default image. config.txt and cmdline.txt are rendered per device. An unknown serial becomes an
// incoming device the first time its bootloader asks for anything.
import { readFile } from 'node:fs/promises';
import { DroverError } from '../../domain/errors.js';
import type { Device, Group, Image } from '../../domain/records.js';
import { recordSighting } from '../../services/devices.service.js';
import type { Services } from '../../services/index.js';
import { nfsCmdlineArgs } from '../../images/nfs-root.js';
import { BootPathError, confine, normalizeBootPath } from './paths.js';
import type { FileCache } from './file-cache.js';
import { renderCmdline, renderConfigTxt, type RenderContext } from './render.js';

export type BootPolicy = 'default-image' | 'known-only';

export interface BootTreeOptions {
  services: Services;
  cache: FileCache;
  /** The URL a device at `clientAddress` should use to reach the controller. */
  serverUrl: (clientAddress: string | null) => string;
  /** Serve the default image to devices nobody accepted yet (incoming, unknown). */
  policy: BootPolicy;
}

export interface ResolvedBootFile {
  data: Buffer;
  /** Path inside the image's tree. */
  file: string;
  device: Device | null;
  image: Image;
  rendered: boolean;
}

const SERIAL_PREFIX = /^[0-9a-f]{8}$/;
const MAC_PREFIX = /^[0-9a-f]{2}(-[0-9a-f]{2}){5}$/;
const SERVABLE_STATES = new Set(['incoming', 'accepted', 'booting', 'running', 'suspect', 'failed']);

export class BootTree {
  constructor(private readonly o: BootTreeOptions) {}

  /** Splits `1a2b3c4d/start4.elf` into the device key and the path inside the tree. */
  static split(path: string): { kind: 'serial' | 'mac' | 'none'; key: string | null; rest: string } {
    const norm = normalizeBootPath(path);
    const slash = norm.indexOf('/');
    const head = (slash < 0 ? '' : norm.slice(0, slash)).toLowerCase();
    if (SERIAL_PREFIX.test(head)) return { kind: 'serial', key: head, rest: norm.slice(slash + 1) };
    if (MAC_PREFIX.test(head)) return { kind: 'mac', key: head.replace(/-/g, ':'), rest: norm.slice(slash + 1) };
    return { kind: 'none', key: null, rest: norm };
  }

  async resolve(path: string, clientAddress: string | null): Promise<ResolvedBootFile> {
    const { kind, key, rest } = BootTree.split(path);
    let device: Device | null = null;
    if (kind === 'serial') device = (await this.o.services.ctx.store.devices.findBySerial(key!)) ?? (await this.discover(key!));
    else if (kind === 'mac') device = (await this.o.services.ctx.store.devices.findByMac(key!)) ?? null;
    if (device && !SERVABLE_STATES.has(device.state)) throw new BootPathError('not-found'); // retired or rejected
    if (this.o.policy === 'known-only' && (!device || device.state === 'incoming')) throw new BootPathError('not-found');
    const group = device?.groupId ? await this.o.services.ctx.store.groups.get(device.groupId) : undefined;
    const image = await this.imageFor(device, group);
    const root = this.o.services.images.bootDir(image);
    if (rest === 'cmdline.txt' || rest === 'config.txt') {
      const original = await this.readOptional(root, rest);
      const ctx = await this.renderContext(device, group, image, clientAddress);
      const text = rest === 'cmdline.txt' ? renderCmdline(original, ctx) : renderConfigTxt(original, ctx);
      return { data: Buffer.from(text), file: rest, device, image, rendered: true };
    }
    const data = await this.o.cache.read(await confine(root, rest));
    return { data, file: rest, device, image, rendered: false };
  }

  private async imageFor(device: Device | null, group: Group | undefined): Promise<Image> {
    const store = this.o.services.ctx.store;
    const id = device?.imageId ?? group?.imageId ?? null;
    const image = id ? await store.images.get(id) : await this.o.services.images.defaultImage();
    if (!image) throw new DroverError('DROVER_NO_DEFAULT_IMAGE');
    return image;
  }

  private async readOptional(root: string, rel: string): Promise<string | null> {
    try {
      return await readFile(await confine(root, rel), 'utf8');
    } catch (err) {
      if (err instanceof BootPathError && err.reason === 'not-found') return null;
      throw err;
    }
  }

  private async renderContext(device: Device | null, group: Group | undefined, image: Image, clientAddress: string | null): Promise<RenderContext> {
    const initramfs = Array.isArray(image.metadata.initramfs) ? (image.metadata.initramfs as string[]) : [];
    const serverUrl = this.o.serverUrl(clientAddress);
    const bootMode = device?.bootMode ?? group?.bootMode ?? 'ramroot';
    return {
      serverUrl,
      deviceId: device?.id ?? 'unknown',
      serial: device?.serial ?? 'unknown',
      hostname: device?.hostname ?? null,
      // Incoming devices get no token: nothing to read until a person accepts them.
      token: device && device.state !== 'incoming' ? await this.o.services.deviceTokens.tokenFor(device) : 'none',
      bootMode,
      imageId: image.id,
      initramfs: initramfs.find((f) => f === 'initramfs8') ?? initramfs[0] ?? null,
      osKernels: image.kind === 'os-image' ? (image.metadata.kernels as { file: string; initramfs: string }[]) : undefined,
      nfsArgs: bootMode === 'nfs' && device ? this.nfsArgs(device, image, serverUrl) : undefined,
    };
  }

  /**
   * nfsroot= and drover.nfs.rw= for the cmdline. The initramfs takes the same paths from its
   * boot config (which also makes the exports name the device's address); rendering them here
   * documents the boot on the card and serves kernels booted without Drover's initramfs.
   */
  private nfsArgs(device: Device, image: Image, serverUrl: string): string[] | undefined {
    const sha = (image.metadata.rootfs as { sha256?: string } | undefined)?.sha256;
    if (!sha) return undefined;
    try {
      return nfsCmdlineArgs(this.o.services.nfs.serverAddress(serverUrl), this.o.services.nfs.exportRoot, sha, device.id);
    } catch {
      return undefined; // no IPv4 server address: the initramfs still gets the paths from its config
    }
  }

  /** An unknown serial asking for boot files: record an incoming device and say so. */
  private async discover(serial: string): Promise<Device> {
    const d = await recordSighting(this.o.services.ctx, { serial, mac: null, model: null, boardRevision: null, ip: null, via: 'tftp' });
    return d!;
  }
}
