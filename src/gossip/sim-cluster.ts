// A whole gossip group in one process and in virtual time, for tests and the benchmark:
// N real GossipMembers on a SimNetwork, driven by one VirtualScheduler and one seeded PRNG, so
// a run replays exactly for a given seed. Member i is `m<i>` at 10.x.y.z:7946.
import type { GossipLogger, GossipTimings } from './config.js';
import type { PhiOptions } from './phi.js';
import { seededRandom, type Random } from './rng.js';
import { SimNetwork, type SimNetworkOptions } from './sim-network.js';
import { GossipMember, type GossipMemberInfo } from './swim.js';
import { VirtualScheduler } from './virtual-scheduler.js';

export interface SimClusterOptions {
  size: number;
  seed?: number;
  lifeguard?: boolean;
  network?: Omit<SimNetworkOptions, 'random'>;
  timings?: GossipTimings;
  phi?: PhiOptions | false;
  /** Shared by every member (tests read what they log). */
  logger?: GossipLogger;
  /** Virtual ms between successive joins (default 10): members join one after another through a random earlier member. */
  joinSpacingMs?: number;
}

export const SIM_PORT = 7946;

export function simAddr(i: number): string {
  const n = i + 1;
  return `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
}

export class SimCluster {
  readonly sched = new VirtualScheduler();
  readonly net: SimNetwork;
  readonly random: Random;
  readonly members: GossipMember[] = [];
  /** Whether member i is running (not killed or stopped). */
  readonly up: boolean[] = [];
  private readonly names: string[] = [];

  private constructor(private readonly opts: SimClusterOptions) {
    this.random = seededRandom(opts.seed ?? 1);
    this.net = new SimNetwork(this.sched, { ...opts.network, random: this.random });
  }

  /** Builds, starts and joins the whole group (returns once every join has answered). */
  static async create(opts: SimClusterOptions): Promise<SimCluster> {
    const c = new SimCluster(opts);
    for (let i = 0; i < opts.size; i++) {
      c.names.push(`m${i}`);
      c.members.push(c.makeMember(i));
    }
    for (const m of c.members) await m.start();
    for (let i = 0; i < opts.size; i++) c.up.push(true);
    const spacing = opts.joinSpacingMs ?? 10;
    let pending = 0;
    for (let i = 1; i < opts.size; i++) {
      c.sched.runFor(spacing);
      const seed = Math.floor(c.random() * i);
      pending++;
      void c.members[i]!.join([{ addr: simAddr(seed), port: SIM_PORT }]).then(() => pending--);
      // Let the push-pull answer (a few ms of virtual time) before the next join.
      c.sched.runFor(5);
      await Promise.resolve();
    }
    c.sched.runFor(100);
    await new Promise((r) => setImmediate(r));
    if (pending > 0) throw new Error(`${pending} joins did not complete`);
    return c;
  }

  private makeMember(i: number): GossipMember {
    const addr = simAddr(i);
    return new GossipMember({
      name: `m${i}`,
      bindAddr: addr,
      bindPort: SIM_PORT,
      transport: this.net.transport(addr, SIM_PORT),
      scheduler: this.sched,
      random: this.random,
      lifeguard: this.opts.lifeguard ?? true,
      phi: this.opts.phi ?? {},
      ...(this.opts.logger ? { logger: this.opts.logger } : {}),
      ...this.opts.timings,
    });
  }

  get size(): number {
    return this.members.length;
  }

  /** Crashes member i: it stops without telling anyone. */
  kill(i: number): void {
    this.up[i] = false;
    void this.members[i]!.stop();
  }

  /** Every running member sees every running member alive, and the others dead, left or not at all. */
  converged(): boolean {
    const n = this.members.length;
    for (let i = 0; i < n; i++) {
      if (!this.up[i]) continue;
      const m = this.members[i]!;
      for (let j = 0; j < n; j++) {
        const st = m.stateOf(this.names[j]!);
        if (this.up[j] ? st !== 'alive' : st === 'alive' || st === 'suspect') return false;
      }
    }
    return true;
  }

  /** What running member i thinks of member `name`. */
  view(i: number, name: string): GossipMemberInfo | undefined {
    return this.members[i]!.member(name);
  }

  /** Runs virtual time until `done` holds or `limitMs` passes; returns whether it held. */
  runUntil(done: () => boolean, limitMs: number, checkEveryMs = 100): boolean {
    const end = this.sched.now() + limitMs;
    while (this.sched.now() < end) {
      if (done()) return true;
      this.sched.runFor(Math.min(checkEveryMs, end - this.sched.now()));
    }
    return done();
  }
}
