// The service layer as one object, built once by the composition root (server/serve.ts).
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

export interface Services {
  ctx: ServiceContext;
  devices: DevicesService;
  groups: GroupsService;
  auth: AuthService;
  events: EventsService;
  images: ImagesService;
  deviceTokens: DeviceTokensService;
}

export function createServices(store: Store, opts: { sessionTtl: number; dataDir: string; clock?: Clock; bus?: EventBus }): Services {
  const ctx: ServiceContext = { store, bus: opts.bus ?? new EventBus(), clock: opts.clock ?? systemClock, dataDir: opts.dataDir };
  return {
    ctx,
    devices: new DevicesService(ctx),
    groups: new GroupsService(ctx),
    auth: new AuthService(ctx, opts.sessionTtl),
    events: new EventsService(ctx),
    images: new ImagesService(ctx, opts.dataDir),
    deviceTokens: new DeviceTokensService(ctx, opts.dataDir),
  };
}
