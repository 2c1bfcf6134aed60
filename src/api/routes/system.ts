import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { DroverError } from '../../domain/errors.js';
import type { ApiDeps } from '../app.js';
import { ErrorBody, errors } from '../schemas.js';

const Health = Type.Object({ status: Type.String() });
const Ready = Type.Object({ status: Type.String(), database: Type.String() });

export const systemRoutes = (deps: ApiDeps): FastifyPluginAsyncTypebox => async (app) => {
  app.get('/healthz', {
    config: { auth: 'none' },
    schema: { tags: ['system'], summary: 'Liveness: the process answers', security: [], response: { 200: Health } },
  }, async () => ({ status: 'ok' }));

  app.get('/readyz', {
    config: { auth: 'none' },
    schema: { tags: ['system'], summary: 'Readiness: the database answers', security: [], response: { 200: Ready, 503: Type.Ref(ErrorBody) } },
  }, async () => {
    try {
      await deps.services.ctx.store.ping();
    } catch {
      throw new DroverError('DROVER_NOT_READY', 'The database does not answer.');
    }
    return { status: 'ready', database: deps.services.ctx.store.dialect };
  });

  app.get('/metrics', {
    config: { auth: 'read' },
    schema: { tags: ['system'], summary: 'Prometheus metrics (text exposition format)', produces: ['text/plain'], response: { 200: Type.String(), ...errors() } },
  }, async (_req, reply) => {
    const text = await deps.metrics.registry.metrics();
    return reply.type(deps.metrics.registry.contentType).send(text);
  });

  app.get('/api/v1/openapi.json', {
    config: { auth: 'read' },
    schema: { tags: ['system'], summary: 'This OpenAPI document', hide: true },
  }, async () => app.swagger());
};
