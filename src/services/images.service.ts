// Images: OS images ingested into a bootable squashfs + boot tree (images/ingest.ts), plain boot
// trees, the default image, tags, removal, and where an image's files live. An ingest is a job
// held in memory while it runs: progress goes to live streams, and only a finished image ever
// becomes a row (a crash or a bad file leaves nothing behind).
import { randomBytes } from 'node:crypto';
import { rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DroverError, isDroverError } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import type { Image, IngestJob } from '../domain/records.js';
import { importBootDir } from '../images/boot-dir.js';
import { ingestOsImage, removeIngestLeftovers, type OsImageInfo } from '../images/ingest.js';
import { inTransaction, type ServiceContext } from './context.js';
import { resolveImage } from './devices.service.js';


const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const TAG_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
/** Finished jobs stay visible this long, so a client that reconnects can still read the outcome. */
const JOB_RETENTION_MS = 10 * 60_000;

const DEFAULT_KEY = 'image.default';

export interface ImageView extends Image {
  isDefault: boolean;
}

export function parseImageName(input: string, tag?: string): { name: string; tag: string } {
  let name = input.trim();
  let t = tag?.trim();
  const colon = name.lastIndexOf(':');
  if (colon > 0 && t === undefined) {
    t = name.slice(colon + 1);
    name = name.slice(0, colon);
  }
  t ||= 'latest';
  if (!NAME_RE.test(name) || !TAG_RE.test(t)) {
    throw new DroverError('DROVER_VALIDATION', 'Image names are 1-63 characters of a-z, 0-9, ".", "_", "-"; tags may also use capitals.');
  }
  return { name, tag: t };
}

export type { IngestJob };

export class ImagesService {
  private readonly jobs = new Map<string, IngestJob>();

  constructor(
    private readonly ctx: ServiceContext,
    private readonly dataDir: string,
    /** What ingests add to images (the `imageAgent` setting). */
    private readonly agentMode: 'runtime' | 'agent' | 'off' = 'runtime',
  ) {}

  get osStoreDir(): string {
    return join(this.dataDir, 'images', 'os');
  }

  /** Clears what a crashed ingest left (work directories); call before serving. */
  async cleanLeftovers(): Promise<number> {
    return removeIngestLeftovers(this.osStoreDir);
  }

  /** Absolute path of a file that belongs to an image (rootfs, boot files). */
  imagePath(image: Image, rel: string): string {
    return join(this.dataDir, rel);
  }

  rootfsPath(image: Image): string {
    const r = image.metadata.rootfs as { path?: string } | undefined;
    if (!r?.path) throw new DroverError('DROVER_IMAGE_INVALID', `Image ${image.name}:${image.tag} has no root filesystem (it is a boot tree only).`);
    return join(this.dataDir, r.path);
  }

  listJobs(): IngestJob[] {
    const now = Date.now();
    for (const [id, j] of this.jobs) if (j.finishedAt && now - Date.parse(j.finishedAt) > JOB_RETENTION_MS) this.jobs.delete(id);
    return [...this.jobs.values()];
  }

  getJob(id: string): IngestJob {
    const j = this.jobs.get(id);
    if (!j) throw new DroverError('DROVER_INGEST_NOT_FOUND', `No image ingest ${id}.`);
    return j;
  }

  /**
   * Starts ingesting an OS image file on the controller host. Resolves with the job at once;
   * `done` settles when the image is stored (or the ingest failed). `removeSource` deletes the
   * file afterwards (uploads).
   */
  /** NAME[:TAG] parsed, refused when malformed or taken: before an upload is read, and again at ingest. */
  async freeName(input: string, tagArg?: string): Promise<{ name: string; tag: string }> {
    const { name, tag } = parseImageName(input, tagArg);
    if (await this.ctx.store.images.findByName(name, tag)) throw new DroverError('DROVER_IMAGE_EXISTS', `An image ${name}:${tag} already exists.`);
    return { name, tag };
  }

  async startIngest(input: { name: string; tag?: string | undefined; path: string; makeDefault?: boolean | undefined; removeSource?: boolean; sourceName?: string | undefined }, actor: string): Promise<{ job: IngestJob; done: Promise<IngestJob> }> {
    let name: string;
    let tag: string;
    try {
      ({ name, tag } = await this.freeName(input.name, input.tag));
      const st = await stat(input.path).catch(() => null);
      if (!st?.isFile()) throw new DroverError('DROVER_VALIDATION', `There is no file ${input.path} on the controller host (the path is read by the controller, not the client).`);
    } catch (err) {
      if (input.removeSource) await rm(input.path, { force: true });
      throw err;
    }
    const job: IngestJob = {
      id: newId('ing'), name, tag, source: input.sourceName ?? input.path.split('/').pop() ?? input.path, status: 'running', phase: 'queued',
      done: 0, total: null, startedAt: new Date().toISOString(), finishedAt: null, imageId: null, error: null,
    };
    this.jobs.set(job.id, job);
    const publish = () => this.ctx.bus.publish({ kind: 'progress', job: { ...job } });
    publish();
    const done = (async () => {
      // The job turns done/failed only once everything is settled (event recorded, upload
      // removed): a client that sees the outcome must not find the work still going on.
      let outcome: Pick<IngestJob, 'status' | 'imageId' | 'error'>;
      try {
        const r = await ingestOsImage({
          source: input.path,
          storeDir: this.osStoreDir,
          agent: this.agentMode === 'off' ? false : { ...(this.agentMode === 'agent' ? { runtime: false as const } : { runtime: { cacheDir: join(this.dataDir, 'runtimes') } }) },
          onProgress: (p) => {
            Object.assign(job, p);
            publish();
          },
        });
        const img = await this.recordOsImage(name, tag, r.info, r.reused, input.makeDefault, actor, job.id);
        outcome = { status: 'done', imageId: img.id, error: null };
      } catch (err) {
        const code = isDroverError(err) ? err.code : 'DROVER_INTERNAL';
        const message = err instanceof Error ? err.message : String(err);
        outcome = { status: 'failed', imageId: null, error: { code, message } };
        await inTransaction(this.ctx, (tx) =>
          tx.emit({ type: 'image.ingest-failed', deviceId: null, actor, data: { ingestId: job.id, name: `${name}:${tag}`, source: job.source, code, message } }),
        ).catch(() => undefined);
      } finally {
        if (input.removeSource) await rm(input.path, { force: true }).catch(() => undefined);
      }
      Object.assign(job, { ...outcome, finishedAt: new Date().toISOString() });
      publish();
      return { ...job };
    })();
    return { job: { ...job }, done };
  }

  private async recordOsImage(name: string, tag: string, info: OsImageInfo, reused: boolean, makeDefault: boolean | undefined, actor: string, ingestId: string): Promise<Image> {
    const base = join('images', 'os', info.sha256);
    return inTransaction(this.ctx, async (tx) => {
      const img = await tx.images.create({
        id: newId('img'),
        name,
        tag,
        sha256: info.sha256,
        status: 'ready',
        kind: 'os-image',
        metadata: {
          ...info,
          // Flattened for the boot tree and clients that know boot-dir images.
          bootDir: join(base, 'boot'),
          kernels: info.kernels,
          initramfs: info.kernels.map((k) => k.initramfs),
          dtbs: info.boot.dtbs,
          models: info.models,
          rootfs: { ...info.rootfs, path: join(base, info.rootfs.file) },
        },
        createdAt: tx.now,
      });
      await tx.emit({
        type: 'image.added', deviceId: null, actor,
        data: { imageId: img.id, name: `${name}:${tag}`, ingestId, reused, sha256: info.sha256, kernels: info.kernels.map((k) => `${k.file} ${k.version}`), models: info.models, rootfsBytes: info.rootfs.bytes },
      });
      if (makeDefault) {
        await tx.meta.set(DEFAULT_KEY, img.id);
        await tx.emit({ type: 'image.default', deviceId: null, actor, data: { imageId: img.id } });
      }
      return img;
    });
  }

  /** Adds another name:tag for a stored image (the files are shared). */
  async tag(ref: string, newName: string, actor: string): Promise<ImageView> {
    const src = await resolveImage(this.ctx.store, ref);
    const { name, tag } = parseImageName(newName);
    const img = await inTransaction(this.ctx, async (tx) => {
      const created = await tx.images.create({ id: newId('img'), name, tag, sha256: src.sha256, status: src.status, kind: src.kind, metadata: src.metadata, createdAt: tx.now });
      await tx.emit({ type: 'image.tagged', deviceId: null, actor, data: { imageId: created.id, from: `${src.name}:${src.tag}`, name: `${name}:${tag}` } });
      return created;
    });
    return { ...img, isDefault: false };
  }

  /** Who uses an image: devices and groups assigned to it, and whether it is the default. */
  async usage(image: Image): Promise<{ devices: string[]; groups: string[]; isDefault: boolean }> {
    const devices = await this.ctx.store.devices.idsWithImage(image.id, 20);
    const groups = (await this.ctx.store.groups.list()).filter((g) => g.imageId === image.id).map((g) => g.name);
    return { devices, groups, isDefault: (await this.ctx.store.meta.get(DEFAULT_KEY)) === image.id };
  }

  /** Removes an image; refuses while anything uses it. Files go when no other tag shares them. */
  async remove(ref: string, actor: string): Promise<void> {
    const img = await resolveImage(this.ctx.store, ref);
    const u = await this.usage(img);
    if (u.devices.length || u.groups.length || u.isDefault) {
      // Devices by the name people know them by (hostname, else serial), with the id to act on.
      const names = await Promise.all(u.devices.map(async (id) => {
        const d = await this.ctx.store.devices.get(id);
        return d ? `${d.hostname ?? d.serial} (${id})` : id;
      }));
      const who = [...(u.isDefault ? ['the default image'] : []), ...(u.groups.length ? [`groups ${u.groups.join(', ')}`] : []), ...(names.length ? [`devices ${names.join(', ')}${names.length === 20 ? ' and maybe more' : ''}`] : [])];
      throw new DroverError('DROVER_IMAGE_IN_USE', `${img.name}:${img.tag} is used by ${who.join('; ')}.`);
    }
    const shared = (await this.ctx.store.images.list()).some((i) => i.id !== img.id && i.sha256 === img.sha256 && i.kind === img.kind);
    await inTransaction(this.ctx, async (tx) => {
      await tx.images.delete(img.id);
      await tx.emit({ type: 'image.removed', deviceId: null, actor, data: { imageId: img.id, name: `${img.name}:${img.tag}`, sha256: img.sha256, filesRemoved: !shared } });
    });
    if (!shared && img.sha256) {
      const dir = img.kind === 'os-image' ? join(this.osStoreDir, img.sha256) : join(this.dataDir, 'images', 'boot', img.sha256);
      // Renamed away first, so a half-deleted image directory is never mistaken for a stored one.
      const trash = join(dir, '..', `.tmp-rm-${randomBytes(4).toString('hex')}`);
      await rename(dir, trash).catch(() => undefined);
      await rm(trash, { recursive: true, force: true });
    }
  }

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
    // The tag is always given here, so a colon in the name is never read as NAME:TAG.
    const { name, tag } = await this.freeName(input.name, input.tag ?? 'latest');
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
