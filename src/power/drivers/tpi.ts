// The tpi driver: a compute module in a Turing Pi 2 slot, powered through the board's BMC.
//   api mode: GET /api/bmc?opt=set&type=power&node{N}=1|0, opt=get&type=power, and for
//             cycleMode reset opt=set&type=reset&node={N-1} (the reset call counts nodes from 0)
//   cli mode: tpi [--host H] [--user U --password P] power on|off|reset -n N;  tpi power status
//             ("node1: On" lines), for a controller running on the BMC or with tpi installed.
// The CLI takes the password on its command line, visible to local users; api mode does not.
import type { TpiPowerConfig } from '../config.js';
import { offPauseOn } from '../cycle.js';
import { powerFailed, tail } from '../failures.js';
import { exitText, runCommand } from '../process.js';
import { readSecret } from '../secrets.js';
import type { DriverContext, PowerDriver, PowerState, PowerTarget } from '../types.js';
import { bmcRequest, nodePowerFromResult, type BmcEndpoint } from './tpi-api.js';

/** A node's state in `tpi power status` output ("node2: Off"). */
export function parseTpiStatus(output: string, node: number): PowerState {
  const m = new RegExp(`^\\s*node${node}\\s*:\\s*(on|off)\\b`, 'im').exec(output);
  return m ? (m[1]!.toLowerCase() as 'on' | 'off') : 'unknown';
}

export class TpiDriver implements PowerDriver {
  readonly name = 'tpi';

  constructor(
    private readonly cfg: TpiPowerConfig,
    private readonly ctx: DriverContext,
  ) {}

  private get mode(): 'api' | 'cli' {
    return this.cfg.mode ?? 'api';
  }

  private password(): string | undefined {
    return readSecret(this.cfg.password, this.cfg.passwordFile, 'passwordFile');
  }

  private endpoint(): BmcEndpoint {
    return {
      scheme: this.cfg.scheme ?? 'https',
      host: this.cfg.host!,
      user: this.cfg.user,
      password: this.password(),
      caFile: this.cfg.caFile,
      insecureTls: this.cfg.insecureTls ?? false,
      timeoutMs: this.ctx.timeoutMs,
    };
  }

  private async cli(args: string[]): Promise<string> {
    const password = this.password();
    const argv = [
      this.cfg.binary ?? 'tpi',
      ...(this.cfg.host !== undefined ? ['--host', this.cfg.host] : []),
      ...(this.cfg.user !== undefined ? ['--user', this.cfg.user] : []),
      ...(password !== undefined ? ['--password', password] : []),
      ...args,
    ];
    const r = await runCommand(argv, { driver: this.name, env: this.ctx.env, timeoutMs: this.ctx.timeoutMs });
    if (r.code !== 0) {
      let out = r.stderr || r.stdout;
      if (password !== undefined) out = out.split(password).join('***');
      throw powerFailed(this.name, `tpi ${args.join(' ')} failed (${exitText(r)}): ${tail(out) || 'no output'}`);
    }
    return r.stdout;
  }

  private async set(on: boolean): Promise<void> {
    if (this.mode === 'cli') {
      await this.cli(['power', on ? 'on' : 'off', '-n', String(this.cfg.node)]);
      return;
    }
    await this.expectOk(await bmcRequest(this.endpoint(), { opt: 'set', type: 'power', [`node${this.cfg.node}`]: on ? '1' : '0' }), `power ${on ? 'on' : 'off'}`);
  }

  private expectOk(result: unknown, what: string): void {
    if (typeof result === 'string' && result.toLowerCase() === 'ok') return;
    throw powerFailed(this.name, `BMC ${this.cfg.host} did not confirm ${what} of node ${this.cfg.node}: ${tail(JSON.stringify(result), 200)}`);
  }

  async on(): Promise<void> {
    await this.set(true);
  }

  async off(): Promise<void> {
    await this.set(false);
  }

  async cycle(t: PowerTarget): Promise<void> {
    if ((this.cfg.cycleMode ?? 'power') === 'power') return offPauseOn(t, () => this.off(), () => this.on(), this.ctx.cycleDelayMs);
    if (this.mode === 'cli') {
      await this.cli(['power', 'reset', '-n', String(this.cfg.node)]);
      return;
    }
    this.expectOk(await bmcRequest(this.endpoint(), { opt: 'set', type: 'reset', node: String(this.cfg.node - 1) }), 'reset');
  }

  async status(): Promise<PowerState> {
    if (this.mode === 'cli') return parseTpiStatus(await this.cli(['power', 'status']), this.cfg.node);
    return nodePowerFromResult(await bmcRequest(this.endpoint(), { opt: 'get', type: 'power' }), this.cfg.node);
  }
}
