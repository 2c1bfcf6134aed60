// What the initramfs talks to while a device boots, all with the device's own token:
//   GET  /boot/v1/config            image, squashfs URL + sha256, overlay, tmpfs size, retry policy
//   GET  /boot/v1/overlay           the per-device overlay (tar.gz)
//   GET  /boot/v1/images/:id/rootfs.squashfs   the image's root, with Range (resumed downloads)
//   POST /boot/v1/report            one boot phase (initramfs, config, rootfs-download or rootfs-nfs, overlay, switch-root)
//   GET  /boot/v1/stub.tar          the SD stub's boot files (firmware, kernels, initramfs) for self-update
// plus cattlepi's API (`/boot/{id}/config` with X-Api-Key, `/images/...`) so existing cattlepi
// SD cards can point at Drover.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DroverError } from '../../domain/errors.js';
import type { Device, Image } from '../../domain/records.js';
import { normalizeMac } from '../../domain/device.js';
import { BootService, stubVersionOf } from '../../services/boot.service.js';
import { cattlepiInitfs, stubTar } from '../../images/boot-bundles.js';
import { assertDeviceScope, principalOf } from '../auth.js';
import type { ApiDeps } from '../app.js';
import { ErrorBody, errors } from '../schemas.js';

const BootConfigSchema = Type.Object({
  node: Type.String(),
  serial: Type.String(),
  hostname: Type.String(),
  bootMode: Type.String(),
  image: Type.Object({ id: Type.String(), name: Type.String(), tag: Type.String(), sha256: Type.Union([Type.String(), Type.Null()]) }),
  rootfs: Type.Object({ url: Type.String(), sha256: Type.String(), size: Type.Integer() }),
  overlay: Type.Object({ url: Type.String(), sha256: Type.String() }),
  tmpfsSize: Type.String(),
  retrySeconds: Type.Integer(),
  offlineAfterSeconds: Type.Integer(),
  reimage: Type.Integer(),
  stub: Type.Union([Type.Object({ version: Type.String(), url: Type.String() }), Type.Null()]),
  nfs: Type.Union([Type.Object({ root: Type.String(), rw: Type.String() }), Type.Null()]),
});

const ReportBody = Type.Object(
  {
    phase: Type.Union(['initramfs', 'network', 'config', 'rootfs-download', 'rootfs-nfs', 'overlay', 'switch-root', 'stub-update'].map((p) => Type.Literal(p))),
    status: Type.Union([Type.Literal('ok'), Type.Literal('failed'), Type.Literal('progress'), Type.Literal('start')]),
    message: Type.Optional(Type.String({ maxLength: 500 })),
    bytes: Type.Optional(Type.Integer({ minimum: 0 })),
    total: Type.Optional(Type.Integer({ minimum: 0 })),
    ms: Type.Optional(Type.Integer({ minimum: 0 })),
    bytesPerSecond: Type.Optional(Type.Integer({ minimum: 0 })),
    attempt: Type.Optional(Type.Integer({ minimum: 0 })),
    attempts: Type.Optional(Type.Integer({ minimum: 0 })),
    cached: Type.Optional(Type.Boolean()),
    cache: Type.Optional(Type.Boolean()),
    offline: Type.Optional(Type.Boolean()),
    serial: Type.Optional(Type.String({ maxLength: 32 })),
    imageId: Type.Optional(Type.String({ maxLength: 64 })),
    nfsVersion: Type.Optional(Type.String({ maxLength: 8 })),
    layer: Type.Optional(Type.Union([Type.Literal('persistent'), Type.Literal('tmpfs')])),
  },
  { additionalProperties: false },
);

const binary = Type.Unsafe<Buffer>({ type: 'string', format: 'binary' });

/** Sends a file with Range support (one range): resumed downloads and partial re-fetches. */
async function sendRange(req: FastifyRequest, reply: FastifyReply, path: string, type: string): Promise<FastifyReply> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch {
    throw new DroverError('DROVER_BOOT_FILE_NOT_FOUND', 'The image file is missing from the data directory.');
  }
  reply.header('accept-ranges', 'bytes').header('cache-control', 'no-cache').type(type);
  const range = req.headers.range;
  const m = range ? /^bytes=(\d*)-(\d*)$/.exec(range.trim()) : null;
  if (range && m && (m[1] || m[2])) {
    let start = m[1] ? Number(m[1]) : size - Number(m[2]);
    let end = m[1] && m[2] ? Number(m[2]) : size - 1;
    if (!m[1]) start = Math.max(0, start);
    end = Math.min(end, size - 1);
    if (start >= size || start > end) return reply.status(416).header('content-range', `bytes */${size}`).send();
    reply.status(206).header('content-range', `bytes ${start}-${end}/${size}`).header('content-length', end - start + 1);
    return reply.send(createReadStream(path, { start, end, highWaterMark: 1024 * 1024 }));
  }
  reply.header('content-length', size);
  return reply.send(createReadStream(path, { highWaterMark: 1024 * 1024 }));
}

export const bootConfigRoutes = (deps: ApiDeps): FastifyPluginAsyncTypebox => async (app) => {
  const { boot, images, devices } = deps.services;

  /** The device a boot request is about: a device token's own, or ?node= for people debugging. */
  async function deviceOf(req: FastifyRequest, node: string | undefined): Promise<Device> {
    const p = principalOf(req);
    if (p.role === 'device') {
      if (!p.deviceId) throw new DroverError('DROVER_AUTH_FORBIDDEN');
      // A device token naming another device is refused (as assertDeviceScope does elsewhere),
      // never answered with some device's data; naming itself, or nothing, gets its own.
      if (node !== undefined) assertDeviceScope(req, (await devices.get(node).catch(() => undefined))?.id ?? '');
      return devices.get(p.deviceId);
    }
    if (!node) throw new DroverError('DROVER_VALIDATION', 'Name the device with ?node= (device tokens need not).');
    return devices.get(node);
  }

  app.get('/boot/v1/config', {
    config: { auth: 'device-read' },
    schema: {
      tags: ['boot'],
      summary: "A booting device's config: image, squashfs URL and sha256, overlay, tmpfs size, retry policy. `?format=sh` gives shell assignments for the initramfs",
      querystring: Type.Object({ format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('sh')])), node: Type.Optional(Type.String({ maxLength: 200 })) }, { additionalProperties: false }),
      response: { 200: BootConfigSchema, ...errors(400, 404, 500, 503) },
    },
  }, async (req, reply) => {
    const device = await deviceOf(req, req.query.node);
    const config = await boot.config(device, deps.serverUrl(req.ip), req.ip);
    reply.header('cache-control', 'no-store');
    if (req.query.format === 'sh') return reply.type('text/plain; charset=utf-8').serializer((x: unknown) => String(x)).send(BootService.toShell(config) as never);
    return config;
  });

  app.get('/boot/v1/overlay', {
    config: { auth: 'device-read' },
    schema: { tags: ['boot'], summary: "The device's overlay (tar.gz): hostname, hosts, machine-id, SSH host keys, authorized_keys, agent config, the group's overlay directory", querystring: Type.Object({ node: Type.Optional(Type.String({ maxLength: 200 })) }, { additionalProperties: false }), produces: ['application/gzip'], response: { 200: binary, ...errors(400, 404) } },
  }, async (req, reply) => {
    const device = await deviceOf(req, req.query.node);
    if (principalOf(req).role !== 'device' && principalOf(req).role !== 'admin') throw new DroverError('DROVER_AUTH_FORBIDDEN', 'The overlay holds the device\'s host keys and token: only the device itself or an admin may read it.');
    const o = await boot.overlay(device, deps.serverUrl(req.ip));
    return reply.type('application/gzip').header('cache-control', 'no-store').header('x-drover-sha256', o.sha256).send(o.data);
  });

  app.get('/boot/v1/images/:id/rootfs.squashfs', {
    config: { auth: 'device-read' },
    schema: { tags: ['boot'], summary: "An image's root filesystem (squashfs); supports Range for resumed downloads", params: Type.Object({ id: Type.String({ maxLength: 200 }) }), produces: ['application/octet-stream'], response: { 200: binary, 206: binary, 416: Type.Null(), ...errors(404) } },
  }, async (req, reply) => {
    const image = await images.get(req.params.id);
    return sendRange(req, reply, images.rootfsPath(image), 'application/octet-stream');
  });

  app.post('/boot/v1/report', {
    config: { auth: 'device-write' },
    schema: { tags: ['boot'], summary: 'A boot phase reported by the initramfs (recorded as a boot.<phase> event)', body: ReportBody, response: { 204: Type.Null(), ...errors(400, 404) } },
  }, async (req, reply) => {
    const p = principalOf(req);
    if (p.role !== 'device' || !p.deviceId) throw new DroverError('DROVER_AUTH_FORBIDDEN', 'Only a device token reports boot phases.');
    await boot.report(await devices.get(p.deviceId), req.body, req.ip);
    return reply.status(204).send(null);
  });

  app.get('/boot/v1/stub.tar', {
    config: { auth: 'device-read' },
    schema: { tags: ['boot'], summary: "The SD stub's boot partition files for the device's image (firmware, kernels, DTBs, Drover initramfs, config)", querystring: Type.Object({ node: Type.Optional(Type.String({ maxLength: 200 })) }, { additionalProperties: false }), produces: ['application/x-tar'], response: { 200: binary, ...errors(400, 404) } },
  }, async (req, reply) => {
    const device = await deviceOf(req, req.query.node);
    // Only the image is needed: the full config would also render the overlay.
    const { image } = await boot.bootableImage(device);
    const data = await stubTar(images.bootDir(image), image, { server: deps.serverUrl(req.ip), version: stubVersionOf(image) });
    return reply.type('application/x-tar').header('cache-control', 'no-store').send(data);
  });

  app.get('/api/v1/sdcard/stub.tar', {
    config: { auth: 'operate' },
    schema: {
      tags: ['images'],
      summary: 'The boot files of a generic SD stub card (drover sdcard build): firmware, kernels, DTBs, Drover initramfs, config.txt and cmdline.txt pointing at `server`',
      querystring: Type.Object({ server: Type.String({ minLength: 8, maxLength: 300, pattern: '^https?://[^\\s]+$' }), image: Type.Optional(Type.String({ maxLength: 200 })) }, { additionalProperties: false }),
      produces: ['application/x-tar'],
      response: { 200: binary, ...errors(400, 404) },
    },
  }, async (req, reply) => {
    const image = req.query.image ? await images.get(req.query.image) : await images.defaultImage();
    if (!image) throw new DroverError('DROVER_NO_DEFAULT_IMAGE', 'Name an image with --image, or set a default image.');
    if (image.kind !== 'os-image') throw new DroverError('DROVER_IMAGE_INVALID', `${image.name}:${image.tag} is a boot tree without Drover's initramfs; use an image added with drover image add.`);
    const data = await stubTar(images.bootDir(image), image, { server: req.query.server.replace(/\/$/, ''), version: stubVersionOf(image) });
    return reply.type('application/x-tar').header('cache-control', 'no-store').send(data);
  });

  app.post('/api/v1/devices/:id/reimage', {
    config: { auth: 'operate' },
    schema: { tags: ['devices'], summary: 'Force a fresh root filesystem download on the next boot (drops an SD stub\'s cache)', params: Type.Object({ id: Type.String({ maxLength: 200 }) }), response: { 200: Type.Object({ generation: Type.Integer() }), ...errors(404) } },
  }, async (req) => ({ generation: await boot.reimage(await devices.get(req.params.id), principalOf(req).userId ? `user:${principalOf(req).name}` : `token:${principalOf(req).name}`) }));

  // ---- cattlepi compatibility -----------------------------------------------------------------
  /** cattlepi sends its API key as X-Api-Key; here that is any Drover token (device or read). */
  async function cattlepiAuth(req: FastifyRequest) {
    const key = req.headers['x-api-key'];
    if (typeof key !== 'string' || !key) throw new DroverError('DROVER_AUTH_MISSING', 'cattlepi clients send their key as X-Api-Key.');
    const retryAfter = deps.limiter.retryAfter(req.ip);
    if (retryAfter > 0) throw new DroverError('DROVER_AUTH_RATE_LIMITED', undefined, { retryAfter });
    try {
      return await deps.services.auth.authenticate(key);
    } catch (err) {
      if (err instanceof DroverError && err.code === 'DROVER_AUTH_INVALID') deps.limiter.recordFailure(req.ip);
      throw err;
    }
  }

  async function cattlepiDevice(principal: Awaited<ReturnType<typeof cattlepiAuth>>, id: string): Promise<Device> {
    if (principal.role === 'device') {
      const d = await devices.get(principal.deviceId ?? '');
      return d;
    }
    // cattlepi names a device by its MAC; Drover ids, serials and hostnames work too.
    let ref = id;
    try {
      ref = normalizeMac(id.replace(/-/g, ':'));
    } catch {
      /* not a MAC */
    }
    return devices.get(ref);
  }

  app.get('/boot/:id/config', {
    config: { auth: 'none' },
    schema: {
      tags: ['boot', 'cattlepi'],
      summary: "cattlepi's boot config for a device (X-Api-Key): initfs and rootfs with url and md5sum",
      security: [],
      params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
      response: { 200: Type.Object({ initfs: Type.Object({ url: Type.String(), md5sum: Type.String() }), rootfs: Type.Object({ url: Type.String(), md5sum: Type.String() }), bootcode: Type.String(), usercode: Type.String(), config: Type.Record(Type.String(), Type.Unknown()) }), 401: Type.Ref(ErrorBody), 403: Type.Ref(ErrorBody), 404: Type.Ref(ErrorBody), 429: Type.Ref(ErrorBody) },
    },
  }, async (req) => {
    const principal = await cattlepiAuth(req);
    const device = await cattlepiDevice(principal, req.params.id);
    const { image } = await boot.imageAndGroup(device);
    const rootfs = image.metadata.rootfs as { md5?: string } | undefined;
    if (!rootfs?.md5) throw new DroverError('DROVER_IMAGE_INVALID', `Image ${image.name}:${image.tag} has no root filesystem.`);
    const server = deps.serverUrl(req.ip);
    const initfs = await cattlepiInitfs(images.bootDir(image), image);
    return {
      initfs: { url: `${server}/images/${image.id}/initfs.tgz`, md5sum: initfs.md5 },
      rootfs: { url: `${server}/images/${image.id}/rootfs.sqsh`, md5sum: rootfs.md5 },
      bootcode: '',
      usercode: '',
      config: { hostname: device.hostname ?? `pi-${device.serial}`, drover: { node: device.id, image: `${image.name}:${image.tag}` } },
    };
  });

  app.get('/images/:id/:file', {
    config: { auth: 'none' },
    schema: { tags: ['cattlepi'], summary: "cattlepi's image files (X-Api-Key): initfs.tgz (the boot partition) and rootfs.sqsh", security: [], params: Type.Object({ id: Type.String({ maxLength: 64 }), file: Type.String({ maxLength: 64, description: 'initfs.tgz or rootfs.sqsh' }) }), produces: ['application/octet-stream'], response: { 200: binary, 206: binary, 401: Type.Ref(ErrorBody), 404: Type.Ref(ErrorBody) } },
  }, async (req, reply) => {
    await cattlepiAuth(req);
    if (req.params.file !== 'initfs.tgz' && req.params.file !== 'rootfs.sqsh') throw new DroverError('DROVER_BOOT_FILE_NOT_FOUND', 'cattlepi images have initfs.tgz and rootfs.sqsh.');
    const image: Image = await images.get(req.params.id);
    if (req.params.file === 'rootfs.sqsh') return sendRange(req, reply, images.rootfsPath(image), 'application/octet-stream');
    const initfs = await cattlepiInitfs(images.bootDir(image), image);
    return sendRange(req, reply, initfs.path, 'application/gzip');
  });
};
