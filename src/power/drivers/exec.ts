// The exec driver: bakery's PPI (Pi Power Interface) contract, so a PPI written for bakery
// (github.com/PiFoundry/bakery, piInfo.go doPpiAction) works unchanged. Bakery starts the PPI in
// its working directory, writes {"piId":"<id>","action":"poweron"|"poweroff"} to stdin (no
// newline) and closes it; the call succeeded only if the exit status is 0, nothing was written to
// stderr and stdout is exactly "ok". Drover allows surrounding whitespace around "ok" (an
// `echo ok` script), otherwise it is the same test. `status` is Drover's addition: stdout `on` or
// `off`; anything else (a bakery PPI ignores unknown actions and prints "ok") is 'unknown'.
import { dirname, isAbsolute } from 'node:path';
import type { ExecPowerConfig } from '../config.js';
import { offPauseOn } from '../cycle.js';
import { powerFailed, tail } from '../failures.js';
import { exitText, runCommand, type RunResult } from '../process.js';
import { fill, targetValues } from '../templates.js';
import type { DriverContext, PowerDriver, PowerState, PowerTarget } from '../types.js';

type PpiAction = 'poweron' | 'poweroff' | 'status';

export class ExecDriver implements PowerDriver {
  readonly name = 'exec';

  constructor(
    private readonly cfg: ExecPowerConfig,
    private readonly ctx: DriverContext,
  ) {}

  private get program(): string {
    return this.cfg.command[0]!;
  }

  private async call(t: PowerTarget, action: PpiAction): Promise<RunResult> {
    const piId = fill(this.cfg.piId ?? '{{serial}}', targetValues(t), false, (name) =>
      powerFailed(this.name, `piId uses {{${name}}} but device ${t.deviceId} has no ${name}`),
    );
    return runCommand(this.cfg.command, {
      driver: this.name,
      input: JSON.stringify({ piId, action }),
      env: { ...this.ctx.env, DROVER_DEVICE_ID: t.deviceId, DROVER_SERIAL: t.serial, DROVER_HOSTNAME: t.hostname ?? '', DROVER_ACTION: action },
      timeoutMs: this.ctx.timeoutMs,
      // bakery ran ./ppi from its own directory, and PPIs read their config relative to it
      // (bakery-simpleweb-ppi opens ppiConfig.json); running beside the program keeps that working.
      ...(isAbsolute(this.program) ? { cwd: dirname(this.program) } : {}),
    });
  }

  private async switchTo(t: PowerTarget, action: 'poweron' | 'poweroff'): Promise<void> {
    const r = await this.call(t, action);
    const what = `${this.program} ${action}`;
    if (r.code !== 0) throw powerFailed(this.name, `${what} failed (${exitText(r)}): ${tail(r.stderr || r.stdout) || 'no output'}`);
    if (r.stderr.trim() !== '') throw powerFailed(this.name, `${what} wrote to stderr, which the PPI contract counts as failure: ${tail(r.stderr)}`);
    const out = r.stdout.trim();
    if (out !== 'ok') throw powerFailed(this.name, `${what} printed ${out === '' ? 'nothing' : `"${tail(out, 80)}"`} instead of "ok"`);
  }

  on(t: PowerTarget): Promise<void> {
    return this.switchTo(t, 'poweron');
  }

  off(t: PowerTarget): Promise<void> {
    return this.switchTo(t, 'poweroff');
  }

  cycle(t: PowerTarget): Promise<void> {
    return offPauseOn(t, (x) => this.off(x), (x) => this.on(x), this.ctx.cycleDelayMs);
  }

  async status(t: PowerTarget): Promise<PowerState> {
    // A program that cannot run or hangs is a failure; one that answers something else just cannot tell.
    const r = await this.call(t, 'status');
    const out = r.stdout.trim();
    if (r.code === 0 && (out === 'on' || out === 'off')) return out;
    this.ctx.logger?.debug({ driver: this.name, device: t.deviceId, exit: exitText(r), stdout: tail(out, 80) }, 'PPI status answer is neither on nor off');
    return 'unknown';
  }
}
