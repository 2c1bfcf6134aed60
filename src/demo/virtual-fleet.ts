// The demo's living fleet: each virtual Pi that finishes its boot runs the real device agent
// (src/netboot/virtual-pi/os.ts); the Pis hang off a "power switch" that is a real script
// following bakery's PPI contract, used by the demo group's exec power driver, so the
// remediation ladder's power-cycle really goes through a driver and a process. The script only
// appends the request to a file; the fleet follows that file and turns Pis off (the agent dies)
// and on (a full boot again: TFTP, config, overlay, agent). A Pi can be killed on demand (the
// dashboard's "kill" in demo mode): it hangs as a crashed Pi would, and the ladder heals it.
import { chmodSync, closeSync, mkdirSync, openSync, readSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AgentLogger } from '../agent/log.js';
import type { GossipTimings } from '../gossip/config.js';
import type { PiHardware } from '../netboot/virtual-pi/models.js';
import { bootVirtualOs, type VirtualOs } from '../netboot/virtual-pi/os.js';
import type { VirtualPiReport } from '../netboot/virtual-pi/run.js';

export type PiPower = 'on' | 'off';
export type PiRunState = 'off' | 'firmware' | 'running' | 'crashed' | 'halted';

export interface VirtualFleetOptions {
  pis: PiHardware[];
  dir: string;
  /** One firmware boot of Pi i (TFTP, and DHCP in the netns demo); null when it could not run. */
  firmware: (i: number) => Promise<VirtualPiReport | null>;
  gossip?: GossipTimings | false;
  /**
   * The controller URL the in-process agents use. They run on the controller's host, not in
   * the Pis' namespaces, so they reach it at its own address rather than the one in cmdline.txt.
   */
  server: () => string;
  say: (line: string) => void;
  log?: AgentLogger;
}

interface Pi {
  hw: PiHardware;
  power: PiPower;
  state: PiRunState;
  os: VirtualOs | null;
  /** Serialises boots and power changes of one Pi. */
  chain: Promise<void>;
  /** Bumped by every power-off: a boot that started before it must not start the OS after it. */
  epoch: number;
  /** OS boots so far (each gets its own boot id). */
  boots: number;
}

export class VirtualFleet {
  private readonly pis: Pi[];
  readonly powerScript: string;
  private readonly requests: string;
  private readOffset = 0;
  private poll: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly retries = new Set<NodeJS.Timeout>();
  /** Differs per demo run, so a Pi's boot ids do too (the controller keeps them across runs). */
  private readonly seed = Date.now() >>> 0;

  constructor(private readonly o: VirtualFleetOptions) {
    this.pis = o.pis.map((hw) => ({ hw, power: 'on', state: 'off', os: null, chain: Promise.resolve(), epoch: 0, boots: 0 }));
    mkdirSync(o.dir, { recursive: true });
    this.requests = join(o.dir, 'power-requests.jsonl');
    writeFileSync(this.requests, '');
    this.powerScript = join(o.dir, 'power-switch.sh');
    // bakery's PPI: the request is JSON on stdin (no trailing newline), success is "ok" on stdout.
    writeFileSync(
      this.powerScript,
      `#!/bin/sh\n# The drover demo's power switch (bakery PPI contract). Requests go to a file the demo follows.\nreq=$(cat)\nprintf '%s\\n' "$req" >> '${this.requests}'\necho ok\n`,
    );
    chmodSync(this.powerScript, 0o755);
  }

  /** Follows the power switch's request file. */
  start(): void {
    this.poll = setInterval(() => this.readRequests(), 200);
  }

  /** Boots Pi i (firmware, then the OS and its agent). */
  boot(i: number): Promise<void> {
    const pi = this.pis[i]!;
    return this.then(pi, () => this.bootNow(pi));
  }

  /** Hangs a running Pi as a crash would: its agent and gossip member stop without a word. */
  async kill(serial: string): Promise<boolean> {
    const pi = this.bySerial(serial);
    if (!pi?.os || pi.state !== 'running') return false;
    const os = pi.os;
    pi.os = null;
    pi.state = 'crashed';
    await os.crash();
    this.o.say(`demo: ${pi.hw.serial} killed (hung like a crashed Pi); watch the ladder heal it`);
    return true;
  }

  status(): { serial: string; model: string; power: PiPower; state: PiRunState; node: string | null }[] {
    return this.pis.map((p) => ({ serial: p.hw.serial, model: p.hw.model, power: p.power, state: p.state, node: p.os?.node ?? null }));
  }

  os(serial: string): VirtualOs | null {
    return this.bySerial(serial)?.os ?? null;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.poll) clearInterval(this.poll);
    for (const t of this.retries) clearTimeout(t);
    await Promise.all(this.pis.map(async (p) => {
      const os = p.os;
      p.os = null;
      await os?.stop().catch(() => undefined);
    }));
  }

  private bySerial(serial: string): Pi | undefined {
    return this.pis.find((p) => p.hw.serial === serial);
  }

  private then(pi: Pi, fn: () => Promise<void>): Promise<void> {
    const next = pi.chain.then(fn).catch((err: unknown) => this.o.say(`demo: ${pi.hw.serial}: ${(err as Error).message}`));
    pi.chain = next;
    return next;
  }

  private async bootNow(pi: Pi): Promise<void> {
    if (this.stopped || pi.power === 'off' || pi.os) return;
    const epoch = pi.epoch;
    pi.state = 'firmware';
    const report = await this.o.firmware(this.pis.indexOf(pi));
    if (this.stopped || epoch !== pi.epoch) return;
    // Not accepted yet (no token in cmdline.txt), or the boot failed: the firmware retries later, as a Pi does.
    if (!report?.ok || !report.tftp?.cmdline || !/drover\.token=(?!none)\S+/.test(report.tftp.cmdline)) {
      pi.state = 'off';
      return;
    }
    const i = this.pis.indexOf(pi);
    let os: VirtualOs;
    try {
      os = await this.startOs(pi, i, report);
    } catch (err) {
      // As the initramfs does after a failure: try the whole boot again a little later.
      pi.state = 'off';
      this.o.say(`demo: ${pi.hw.serial} did not come up: ${(err as Error).message}; booting again in 10 s`);
      const t = setTimeout(() => {
        this.retries.delete(t);
        if (epoch === pi.epoch) void this.boot(i);
      }, 10_000);
      this.retries.add(t);
      return;
    }
    if (this.stopped || epoch !== pi.epoch) {
      await os.crash();
      return;
    }
    pi.os = os;
    pi.state = 'running';
  }

  private startOs(pi: Pi, i: number, report: VirtualPiReport): Promise<VirtualOs> {
    return bootVirtualOs({
      report,
      stateDir: join(this.o.dir, 'agents', pi.hw.serial),
      metricsSeed: this.seed,
      bootNumber: ++pi.boots,
      serverOverride: this.o.server(),
      gossip: this.o.gossip === false ? undefined : { bindAddr: '127.0.0.1', ...(this.o.gossip ? { timings: this.o.gossip } : {}) },
      onReboot: () => void this.rebootNow(i),
      onShutdown: () => void this.then(pi, async () => {
        const os = pi.os;
        pi.os = null;
        pi.state = 'halted';
        await os?.stop();
      }),
      ...(this.o.log ? { log: this.o.log } : {}),
    });
  }

  private rebootNow(i: number): Promise<void> {
    const pi = this.pis[i]!;
    return this.then(pi, async () => {
      const os = pi.os;
      pi.os = null;
      pi.state = 'off';
      await os?.stop();
    }).then(() => this.boot(i));
  }

  private setPower(serial: string, action: string): void {
    const pi = this.bySerial(serial);
    if (!pi) return;
    if (action === 'poweroff') {
      pi.epoch++;
      pi.power = 'off';
      const os = pi.os;
      pi.os = null;
      pi.state = 'off';
      void this.then(pi, async () => {
        await os?.crash();
      });
      this.o.say(`demo: power switch: ${serial} off`);
    } else if (action === 'poweron') {
      if (pi.power === 'on' && pi.state !== 'crashed') return;
      pi.power = 'on';
      if (pi.state === 'crashed') pi.state = 'off';
      this.o.say(`demo: power switch: ${serial} on; booting`);
      void this.boot(this.pis.indexOf(pi));
    }
  }

  private readRequests(): void {
    let size: number;
    try {
      size = statSync(this.requests).size;
    } catch {
      return;
    }
    if (size <= this.readOffset) return;
    const buf = Buffer.alloc(size - this.readOffset);
    const fd = openSync(this.requests, 'r');
    try {
      readSync(fd, buf, 0, buf.length, this.readOffset);
    } finally {
      closeSync(fd);
    }
    const text = buf.toString('utf8');
    const end = text.lastIndexOf('\n');
    if (end < 0) return;
    this.readOffset += Buffer.byteLength(text.slice(0, end + 1));
    for (const line of text.slice(0, end).split('\n')) {
      try {
        const req = JSON.parse(line) as { piId?: unknown; action?: unknown };
        if (typeof req.piId === 'string' && typeof req.action === 'string') this.setPower(req.piId, req.action);
      } catch {
        /* not ours */
      }
    }
  }
}
