import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { resolveImage } from '../../services/devices.service.js';
import type { ApiDeps } from '../app.js';
import { Image, Ref, errors, list } from '../schemas.js';

export const imageRoutes = (deps: ApiDeps): FastifyPluginAsyncTypebox => async (app) => {
  const store = deps.services.ctx.store;

  app.get('/api/v1/images', {
    config: { auth: 'read' },
    schema: { tags: ['images'], summary: 'List images', response: { 200: list(Type.Ref(Image)), ...errors() } },
  }, async () => ({ items: await store.images.list() }));

  app.get('/api/v1/images/:id', {
    config: { auth: 'read' },
    schema: { tags: ['images'], summary: 'Get an image by id or name[:tag]', params: Ref, response: { 200: Type.Ref(Image), ...errors(404) } },
  }, async (req) => resolveImage(store, req.params.id));
};
