import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { actorOf } from '../auth.js';
import type { ApiDeps } from '../app.js';
import { BootMode, Group, Json, Nullable, Ref, errors, list } from '../schemas.js';

const Fields = {
  description: Type.Optional(Type.String({ maxLength: 1000 })),
  imageId: Type.Optional(Nullable(Type.String({ maxLength: 200 }))),
  bootMode: Type.Optional(Nullable(BootMode)),
  settings: Type.Optional(Json),
  policy: Type.Optional(Type.Object({ autoAccept: Type.Optional(Type.Boolean()) }, { additionalProperties: true })),
};
const CreateBody = Type.Object({ name: Type.String({ minLength: 1, maxLength: 63 }), ...Fields }, { additionalProperties: false });
const PatchBody = Type.Object({ name: Type.Optional(Type.String({ minLength: 1, maxLength: 63 })), ...Fields }, { additionalProperties: false, minProperties: 1 });

export const groupRoutes = (deps: ApiDeps): FastifyPluginAsyncTypebox => async (app) => {
  const { groups } = deps.services;

  app.get('/api/v1/groups', {
    config: { auth: 'read' },
    schema: { tags: ['groups'], summary: 'List groups', response: { 200: list(Type.Ref(Group)), ...errors() } },
  }, async () => ({ items: await groups.list() }));

  app.post('/api/v1/groups', {
    config: { auth: 'operate' },
    schema: { tags: ['groups'], summary: 'Create a group', body: CreateBody, response: { 201: Type.Ref(Group), ...errors(400, 404, 409) } },
  }, async (req, reply) => reply.status(201).send(await groups.create(req.body, actorOf(req))));

  app.get('/api/v1/groups/:id', {
    config: { auth: 'read' },
    schema: { tags: ['groups'], summary: 'Get a group by id or name', params: Ref, response: { 200: Type.Ref(Group), ...errors(404) } },
  }, async (req) => groups.get(req.params.id));

  app.patch('/api/v1/groups/:id', {
    config: { auth: 'operate' },
    schema: { tags: ['groups'], summary: 'Change a group', params: Ref, body: PatchBody, response: { 200: Type.Ref(Group), ...errors(400, 404, 409) } },
  }, async (req) => groups.update(req.params.id, req.body, actorOf(req)));

  app.delete('/api/v1/groups/:id', {
    config: { auth: 'operate' },
    schema: { tags: ['groups'], summary: 'Delete an empty group', params: Ref, response: { 204: Type.Null(), ...errors(404, 409) } },
  }, async (req, reply) => {
    await groups.delete(req.params.id, actorOf(req));
    return reply.status(204).send(null);
  });
};
