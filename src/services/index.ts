// The service layer as one object, built once by the composition root (server/serve.ts).
import { join } from 'node:path';
import { systemClock, type Clock } from '../domain/time.js';
import type { Store } from '../store/store.js';
import { AuthService } from './auth.service.js';
import type { ServiceContext } from './context.js';
import { DevicesService } from './devices.service.js';
import { EventBus } from './event-bus.js';
import { EventsService } from './events.service.js';
import { GroupsService } from './groups.service.js';
import { DeviceTokensService } from './device-tokens.service.js';
import { ImagesService } from './images.service.js';
import { BootService, type BootDefaults } from './boot.service.js';
import { NfsService, type NfsSettings } from './nfs.service.js';
import type { Logger } from 'pino';
import { AgentsService } from './agents.service.js';
import { HealthService } from './health.service.js';
import { JobsService } from './jobs.service.js';
import type { IngestOptions } from './metrics-ingest.js';
import { PowerService } from './power.service.js';
import { WebhookNotifier, type WebhookOptions } from './webhook.js';

export interface Services {
  ctx: ServiceContext;
  devices: DevicesService;
  groups: GroupsService;
  auth: AuthService;
  events: EventsService;
  images: ImagesService;
  deviceTokens: DeviceTokensService;
  boot: BootService;
  nfs: NfsService;
  agents: AgentsService;
  jobs: JobsService;
  power: PowerService;
  health: HealthService;
  webhook: WebhookNotifier | null;
}

export interface AgentSettings {
  heartbeatMs: number;
  ingest?: Partial<IngestOptions>;
  /** Health evaluation period (tests shorten it). */
  healthTickMs?: number;
  controllerGossip?: () => { node: string; addr: string; port: number } | null;
}

export const DEFAULT_BOOT: BootDefaults = { tmpfsSize: '50%', retrySeconds: 60, offlineAfterSeconds: 30, authorizedKeys: [] };

export function createServices(store: Store, opts: { sessionTtl: number; dataDir: string; clock?: Clock; bus?: EventBus; boot?: BootDefaults; nfs?: NfsSettings; agent?: AgentSettings; logger?: Logger; webhook?: Omit<WebhookOptions, 'logger'> | null; imageAgent?: 'runtime' | 'agent' | 'off' }): Services {
  const ctx: ServiceContext = { store, bus: opts.bus ?? new EventBus(), clock: opts.clock ?? systemClock, dataDir: opts.dataDir };
  const images = new ImagesService(ctx, opts.dataDir, opts.imageAgent);
  const deviceTokens = new DeviceTokensService(ctx, opts.dataDir);
  // Without settings (tests, tools) nothing outside the data dir is written or run.
  const nfs = new NfsService(opts.nfs ?? { exportRoot: join(opts.dataDir, 'nfs'), server: undefined, exportsFile: null, ganeshaConfig: null, reloadCommand: null });
  const agents = new AgentsService(ctx, { heartbeatMs: opts.agent?.heartbeatMs ?? 10_000, ingest: opts.agent?.ingest, logger: opts.logger, controllerGossip: opts.agent?.controllerGossip });
  const jobs = new JobsService(ctx, agents, opts.logger);
  const power = new PowerService(ctx, opts.logger);
  const boot = new BootService(ctx, images, deviceTokens, opts.dataDir, opts.boot ?? DEFAULT_BOOT, nfs);
  const webhook = opts.webhook ? new WebhookNotifier(ctx, { ...opts.webhook, logger: opts.logger }) : null;
  const health = new HealthService(ctx, agents, jobs, power, boot, { logger: opts.logger, tickMs: opts.agent?.healthTickMs, webhook });
  return {
    ctx,
    agents,
    jobs,
    power,
    health,
    webhook,
    devices: new DevicesService(ctx),
    groups: new GroupsService(ctx),
    auth: new AuthService(ctx, opts.sessionTtl),
    events: new EventsService(ctx),
    images,
    deviceTokens,
    boot,
    nfs,
  };
}
