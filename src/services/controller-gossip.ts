// The controller as a member of its agents' gossip group (`--gossip-listen`): it is handed out
// as the first seed, joins agents as they say hello until it knows the group, and feeds its own
// view to the health service beside the views agents report. After a controller restart the
// group's memory (who died meanwhile) reaches it through push-pull, not only through reports.
import type { Logger } from 'pino';
import { GossipMember, toView } from '../gossip/swim.js';
import type { GossipTimings } from '../gossip/config.js';
import type { AgentsService } from './agents.service.js';
import type { HealthService } from './health.service.js';

/** The controller's member name; device ids (`dev_…`) can never take it. */
export const CONTROLLER_MEMBER = 'drover-controller';

export interface ControllerGossipOptions {
  bindAddr: string;
  bindPort: number;
  advertiseAddr?: string;
  timings?: GossipTimings;
  logger?: Logger | undefined;
}

export class ControllerGossip {
  private member: GossipMember | null = null;
  private refresh: NodeJS.Timeout | null = null;

  constructor(private readonly opts: ControllerGossipOptions) {}

  /** Where agents reach us, for their seed lists (null until started). */
  seed(): { node: string; addr: string; port: number } | null {
    const a = this.member?.address;
    return a ? { node: CONTROLLER_MEMBER, addr: a.addr, port: a.port } : null;
  }

  get gossip(): GossipMember | null {
    return this.member;
  }

  async start(agents: AgentsService, health: HealthService): Promise<void> {
    const o = this.opts;
    const log = o.logger;
    const member = new GossipMember({
      name: CONTROLLER_MEMBER,
      bindAddr: o.bindAddr,
      bindPort: o.bindPort,
      ...(o.advertiseAddr ? { advertiseAddr: o.advertiseAddr } : {}),
      ...o.timings,
      ...(log ? { logger: log.child({ part: 'gossip' }) } : {}),
    });
    await member.start();
    this.member = member;
    log?.info({ member: CONTROLLER_MEMBER, advertise: member.address }, 'controller joined the gossip group');
    const report = () => health.ownView(CONTROLLER_MEMBER, toView(member.members()));
    member.on('change', report);
    this.refresh = setInterval(report, 5000);
    this.refresh.unref();
    agents.on('hello', (deviceId, info) => {
      // A few direct joins are enough; gossip spreads the rest (a restart means a hello from
      // every agent at once).
      if (!info.gossip || member.stateOf(deviceId) === 'alive') return;
      const known = member.members().filter((m) => m.state === 'alive').length;
      if (known > 3) return;
      member.join([info.gossip]).catch((err: unknown) => log?.debug({ err, device: deviceId }, 'gossip join through an agent failed'));
    });
  }

  async stop(): Promise<void> {
    if (this.refresh) clearInterval(this.refresh);
    this.refresh = null;
    const m = this.member;
    this.member = null;
    if (!m) return;
    await m.leave().catch(() => undefined);
    await m.stop().catch(() => undefined);
  }
}
