// The uhubctl driver: a Pi powered from a USB hub port with per-port power switching.
//   uhubctl -l LOCATION -p PORT [-e] -a on|off
//   uhubctl -l LOCATION -p PORT [-e] -a cycle -d SECONDS    (uhubctl's own off-wait-on)
//   uhubctl -l LOCATION -p PORT [-e]                         (status)
// Status lines look like "  Port 2: 0100 power" or "  Port 2: 02a0 off". Without -e uhubctl
// also lists the USB3 companion hub of a USB3 hub; the port is 'on' or 'off' only when every
// listed line agrees. A hub with ganged power reports what it was told, not what the port does;
// docs/power.md says how to check a hub.
import type { UhubctlPowerConfig } from '../config.js';
import { powerFailed, tail } from '../failures.js';
import { exitText, runCommand } from '../process.js';
import type { DriverContext, PowerDriver, PowerState } from '../types.js';

/** The state of `port` in uhubctl's status output. */
export function parseUhubctlStatus(output: string, port: number): PowerState {
  const states = output
    .split('\n')
    .map((line) => new RegExp(`^\\s*Port ${port}: [0-9a-f]{4}\\b(.*)$`).exec(line)?.[1])
    .filter((rest): rest is string => rest !== undefined)
    .map((rest) => (/\bpower\b/.test(rest) ? 'on' : /\boff\b/.test(rest) ? 'off' : 'unknown'));
  if (states.length === 0) return 'unknown';
  return states.every((s) => s === states[0]) ? states[0]! : 'unknown';
}

export class UhubctlDriver implements PowerDriver {
  readonly name = 'uhubctl';

  constructor(
    private readonly cfg: UhubctlPowerConfig,
    private readonly ctx: DriverContext,
  ) {}

  private async run(extra: string[], timeoutMs: number): Promise<string> {
    const argv = [this.cfg.binary ?? 'uhubctl', '-l', this.cfg.location, '-p', String(this.cfg.port), ...(this.cfg.exact ? ['-e'] : []), ...extra];
    const r = await runCommand(argv, { driver: this.name, env: this.ctx.env, timeoutMs });
    if (r.code !== 0) {
      const action = extra[1] ?? 'status';
      throw powerFailed(this.name, `uhubctl ${action} of hub ${this.cfg.location} port ${this.cfg.port} failed (${exitText(r)}): ${tail(r.stderr || r.stdout) || 'no output'}`);
    }
    return r.stdout;
  }

  async on(): Promise<void> {
    await this.run(['-a', 'on'], this.ctx.timeoutMs);
  }

  async off(): Promise<void> {
    await this.run(['-a', 'off'], this.ctx.timeoutMs);
  }

  async cycle(): Promise<void> {
    // uhubctl waits the delay itself, so the limit covers it too.
    const seconds = String(Math.round(this.ctx.cycleDelayMs) / 1000);
    await this.run(['-a', 'cycle', '-d', seconds], this.ctx.timeoutMs + this.ctx.cycleDelayMs);
  }

  async status(): Promise<PowerState> {
    return parseUhubctlStatus(await this.run([], this.ctx.timeoutMs), this.cfg.port);
  }
}
