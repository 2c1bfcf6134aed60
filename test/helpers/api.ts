// An in-process controller for API tests: a fresh store (SQLite in a temp dir, or a given URL),
// services, the Fastify app (used through inject), and an admin token.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { buildApp, type ApiOptions } from '../../src/api/app.js';
import type { BootTree } from '../../src/netboot/bootfiles/tree.js';
import { createServices, type Services } from '../../src/services/index.js';
import { Store } from '../../src/store/store.js';

export interface TestApi {
  app: FastifyInstance;
  services: Services;
  store: Store;
  dataDir: string;
  adminToken: string;
  /** inject with a bearer token (admin unless given) and JSON body. */
  call(method: InjectOptions['method'], url: string, body?: unknown, token?: string | null): Promise<{ status: number; json: any; headers: Record<string, unknown>; body: string }>;
  tokenFor(role: 'admin' | 'operator' | 'viewer' | 'device', deviceId?: string): Promise<string>;
  close(): Promise<void>;
}

export async function startTestApi(opts: { database?: string; api?: Partial<ApiOptions>; bootTree?: (services: Services) => BootTree } = {}): Promise<TestApi> {
  const dataDir = mkdtempSync(join(tmpdir(), 'drover-api-'));
  const store = await Store.open(opts.database ?? join(dataDir, 'drover.db'));
  const services = createServices(store, { sessionTtl: 3600, dataDir });
  await services.auth.bootstrap(dataDir);
  const adminToken = readFileSync(join(dataDir, 'initial-admin-token'), 'utf8').trim();
  const app = await buildApp({ services, webRoot: null, ...(opts.bootTree ? { bootTree: opts.bootTree(services) } : {}), ...opts.api });
  const call: TestApi['call'] = async (method, url, body, token = adminToken) => {
    const res = await app.inject({
      method,
      url,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { payload: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    let json: unknown;
    try {
      json = res.json();
    } catch {
      json = undefined;
    }
    return { status: res.statusCode, json, headers: res.headers as Record<string, unknown>, body: res.body };
  };
  return {
    app,
    services,
    store,
    dataDir,
    adminToken,
    call,
    async tokenFor(role, deviceId) {
      const r = await call('POST', '/api/v1/tokens', { name: `${role}-${Math.random().toString(36).slice(2, 8)}`, role, ...(deviceId ? { deviceId } : {}) });
      if (r.status !== 201) throw new Error(`token create failed: ${r.body}`);
      return r.json.secret as string;
    },
    async close() {
      await app.close();
      await store.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
