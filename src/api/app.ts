// Builds the Fastify application: plugins, auth, error handling, metrics, routes, dashboard.
// Only the composition root (server/serve.ts) and tests call this.
import fastifySwagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { DroverError } from '../domain/errors.js';
import { AuthFailureLimiter } from '../security/auth-limiter.js';
import type { BootTree } from '../netboot/bootfiles/tree.js';
import type { Services } from '../services/index.js';
import { registerAuth } from './auth.js';
import { errorHandler } from './errors.js';
import { createMetrics, type ApiMetrics } from './metrics.js';
import { registerAgentSocket } from './routes/agent.js';
import { demoRoutes, type DemoControl } from './routes/demo.js';
import { clusterPaasRoutes } from './routes/cluster-paas.js';
import { healthRoutes } from './routes/health.js';
import { bootRoutes } from './routes/boot.js';
import { bootConfigRoutes } from './routes/boot-config.js';
import { deviceRoutes } from './routes/devices.js';
import { eventRoutes } from './routes/events.js';
import { groupRoutes } from './routes/groups.js';
import { imageRoutes } from './routes/images.js';
import { netbootRoutes } from './routes/netboot.js';
import { systemRoutes } from './routes/system.js';
import { tokenRoutes } from './routes/tokens.js';
import { userRoutes } from './routes/users.js';
import { sharedSchemas } from './schemas.js';
import { validatorCompiler } from './validation.js';
import { registerWeb } from './web.js';

export interface ApiOptions {
  services: Services;
  logger?: Logger | false;
  bodyLimit?: number;
  authFailureLimit?: number;
  authFailureWindowSeconds?: number;
  /** Directory of the built dashboard; null serves a placeholder page. */
  webRoot?: string | null;
  version?: string;
  /** The per-device boot tree for /boot/v1/files; absent when netboot is off. */
  bootTree?: BootTree | undefined;
  /** The controller URL a device at a given address should use (rendered into boot config). */
  serverUrl?: ((client: string | null) => string) | undefined;
  imageUploadLimit?: number | undefined;
  /** The demo's virtual fleet, when `drover demo` runs this controller. */
  demo?: DemoControl | undefined;
}

export interface ApiDeps {
  services: Services;
  bootTree: BootTree | undefined;
  limiter: AuthFailureLimiter;
  metrics: ApiMetrics;
  serverUrl: (client: string | null) => string;
  imageUploadLimit: number | undefined;
  demo: DemoControl | undefined;
}

export async function buildApp(opts: ApiOptions): Promise<FastifyInstance> {
  const app = Fastify({
    ...(opts.logger ? { loggerInstance: opts.logger as FastifyBaseLogger } : { logger: false }),
    bodyLimit: opts.bodyLimit ?? 1024 * 1024,
    // Our onResponse hook logs one line per API request instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: false,
    // Live streams never end by themselves; shutdown must not wait for them.
    forceCloseConnections: true,
  }).withTypeProvider<TypeBoxTypeProvider>();

  const limiter = new AuthFailureLimiter(opts.authFailureLimit ?? 10, (opts.authFailureWindowSeconds ?? 60) * 1000);
  const metrics = createMetrics(opts.services.ctx.store);
  const deps: ApiDeps = {
    services: opts.services, limiter, metrics, bootTree: opts.bootTree, imageUploadLimit: opts.imageUploadLimit, demo: opts.demo,
    serverUrl: opts.serverUrl ?? (() => 'http://127.0.0.1'),
  };

  for (const s of sharedSchemas) app.addSchema(s);
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Drover API', version: opts.version ?? '0.0.0', description: 'Control plane for fleets of network-booted Raspberry Pis.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => String(json.$id ?? `def-${i}`) },
  });

  app.setValidatorCompiler(validatorCompiler());
  // JSON only: a text/plain body must get 415, not reach validation as a string.
  app.removeContentTypeParser(['text/plain']);
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((req, reply) => errorHandler(new DroverError('DROVER_ROUTE_NOT_FOUND', `No route ${req.method} ${req.url.split('?')[0]!.slice(0, 200)}.`), req, reply));
  registerAuth(app, opts.services.auth, limiter);
  app.addHook('onError', async (req, _reply, err) => {
    if ((err as DroverError).code?.startsWith?.('DROVER_AUTH_')) metrics.authFailures.inc({ reason: (err as DroverError).code });
  });
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.requests.observe({ method: req.method, route, status_code: String(reply.statusCode) }, reply.elapsedTime / 1000);
    if (route.startsWith('/api/') || reply.statusCode >= 400) {
      req.log.info({ method: req.method, route, status: reply.statusCode, ms: Math.round(reply.elapsedTime), principal: req.principal?.name }, 'request');
    }
  });

  await app.register(systemRoutes(deps));
  await app.register(deviceRoutes(deps));
  await app.register(groupRoutes(deps));
  await app.register(imageRoutes(deps));
  await app.register(tokenRoutes(deps));
  await app.register(userRoutes(deps));
  await app.register(eventRoutes(deps));
  await app.register(bootRoutes(deps));
  await app.register(bootConfigRoutes(deps));
  await app.register(netbootRoutes(deps));
  await app.register(healthRoutes(deps));
  await app.register(clusterPaasRoutes(deps));
  await app.register(demoRoutes(deps));
  registerAgentSocket(app, deps);
  await registerWeb(app, opts.webRoot ?? null);
  await app.ready();
  return app;
}
