import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { DroverError } from '../../domain/errors.js';
import { BootPathError } from '../../netboot/bootfiles/paths.js';
import type { ApiDeps } from '../app.js';
import { ErrorBody } from '../schemas.js';

/**
 * The per-device boot tree over HTTP (initramfs fetches, Pi 4/5 HTTP boot). No token: a booting
 * Pi has none yet, exactly as with TFTP; what is device-specific is only that device's token.
 */
export const bootRoutes = (deps: ApiDeps): FastifyPluginAsyncTypebox => async (app) => {
  app.get('/boot/v1/files/*', {
    config: { auth: 'none' },
    schema: {
      tags: ['boot'],
      summary: 'A file from the per-device boot tree: /boot/v1/files/<serial>/<path>',
      security: [],
      params: Type.Object({ '*': Type.String({ maxLength: 1024 }) }),
      produces: ['application/octet-stream'],
      response: { 200: Type.Unsafe<Buffer>({ type: 'string', format: 'binary', description: 'file bytes' }), 404: Type.Ref(ErrorBody) },
    },
  }, async (req, reply) => {
    if (!deps.bootTree) throw new DroverError('DROVER_ROUTE_NOT_FOUND', 'Netboot is not enabled on this controller.');
    try {
      const r = await deps.bootTree.resolve(req.params['*'], req.ip);
      return reply
        .type(r.file.endsWith('.txt') ? 'text/plain; charset=utf-8' : 'application/octet-stream')
        .header('cache-control', r.rendered ? 'no-store' : 'no-cache')
        .send(r.data);
    } catch (err) {
      if (err instanceof BootPathError) throw new DroverError('DROVER_BOOT_FILE_NOT_FOUND', `No boot file ${req.params['*'].slice(0, 200)}.`);
      throw err;
    }
  });
};
