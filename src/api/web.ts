// Serves the built dashboard (dist/web) at `/`, with index.html for client-side routes.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

export function defaultWebRoot(): string {
  // dist/server/api/web.js → dist/web ; src/api/web.ts (tests via tsx) → dist/web
  const here = fileURLToPath(new URL('.', import.meta.url));
  return join(here, '..', '..', here.includes(`${join('dist', 'server')}`) ? 'web' : join('dist', 'web'));
}

export async function registerWeb(app: FastifyInstance, root: string | null): Promise<void> {
  if (root && existsSync(join(root, 'index.html'))) {
    await app.register(async (scope) => {
      // @fastify/static does not pass `config` to the routes it adds: mark every route in this
      // scope public, or the auth hook's fail-closed default would demand an admin token.
      scope.addHook('onRoute', (route) => {
        route.config = { ...(route.config as object), auth: 'none' } as typeof route.config;
      });
      await scope.register(fastifyStatic, { root, prefix: '/', wildcard: false, index: ['index.html'] });
      scope.get('/*', { schema: { hide: true } }, (req, reply) => {
        if (req.url.startsWith('/api/') || req.url.startsWith('/boot/')) return reply.callNotFound();
        return reply.sendFile('index.html');
      });
    });
    return;
  }
  app.get('/', { config: { auth: 'none' }, schema: { hide: true } }, async (_req, reply) =>
    reply
      .type('text/html; charset=utf-8')
      .send('<!doctype html><title>Drover</title><p>Drover is running. The dashboard is not built: run <code>npm run build</code>.</p>'),
  );
}
