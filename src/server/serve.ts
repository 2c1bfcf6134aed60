// The composition root of `drover serve`: config → data dir → store → services → API → listen,
// and a clean shutdown on SIGINT/SIGTERM.
import { accessSync, constants, mkdirSync, readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildApp, type ApiOptions } from '../api/app.js';
import { defaultWebRoot } from '../api/web.js';
import type { Config } from '../config/load.js';
import { DroverError } from '../domain/errors.js';
import { createLogger } from '../log.js';
import { FileCache } from '../netboot/bootfiles/file-cache.js';
import { BootTree } from '../netboot/bootfiles/tree.js';
import { Netboot } from '../netboot/netboot.js';
import { BootProgress } from '../netboot/progress.js';
import { serverUrlResolver } from '../netboot/server-url.js';
import type { GossipTimings } from '../gossip/config.js';
import { ControllerGossip } from '../services/controller-gossip.js';
import { createServices, type Services } from '../services/index.js';
import { Store } from '../store/store.js';
import { VERSION } from '../version.js';

export interface RunningServer {
  app: FastifyInstance;
  netboot: Netboot;
  services: Services;
  store: Store;
  /** The controller's gossip member (`--gossip-listen`), else null. */
  gossip: ControllerGossip | null;
  url: string;
  log: Logger;
  close(): Promise<void>;
}

export interface ServeOptions {
  /** Where to print the one-time admin token (a person's terminal, not the log). */
  announce?: (text: string) => void;
  webRoot?: string | null;
  logger?: Logger;
  /** Faster gossip for tests and the demo (default: memberlist's LAN timings). */
  gossipTimings?: GossipTimings;
  /** Health evaluation period (default 1 s); tests and the demo shorten it. */
  healthTickMs?: number;
  /** The demo's virtual fleet (its API routes answer only then). */
  demo?: ApiOptions['demo'];
}

export function ensureDataDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    accessSync(dir, constants.W_OK);
  } catch (err) {
    throw new DroverError('DROVER_DATA_DIR_UNUSABLE', `Cannot use data directory ${dir}: ${(err as Error).message}`);
  }
}

function readSecret(file: string): string {
  try {
    const secret = readFileSync(file, 'utf8').trim();
    if (!secret) throw new Error('the file is empty');
    return secret;
  } catch (err) {
    throw new DroverError('DROVER_WEBHOOK_CONFIG', `Setting webhookSecretFile: cannot read ${file}: ${(err as Error).message}`);
  }
}

function readAuthorizedKeys(file: string): string[] {
  try {
    return readFileSync(file, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  } catch (err) {
    throw new DroverError('DROVER_CONFIG_INVALID', `Setting authorizedKeysFile: cannot read ${file}: ${(err as Error).message}`);
  }
}

export async function startServer(config: Config, opts: ServeOptions = {}): Promise<RunningServer> {
  const log = opts.logger ?? createLogger(config.logLevel);
  ensureDataDir(config.dataDir);
  const store = await Store.open(config.database);
  log.info({ database: store.dialect, location: store.location, dataDir: config.dataDir, version: VERSION }, 'store opened');
  const gossip = config.gossipListen ? new ControllerGossip({ bindAddr: config.gossipListen.host, bindPort: config.gossipListen.port, logger: log, ...(opts.gossipTimings ? { timings: opts.gossipTimings } : {}) }) : null;
  const authorizedKeys = config.boot.authorizedKeysFile ? readAuthorizedKeys(config.boot.authorizedKeysFile) : [];
  const services = createServices(store, {
    sessionTtl: config.sessionTtl,
    dataDir: config.dataDir,
    boot: { tmpfsSize: config.boot.tmpfsSize, retrySeconds: config.boot.retrySeconds, offlineAfterSeconds: config.boot.offlineAfterSeconds, authorizedKeys },
    nfs: config.nfs,
    imageAgent: config.imageAgent,
    logger: log,
    agent: { heartbeatMs: config.agent.heartbeatMs, ingest: { rawRetentionHours: config.agent.rawRetentionHours, rollupRetentionDays: config.agent.rollupRetentionDays }, controllerGossip: () => gossip?.seed() ?? null, ...(opts.healthTickMs ? { healthTickMs: opts.healthTickMs } : {}) },
    webhook: config.webhook ? { url: config.webhook.url, secret: config.webhook.secretFile ? readSecret(config.webhook.secretFile) : null } : null,
  });
  const stopNfsFollow = services.nfs.followDevices(services.ctx, (err, deviceId) => log.error({ err, deviceId }, 'could not remove the NFS exports of a device that no longer boots over NFS'));
  const leftovers = await services.images.cleanLeftovers();
  if (leftovers) log.warn({ removed: leftovers }, 'removed work directories of image ingests that did not finish (crash or stop)');
  const serverUrl = serverUrlResolver(config.publicUrl, config.listen);
  const bootTree = new BootTree({
    services,
    cache: new FileCache(),
    serverUrl,
    policy: config.bootPolicy,
  });
  const netboot = new Netboot({
    services, bootTree, progress: new BootProgress(services), log, tftpListen: config.tftpListen, tftpThreads: config.tftpThreads, dhcp: config.dhcp, piOuis: config.piOuis, dataDir: config.dataDir,
    apiHost: config.listen.host, publicUrl: config.publicUrl, serverUrl,
  });
  let app: FastifyInstance | undefined;
  try {
    const token = await services.auth.bootstrap(config.dataDir);
    if (token) {
      log.info({ file: `${config.dataDir}/initial-admin-token` }, 'first start: created the initial admin token');
      (opts.announce ?? ((t) => process.stderr.write(t)))(
        `\nFirst start: an admin token was created. It is shown only this once and saved (mode 0600) in\n  ${config.dataDir}/initial-admin-token\n\n  ${token}\n\nUse it with: drover login --server http://HOST:${config.listen.port} --token-file ${config.dataDir}/initial-admin-token\n\n`,
      );
    }
    app = await buildApp({
      services,
      logger: log,
      bodyLimit: config.bodyLimit,
      authFailureLimit: config.authFailureLimit,
      authFailureWindowSeconds: config.authFailureWindow,
      webRoot: opts.webRoot === undefined ? defaultWebRoot() : opts.webRoot,
      version: VERSION,
      bootTree,
      serverUrl,
      imageUploadLimit: config.imageUploadLimit,
      demo: opts.demo,
    });
    await app.listen({ host: config.listen.host, port: config.listen.port });
    await netboot.start();
    await services.health.start();
    if (gossip) {
      await gossip.start(services.agents, services.health).catch((err: unknown) => {
        throw new DroverError('DROVER_LISTEN_FAILED', `Cannot join the gossip group on ${config.gossipListen!.host}:${config.gossipListen!.port} (--gossip-listen): ${(err as Error).message}`);
      });
    }
  } catch (err) {
    stopNfsFollow();
    await gossip?.stop().catch(() => undefined);
    await services.health.stop().catch(() => undefined);
    await netboot.stop().catch(() => undefined);
    await app?.close().catch(() => undefined);
    await services.agents.close().catch(() => undefined);
    await store.close();
    if (err instanceof DroverError) throw err;
    throw new DroverError('DROVER_LISTEN_FAILED', `Cannot listen on ${config.listen.host}:${config.listen.port}: ${(err as Error).message}`);
  }
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.listen.port;
  const host = config.listen.host === '0.0.0.0' || config.listen.host === '::' ? '127.0.0.1' : config.listen.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log.info({ url, listen: `${config.listen.host}:${port}` }, 'drover serving');
  let closing: Promise<void> | undefined;
  return {
    app,
    netboot,
    services,
    store,
    gossip,
    url,
    log,
    close() {
      closing ??= (async () => {
        stopNfsFollow();
        await gossip?.stop();
        await services.health.stop();
        await netboot.stop();
        await app.close();
        // after the sockets are gone: the last samples are written before the store closes
        await services.agents.close();
        await services.jobs.close();
        await services.webhook?.close();
        await store.close();
        log.info('drover stopped');
        log.flush?.();
      })();
      return closing;
    },
  };
}
