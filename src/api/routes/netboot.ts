import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { join } from 'node:path';
import { DroverError } from '../../domain/errors.js';
import { exportDnsmasq } from '../../netboot/dnsmasq-export.js';
import type { ApiDeps } from '../app.js';
import { errors } from '../schemas.js';

const ExportBody = Type.Object(
  {
    interface: Type.String({ pattern: '^[\\w.:@-]{1,15}$', description: 'The interface dnsmasq serves' }),
    mode: Type.Optional(Type.Union([Type.Literal('proxy'), Type.Literal('full')], { default: 'proxy' })),
    range: Type.String({ pattern: '^\\d+\\.\\d+\\.\\d+\\.\\d+(,\\d+\\.\\d+\\.\\d+\\.\\d+)?$', description: 'proxy: the subnet address (192.168.1.0); full: FIRST,LAST' }),
    dir: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: 'Where to write the TFTP tree on the controller host (default DATA_DIR/dnsmasq-tftp)' })),
    user: Type.Optional(Type.String({ pattern: '^[a-z_][a-z0-9_-]{0,31}$', default: 'drover', description: 'The user dnsmasq runs as; it must be able to read the data dir' })),
  },
  { additionalProperties: false },
);

export const netbootRoutes = (deps: ApiDeps): FastifyPluginAsyncTypebox => async (app) => {
  // Writes a directory on the controller host: admin only.
  app.post('/api/v1/netboot/dnsmasq-export', {
    config: { auth: 'admin' },
    schema: {
      tags: ['netboot'],
      summary: 'Write a dnsmasq TFTP tree (per-device directories with rendered files) and return the matching dnsmasq.conf',
      body: ExportBody,
      response: { 200: Type.Object({ config: Type.String(), dir: Type.String(), devices: Type.Integer(), defaultImage: Type.Union([Type.String(), Type.Null()]) }), ...errors(400) },
    },
  }, async (req) => {
    if (!deps.bootTree) throw new DroverError('DROVER_ROUTE_NOT_FOUND', 'Netboot is not enabled on this controller.');
    const dir = req.body.dir ?? join(deps.services.ctx.dataDir, 'dnsmasq-tftp');
    const r = await exportDnsmasq(deps.services, deps.bootTree, { dir, interface: req.body.interface, mode: req.body.mode ?? 'proxy', range: req.body.range, user: req.body.user ?? 'drover' });
    return { ...r, dir };
  });
};
