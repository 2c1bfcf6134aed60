// The clusterhat driver: a Pi Zero (or compute module) on an 8086.net Cluster HAT / Cluster CTRL,
// switched by its clusterctrl tool on the controller Pi:
//   clusterctrl on pN | clusterctrl off pN | clusterctrl status   ("pN:1" = powered, "pN:0" = off)
// clusterctrl reports bad arguments as "ERROR: ..." on stdout with exit 1. On a host that is not
// configured as a Cluster HAT controller (/etc/default/clusterctrl TYPE=c) it exits 0 doing
// nothing, so on/off cannot tell; status then has no pN line and answers 'unknown'.
import type { ClusterhatPowerConfig } from '../config.js';
import { offPauseOn } from '../cycle.js';
import { powerFailed, tail } from '../failures.js';
import { exitText, runCommand } from '../process.js';
import type { DriverContext, PowerDriver, PowerState, PowerTarget } from '../types.js';

/** pN's state in `clusterctrl status` output. */
export function parseClusterctrlStatus(output: string, node: number): PowerState {
  const m = new RegExp(`^p${node}:([01])\\s*$`, 'm').exec(output);
  return m ? (m[1] === '1' ? 'on' : 'off') : 'unknown';
}

export class ClusterhatDriver implements PowerDriver {
  readonly name = 'clusterhat';

  constructor(
    private readonly cfg: ClusterhatPowerConfig,
    private readonly ctx: DriverContext,
  ) {}

  private async run(args: string[]): Promise<string> {
    const r = await runCommand([this.cfg.binary ?? 'clusterctrl', ...args], { driver: this.name, env: this.ctx.env, timeoutMs: this.ctx.timeoutMs });
    if (r.code !== 0) throw powerFailed(this.name, `clusterctrl ${args.join(' ')} failed (${exitText(r)}): ${tail(r.stderr || r.stdout) || 'no output'}`);
    return r.stdout;
  }

  async on(): Promise<void> {
    await this.run(['on', `p${this.cfg.node}`]);
  }

  async off(): Promise<void> {
    await this.run(['off', `p${this.cfg.node}`]);
  }

  cycle(t: PowerTarget): Promise<void> {
    return offPauseOn(t, () => this.off(), () => this.on(), this.ctx.cycleDelayMs);
  }

  async status(): Promise<PowerState> {
    return parseClusterctrlStatus(await this.run(['status']), this.cfg.node);
  }
}
