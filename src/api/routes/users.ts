import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { DroverError } from '../../domain/errors.js';
import { actorOf, principalOf } from '../auth.js';
import type { ApiDeps } from '../app.js';
import { Nullable, PersonRole, Ref, Role, Timestamp, User, errors, list } from '../schemas.js';

const Password = Type.String({ minLength: 1, maxLength: 1024 });
const CreateBody = Type.Object({ username: Type.String({ minLength: 1, maxLength: 63 }), password: Password, role: PersonRole }, { additionalProperties: false });
const PatchBody = Type.Object(
  { password: Type.Optional(Password), role: Type.Optional(PersonRole), disabled: Type.Optional(Type.Boolean()) },
  { additionalProperties: false, minProperties: 1 },
);
const LoginBody = Type.Object({ username: Type.String({ minLength: 1, maxLength: 63 }), password: Password }, { additionalProperties: false });
const LoginReply = Type.Object({ token: Type.String(), expiresAt: Timestamp, user: Type.Ref(User) });
const Me = Type.Object({
  tokenId: Type.String(),
  name: Type.String(),
  role: Role,
  deviceId: Nullable(Type.String()),
  userId: Nullable(Type.String()),
});

export const userRoutes = (deps: ApiDeps): FastifyPluginAsyncTypebox => async (app) => {
  const { auth } = deps.services;

  app.post('/api/v1/auth/login', {
    config: { auth: 'none' },
    schema: { tags: ['auth'], summary: 'Log in with a user name and password; returns a session token', body: LoginBody, response: { 200: LoginReply, ...errors(400) } },
  }, async (req) => {
    const retryAfter = deps.limiter.retryAfter(req.ip);
    if (retryAfter > 0) throw new DroverError('DROVER_AUTH_RATE_LIMITED', undefined, { retryAfter });
    try {
      return await auth.login(req.body.username, req.body.password);
    } catch (err) {
      deps.limiter.recordFailure(req.ip);
      req.log.info({ ip: req.ip, username: req.body.username.slice(0, 63) }, 'auth failure: login');
      throw err;
    }
  });

  app.post('/api/v1/auth/logout', {
    config: { auth: 'read' },
    schema: { tags: ['auth'], summary: 'End this dashboard session (revokes a session token; API tokens are left alone)', response: { 204: Type.Null(), ...errors() } },
  }, async (req, reply) => {
    await auth.logout(principalOf(req));
    return reply.status(204).send(null);
  });

  app.get('/api/v1/me', {
    config: { auth: 'device-read' },
    schema: { tags: ['auth'], summary: 'Who this token is', response: { 200: Me, ...errors() } },
  }, async (req) => principalOf(req));

  app.get('/api/v1/users', {
    config: { auth: 'admin' },
    schema: { tags: ['users'], summary: 'List users', response: { 200: list(Type.Ref(User)), ...errors() } },
  }, async () => ({ items: await auth.listUsers() }));

  app.post('/api/v1/users', {
    config: { auth: 'admin' },
    schema: { tags: ['users'], summary: 'Create a dashboard user', body: CreateBody, response: { 201: Type.Ref(User), ...errors(400, 409) } },
  }, async (req, reply) => reply.status(201).send(await auth.createUser(req.body, actorOf(req))));

  app.patch('/api/v1/users/:id', {
    config: { auth: 'admin' },
    schema: { tags: ['users'], summary: 'Change password, role or disabled; ends the user\'s sessions', params: Ref, body: PatchBody, response: { 200: Type.Ref(User), ...errors(400, 404, 409) } },
  }, async (req) => auth.updateUser(req.params.id, req.body, actorOf(req)));

  app.delete('/api/v1/users/:id', {
    config: { auth: 'admin' },
    schema: { tags: ['users'], summary: 'Delete a user', params: Ref, response: { 204: Type.Null(), ...errors(404, 409) } },
  }, async (req, reply) => {
    await auth.deleteUser(req.params.id, actorOf(req));
    return reply.status(204).send(null);
  });
};
