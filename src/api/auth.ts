// Bearer-token authentication and role checks, as one onRequest hook. Every route declares what
// it needs in `config.auth`; a route that says nothing needs admin (fail closed).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { DroverError } from '../domain/errors.js';
import { allows, type Permission, type Principal } from '../domain/roles.js';
import type { AuthFailureLimiter } from '../security/auth-limiter.js';
import type { AuthService } from '../services/auth.service.js';

export type RouteAuth = Permission | 'none';

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: RouteAuth;
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
}

export function bearer(request: FastifyRequest): string | null {
  const h = request.headers.authorization;
  if (!h) return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m ? m[1]! : '';
}

export function registerAuth(app: FastifyInstance, auth: AuthService, limiter: AuthFailureLimiter): void {
  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (request) => {
    const need = request.routeOptions.config?.auth ?? (request.routeOptions.url ? 'admin' : 'none');
    if (need === 'none') return;
    const retryAfter = limiter.retryAfter(request.ip);
    if (retryAfter > 0) throw new DroverError('DROVER_AUTH_RATE_LIMITED', undefined, { retryAfter });
    const secret = bearer(request);
    if (secret === null) throw new DroverError('DROVER_AUTH_MISSING');
    let principal: Principal;
    try {
      principal = await auth.authenticate(secret);
    } catch (err) {
      if (err instanceof DroverError && err.code === 'DROVER_AUTH_INVALID') {
        limiter.recordFailure(request.ip);
        request.log.info({ ip: request.ip }, 'auth failure: invalid token');
      }
      throw err;
    }
    request.principal = principal;
    if (!allows(principal, need)) {
      throw new DroverError('DROVER_AUTH_FORBIDDEN', `The ${principal.role} token "${principal.name}" may not ${request.method} ${request.routeOptions.url}.`);
    }
  });
}

/** The authenticated principal of a route that requires auth. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new DroverError('DROVER_AUTH_MISSING');
  return request.principal;
}

export function actorOf(request: FastifyRequest): string {
  const p = principalOf(request);
  return p.userId ? `user:${p.name.replace(/^session:/, '')}` : `token:${p.name}`;
}

/** Device tokens may only touch their own device: call with the resolved device id. */
export function assertDeviceScope(request: FastifyRequest, deviceId: string): void {
  const p = principalOf(request);
  if (p.role === 'device' && p.deviceId !== deviceId) {
    throw new DroverError('DROVER_AUTH_FORBIDDEN', 'A device token can only reach its own device.');
  }
}
