import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { actorOf } from '../auth.js';
import type { ApiDeps } from '../app.js';
import { Image, Nullable, Ref, errors, list } from '../schemas.js';

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
