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

  // Standard PXE/iPXE clients (`--pxe-clients on`): iPXE first fetches this script, which chains
  // to the one for its own MAC (iPXE expands the setting; relative URIs resolve on this server).
  app.get('/boot/v1/ipxe', {
    config: { auth: 'none' },
    schema: { tags: ['boot'], summary: 'The iPXE entry script: chains to /boot/v1/ipxe/<mac>', security: [], produces: ['text/plain'], response: { 200: Type.String() } },
  }, async (_req, reply) => reply.type('text/plain; charset=utf-8').header('cache-control', 'no-store').send('#!ipxe\nchain /boot/v1/ipxe/${net0/mac:hexhyp}\n'));

  app.get('/boot/v1/ipxe/:mac', {
    config: { auth: 'none' },
    schema: {
      tags: ['boot'],
      summary: 'The iPXE script for one machine: the vmlinuz and initrd.img of its image, with its rendered cmdline',
      security: [],
      params: Type.Object({ mac: Type.String({ pattern: '^[0-9a-fA-F]{2}(-[0-9a-fA-F]{2}){5}$' }) }),
      produces: ['text/plain'],
      response: { 200: Type.String() },
    },
  }, async (req, reply) => {
    if (!deps.bootTree) throw new DroverError('DROVER_ROUTE_NOT_FOUND', 'Netboot is not enabled on this controller.');
    const mac = req.params.mac.toLowerCase();
    const send = (lines: string[]) => reply.type('text/plain; charset=utf-8').header('cache-control', 'no-store').send(`#!ipxe\n${lines.join('\n')}\n`);
    let cmdline: string;
    let image: string;
    try {
      const c = await deps.bootTree.resolve(`${mac}/cmdline.txt`, req.ip);
      cmdline = c.data.toString('utf8').replace(/\s+/g, ' ').trim();
      image = `${c.image.name}:${c.image.tag}`;
      await deps.bootTree.resolve(`${mac}/vmlinuz`, req.ip);
      await deps.bootTree.resolve(`${mac}/initrd.img`, req.ip);
    } catch (err) {
      if (!(err instanceof BootPathError) && !(err instanceof DroverError && err.code === 'DROVER_NO_DEFAULT_IMAGE')) throw err;
      // Nothing to boot: say why on the console and fall through to the next boot device.
      return send(['echo Drover: no image with vmlinuz and initrd.img for this machine (assign one, or set a default image)', 'sleep 10', 'exit 1']);
    }
    return send([`echo Drover: booting ${image}`, `kernel /boot/v1/files/${mac}/vmlinuz ${cmdline}`, `initrd /boot/v1/files/${mac}/initrd.img`, 'boot']);
  });
};
