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
}

export const DEFAULT_BOOT: BootDefaults = { tmpfsSize: '50%', retrySeconds: 60, offlineAfterSeconds: 30, authorizedKeys: [] };

export function createServices(store: Store, opts: { sessionTtl: number; dataDir: string; clock?: Clock; bus?: EventBus; boot?: BootDefaults; nfs?: NfsSettings }): Services {
  const ctx: ServiceContext = { store, bus: opts.bus ?? new EventBus(), clock: opts.clock ?? systemClock, dataDir: opts.dataDir };
  const images = new ImagesService(ctx, opts.dataDir);
  const deviceTokens = new DeviceTokensService(ctx, opts.dataDir);
  // Without settings (tests, tools) nothing outside the data dir is written or run.
  const nfs = new NfsService(opts.nfs ?? { exportRoot: join(opts.dataDir, 'nfs'), server: undefined, exportsFile: null, ganeshaConfig: null, reloadCommand: null });
  return {
    ctx,
    devices: new DevicesService(ctx),
    groups: new GroupsService(ctx),
    auth: new AuthService(ctx, opts.sessionTtl),
    events: new EventsService(ctx),
    images,
    deviceTokens,
    boot: new BootService(ctx, images, deviceTokens, opts.dataDir, opts.boot ?? DEFAULT_BOOT, nfs),
    nfs,
  };
}
