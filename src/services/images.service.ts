// Images: registering boot trees (the full OS-image pipeline comes later and produces the same
// layout), the default image, and where an image's boot files live.
import { join } from 'node:path';
import { DroverError } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import type { Image } from '../domain/records.js';
import { importBootDir } from '../images/boot-dir.js';
import { inTransaction, type ServiceContext } from './context.js';
import { resolveImage } from './devices.service.js';

const DEFAULT_KEY = 'image.default';

export interface ImageView extends Image {
  isDefault: boolean;
}

export class ImagesService {
  constructor(
    private readonly ctx: ServiceContext,
    private readonly dataDir: string,
  ) {}

  async list(): Promise<ImageView[]> {
    const def = await this.ctx.store.meta.get(DEFAULT_KEY);
    return (await this.ctx.store.images.list()).map((i) => ({ ...i, isDefault: i.id === def }));
  }

  async get(ref: string): Promise<ImageView> {
    const img = await resolveImage(this.ctx.store, ref);
    return { ...img, isDefault: img.id === (await this.ctx.store.meta.get(DEFAULT_KEY)) };
  }

  async defaultImage(): Promise<Image | undefined> {
    const id = await this.ctx.store.meta.get(DEFAULT_KEY);
    return id ? this.ctx.store.images.get(id) : undefined;
  }

  /** Absolute path of an image's boot tree. */
  bootDir(image: Image): string {
    const rel = image.metadata.bootDir;
    if (typeof rel !== 'string') throw new DroverError('DROVER_IMAGE_INVALID', `Image ${image.name}:${image.tag} has no boot tree.`);
    return join(this.dataDir, rel);
  }

  async addBootDir(input: { name: string; tag?: string | undefined; path: string; makeDefault?: boolean | undefined }, actor: string): Promise<ImageView> {
    const name = input.name.trim();
    const tag = (input.tag ?? 'latest').trim();
    if (!/^[a-z0-9][a-z0-9._-]{0,62}$/.test(name) || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(tag)) {
      throw new DroverError('DROVER_VALIDATION', 'Image names are 1-63 characters of a-z, 0-9, ".", "_", "-"; tags may also use capitals.');
    }
    if (await this.ctx.store.images.findByName(name, tag)) throw new DroverError('DROVER_IMAGE_EXISTS', `An image ${name}:${tag} already exists.`);
    const { info } = await importBootDir(input.path, join(this.dataDir, 'images', 'boot'));
    const image = await inTransaction(this.ctx, async (tx) => {
      const img = await tx.images.create({
        id: newId('img'),
        name,
        tag,
        sha256: info.sha256,
        status: 'ready',
        kind: 'boot-dir',
        metadata: { ...info, bootDir: join('images', 'boot', info.sha256), source: input.path },
        createdAt: tx.now,
      });
      await tx.emit({ type: 'image.added', deviceId: null, actor, data: { imageId: img.id, name: `${name}:${tag}`, files: info.files, bytes: info.bytes, models: info.models } });
      if (input.makeDefault) {
        await tx.meta.set(DEFAULT_KEY, img.id);
        await tx.emit({ type: 'image.default', deviceId: null, actor, data: { imageId: img.id } });
      }
      return img;
    });
    return { ...image, isDefault: Boolean(input.makeDefault) };
  }

  async setDefault(ref: string | null, actor: string): Promise<ImageView | null> {
    return inTransaction(this.ctx, async (tx) => {
      const img = ref ? await resolveImage(tx, ref) : null;
      if (img) await tx.meta.set(DEFAULT_KEY, img.id);
      else await tx.meta.set(DEFAULT_KEY, '');
      await tx.emit({ type: 'image.default', deviceId: null, actor, data: { imageId: img?.id ?? null } });
      return img && { ...img, isDefault: true };
    });
  }
}
