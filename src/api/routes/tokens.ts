import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { actorOf } from '../auth.js';
import type { ApiDeps } from '../app.js';
import { Role, Token, errors, list } from '../schemas.js';

const CreateBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100 }),
    role: Role,
    deviceId: Type.Optional(Type.String({ maxLength: 200, description: 'Required for role device: the only device the token may reach' })),
    ttl: Type.Optional(Type.Integer({ minimum: 60, maximum: 10 * 365 * 86400, description: 'Lifetime in seconds; unset = never expires' })),
  },
  { additionalProperties: false },
);
const Created = Type.Object({ token: Type.Ref(Token), secret: Type.String({ description: 'Shown once; store it now' }) });
const ListQuery = Type.Object({ all: Type.Optional(Type.Boolean({ description: 'Include revoked and session tokens' })) }, { additionalProperties: false });

export const tokenRoutes = (deps: ApiDeps): FastifyPluginAsyncTypebox => async (app) => {
  const { auth } = deps.services;

  app.get('/api/v1/tokens', {
    config: { auth: 'admin' },
    schema: { tags: ['tokens'], summary: 'List tokens (never their secrets)', querystring: ListQuery, response: { 200: list(Type.Ref(Token)), ...errors() } },
  }, async (req) => ({ items: await auth.listTokens(req.query.all ? { includeRevoked: true, includeSessions: true } : {}) }));

  app.post('/api/v1/tokens', {
    config: { auth: 'admin' },
    schema: { tags: ['tokens'], summary: 'Create a token', body: CreateBody, response: { 201: Created, ...errors(400, 404) } },
  }, async (req, reply) => reply.status(201).send(await auth.createToken(req.body, actorOf(req))));

  app.delete('/api/v1/tokens/:id', {
    config: { auth: 'admin' },
    schema: { tags: ['tokens'], summary: 'Revoke a token', params: Type.Object({ id: Type.String({ maxLength: 200 }) }), response: { 200: Type.Ref(Token), ...errors(404, 409) } },
  }, async (req) => auth.revokeToken(req.params.id, actorOf(req)));
};
