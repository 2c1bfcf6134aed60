import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { DroverError } from '../../domain/errors.js';
import { actorOf } from '../auth.js';
import type { ApiDeps } from '../app.js';
import { Image, Nullable, Ref, errors, list } from '../schemas.js';

const IngestJob = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    tag: Type.String(),
    source: Type.String(),
    status: Type.Union([Type.Literal('running'), Type.Literal('done'), Type.Literal('failed')]),
    phase: Type.String({ description: 'receive, decompress, partitions, boot-files, initramfs, runtime, rootfs, store' }),
    done: Type.Number(),
    total: Nullable(Type.Number()),
    startedAt: Type.String(),
    finishedAt: Nullable(Type.String()),
    imageId: Nullable(Type.String()),
    error: Nullable(Type.Object({ code: Type.String(), message: Type.String() })),
  },
  { $id: 'IngestJob' },
);

const UploadQuery = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 130, description: 'NAME or NAME:TAG' }),
    tag: Type.Optional(Type.String({ minLength: 1, maxLength: 63 })),
    default: Type.Optional(Type.Boolean()),
    filename: Type.Optional(Type.String({ maxLength: 255, description: 'The original file name, for the record' })),
  },
  { additionalProperties: false },
);

const PathBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 130 }),
    tag: Type.Optional(Type.String({ minLength: 1, maxLength: 63 })),
    path: Type.String({ minLength: 1, maxLength: 4096, description: 'An image file on the controller host (.img, .img.xz, .img.gz, .zip)' }),
    default: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

const BootDirBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 63 }),
    tag: Type.Optional(Type.String({ minLength: 1, maxLength: 63 })),
    path: Type.String({ minLength: 1, maxLength: 4096, description: 'A directory on the controller host' }),
    default: Type.Optional(Type.Boolean({ description: 'Also make it the default image' })),
  },
  { additionalProperties: false },
);

export const imageRoutes = (deps: ApiDeps): FastifyPluginAsyncTypebox => async (app) => {
  const { images } = deps.services;
  app.addSchema(IngestJob);
  const uploadLimit = deps.imageUploadLimit ?? 64 * 1024 ** 3;

  // Uploads are streamed to disk as they arrive; nothing is buffered in memory.
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));

  app.post('/api/v1/images', {
    config: { auth: 'admin' },
    bodyLimit: Number.MAX_SAFE_INTEGER,
    // A refusal sent before the body was read (auth, type, size, name) closes the connection:
    // otherwise the client's upload stalls on an unread body until the keep-alive timeout.
    onSend: async (req, reply, payload) => {
      if (!req.raw.complete) reply.header('connection', 'close');
      return payload;
    },
    schema: {
      tags: ['images'],
      summary: 'Upload an OS image (.img, .img.xz, .img.gz, .zip) as the request body (application/octet-stream); answers 202 with the ingest job to follow',
      querystring: UploadQuery,
      response: { 202: Type.Ref(IngestJob), ...errors(400, 409, 413, 415) },
    },
  }, async (req, reply) => {
    const q = req.query;
    if (req.headers['content-type']?.split(';')[0]?.trim() !== 'application/octet-stream') throw new DroverError('DROVER_UNSUPPORTED_MEDIA_TYPE', 'Send the image file as the body with Content-Type: application/octet-stream.');
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > uploadLimit) throw new DroverError('DROVER_BODY_TOO_LARGE', `The upload is ${declared} bytes; this controller accepts up to ${uploadLimit} (imageUploadLimit).`);
    await images.freeName(q.name, q.tag); // a bad or taken name is refused before gigabytes arrive
    // Beside the ingest work directories: a `.tmp-*` name, so a crash leaves nothing that a
    // restart (cleanLeftovers) does not remove, and no directory stays behind afterwards.
    await mkdir(images.osStoreDir, { recursive: true });
    const file = join(images.osStoreDir, `.tmp-upload-${randomBytes(8).toString('hex')}-${(q.filename ?? 'upload').replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 80)}`);
    let received = 0;
    const limit = new Transform({
      transform(chunk: Buffer, _e, cb) {
        received += chunk.length;
        if (received > uploadLimit) cb(new DroverError('DROVER_BODY_TOO_LARGE', `The upload passed ${uploadLimit} bytes (imageUploadLimit).`));
        else cb(null, chunk);
      },
    });
    try {
      await pipeline(req.body as NodeJS.ReadableStream, limit, createWriteStream(file, { flags: 'wx', mode: 0o600 }));
    } catch (err) {
      await rm(file, { force: true });
      if (err instanceof DroverError) throw err;
      throw new DroverError('DROVER_VALIDATION', `The upload was interrupted after ${received} bytes; nothing was stored.`);
    }
    if (Number.isFinite(declared) && received !== declared) {
      await rm(file, { force: true });
      throw new DroverError('DROVER_VALIDATION', `The upload ended after ${received} of ${declared} bytes; nothing was stored.`);
    }
    let job;
    try {
      ({ job } = await images.startIngest({ name: q.name, tag: q.tag, path: file, makeDefault: q.default, removeSource: true, sourceName: q.filename }, actorOf(req)));
    } catch (err) {
      // Refused before the ingest started (bad name, name taken): the upload must not stay behind.
      await rm(file, { force: true });
      throw err;
    }
    return reply.status(202).send(job);
  });

  // Reads a file on the controller host: admin only.
  app.post('/api/v1/images/ingest', {
    config: { auth: 'admin' },
    schema: { tags: ['images'], summary: 'Ingest an OS image file that is already on the controller host; answers 202 with the ingest job (400 when there is no such file)', body: PathBody, response: { 202: Type.Ref(IngestJob), ...errors(400, 409) } },
  }, async (req, reply) => {
    const b = req.body;
    const { job } = await images.startIngest({ name: b.name, tag: b.tag, path: b.path, makeDefault: b.default }, actorOf(req));
    return reply.status(202).send(job);
  });

  app.get('/api/v1/images/ingests', {
    config: { auth: 'read' },
    schema: { tags: ['images'], summary: 'Running and recently finished image ingests', response: { 200: list(Type.Ref(IngestJob)), ...errors() } },
  }, async () => ({ items: images.listJobs() }));

  app.get('/api/v1/images/ingests/:id', {
    config: { auth: 'read' },
    schema: { tags: ['images'], summary: 'One image ingest: phase, bytes done, outcome', params: Ref, response: { 200: Type.Ref(IngestJob), ...errors(404) } },
  }, async (req) => images.getJob(req.params.id));

  app.delete('/api/v1/images/:id', {
    config: { auth: 'admin' },
    schema: { tags: ['images'], summary: 'Remove an image (refused while a device, group or the default uses it)', params: Ref, response: { 204: Type.Null(), ...errors(404, 409) } },
  }, async (req, reply) => {
    await images.remove(req.params.id, actorOf(req));
    return reply.status(204).send(null);
  });

  app.post('/api/v1/images/:id/tags', {
    config: { auth: 'operate' },
    schema: { tags: ['images'], summary: 'Give an image another NAME:TAG (the files are shared)', params: Ref, body: Type.Object({ name: Type.String({ minLength: 1, maxLength: 130 }) }, { additionalProperties: false }), response: { 201: Type.Ref(Image), ...errors(400, 404, 409) } },
  }, async (req, reply) => reply.status(201).send(await images.tag(req.params.id, req.body.name, actorOf(req))));

  app.get('/api/v1/images/:id/usage', {
    config: { auth: 'read' },
    schema: { tags: ['images'], summary: 'Who uses an image: devices (first 20), groups, default', params: Ref, response: { 200: Type.Object({ devices: Type.Array(Type.String()), groups: Type.Array(Type.String()), isDefault: Type.Boolean() }), ...errors(404) } },
  }, async (req) => images.usage(await images.get(req.params.id)));

  app.get('/api/v1/images', {
    config: { auth: 'read' },
    schema: { tags: ['images'], summary: 'List images', response: { 200: list(Type.Ref(Image)), ...errors() } },
  }, async () => ({ items: await images.list() }));

  app.get('/api/v1/images/:id', {
    config: { auth: 'read' },
    schema: { tags: ['images'], summary: 'Get an image by id or name[:tag]', params: Ref, response: { 200: Type.Ref(Image), ...errors(404) } },
  }, async (req) => images.get(req.params.id));

  // Reads a directory on the controller host: admin only.
  app.post('/api/v1/images/boot-dir', {
    config: { auth: 'admin' },
    schema: { tags: ['images'], summary: 'Register a directory of boot files (firmware, kernels, DTBs, config.txt, cmdline.txt) as an image', body: BootDirBody, response: { 201: Type.Ref(Image), ...errors(400, 409) } },
  }, async (req, reply) => {
    const b = req.body;
    return reply.status(201).send(await images.addBootDir({ name: b.name, tag: b.tag, path: b.path, makeDefault: b.default }, actorOf(req)));
  });

  app.put('/api/v1/images/default', {
    config: { auth: 'operate' },
    schema: {
      tags: ['images'],
      summary: 'Set (or clear, with null) the default image',
      body: Type.Object({ image: Nullable(Type.String({ minLength: 1, maxLength: 200 })) }, { additionalProperties: false }),
      response: { 200: Type.Object({ image: Nullable(Type.Ref(Image)) }), ...errors(400, 404) },
    },
  }, async (req) => ({ image: await images.setDefault(req.body.image, actorOf(req)) }));
};
