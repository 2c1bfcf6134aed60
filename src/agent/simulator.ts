// A fleet of simulated devices in one process: the REAL Agent class per device (its own
// WebSocket, device token, sample buffer and state dir), fed by a synthetic MetricsSource instead
// of /proc. For tests and benchmarks on loopback: 1,000 agents against one controller.
//
// The synthetic samples are deterministic per (seed, device, boot, sample number) and move like a
// Pi's would: per-core CPU on a mean-reverting random walk, load following CPU, memory and temperature
// drifting with it, disk filling slowly, network counters growing. The boot id stays the same until
// `revive()` reboots the device; uptime counts from that boot.
//
// Starts are staggered (spread over ~2 s by default) so a thousand agents do not dial in the same
// millisecond. Power jobs run harmless commands (`true`): a reboot job does not reboot a simulated
// device; `kill()` + `revive()` do.
//
// Also here: `createSimDevices()`, which registers N devices and gets their device tokens, through
// the controller's services (in-process) or its HTTP API (admin token).
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Services } from '../services/index.js';
import { seededRandom } from '../gossip/rng.js';
import { Agent, type AgentOptions, type MetricsSource } from './agent.js';
import { silentLogger, type AgentLogger } from './log.js';
import type { Metrics } from './protocol.js';

export interface SimDevice {
  /** Device id (dev_…). */
  node: string;
  /** Its device token. */
  token: string;
}

export interface FleetSimulatorOptions {
  /** Controller base URL, http://127.0.0.1:PORT. */
  server: string;
  devices: SimDevice[];
  /** Sampling interval until the controller's welcome sets it (the welcome wins, as on a device). */
  heartbeatMs?: number;
  /** Each agent's state dir is stateRoot/<node>; created, and removed again by stop(). */
  stateRoot: string;
  /** Seed of the synthetic metrics and boot ids (default 1). */
  seed?: number;
  /** Agents start evenly over this long (default min(2 s, 2 ms × devices)). */
  startSpreadMs?: number;
  /** Unacked samples each agent keeps (default 720; the device default of 8,640 costs ~70 kB of ring per agent). */
  bufferCapacity?: number;
  /** Connection knobs handed to every agent (back-off, ping, timeouts). */
  client?: AgentOptions['client'];
  /** Agent version in the hello (default: this build's). */
  version?: string;
  /** Image id in the hello (default null). */
  imageId?: string | null;
  log?: AgentLogger;
}

export interface FleetStats {
  devices: number;
  /** Agents started and not killed. */
  running: number;
  /** Of those, welcomed by the controller right now. */
  connected: number;
  /** Samples taken since the simulator started (all agents, all boots). */
  samples: number;
  /** Samples acked by the controller (sum over the current agents' streams). */
  acked: number;
  /** Samples buffered and not yet acked. */
  unacked: number;
  /** Samples dropped because a ring was full. */
  dropped: number;
  welcomes: number;
  disconnects: number;
  kills: number;
  revives: number;
}

export interface FleetSimulator {
  /** The live Agent of every device that is running (killed devices are absent). */
  readonly agents: ReadonlyMap<string, Agent>;
  /** Resolves once every agent has been started (after the stagger); rejects if one could not start. */
  readonly ready: Promise<void>;
  /** Stops every agent (clean close), then removes the state dirs. Safe to call more than once, also during start. */
  stop(): Promise<void>;
  /** The device dies: its agent stops sampling and its connection closes. */
  kill(node: string): Promise<void>;
  /**
   * The device comes back. By default as after a power cycle: a new boot id, and the buffer
   * (tmpfs on a Pi) gone, so a new stream. `{ reboot: false }`: only the agent restarted, same
   * boot id, buffer and stream kept (what was not acked is replayed).
   */
  revive(node: string, opts?: { reboot?: boolean }): Promise<void>;
  stats(): FleetStats;
}

// ── deterministic randomness ──

/** 32-bit FNV-1a of a string. */
function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));
const r3 = (x: number) => Math.round(x * 1000) / 1000;

function uuidFrom(rand: () => number): string {
  const hex = Array.from({ length: 32 }, () => Math.floor(rand() * 16).toString(16)).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${'89ab'[Math.floor(rand() * 4)]}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

const GB = 1024 ** 3;

/**
 * Synthetic metrics of one simulated Pi, for one boot. The board (cores, RAM, card size, whether
 * it has a thermal zone or vcgencmd) follows from (seed, node); the walk from (seed, node, boot).
 */
export class SyntheticMetrics implements MetricsSource {
  private readonly rand: () => number;
  private readonly cores: number;
  private readonly memTotal: number;
  private readonly diskTotal: number;
  private readonly hasTemp: boolean;
  private readonly hasVcgencmd: boolean;
  private readonly boot: string;
  private readonly bootAt: number;
  private cpu: number[];
  private target: number;
  private load: [number, number, number] = [0, 0, 0];
  private memUsed: number;
  private diskUsed: number;
  private rx = 0;
  private tx = 0;
  private temp: number;
  private throttled = 0;
  private n = 0;

  private readonly image: string | null;
  private readonly clock: () => number;

  constructor(seed: number, node: string, bootCount: number, o: { imageId?: string | null; clock?: () => number } = {}) {
    this.image = o.imageId ?? null;
    this.clock = o.clock ?? Date.now;
    const clock = this.clock;
    const board = seededRandom(hash32(`${seed}\0${node}\0board`));
    this.cores = board() < 0.85 ? 4 : 1; // Pi 3/4/5 vs Zero / 1
    this.memTotal = [1, 2, 4, 8][Math.floor(board() * 4)]! * GB - 64 * 1024 * 1024; // minus the GPU split
    this.diskTotal = [16, 32, 64][Math.floor(board() * 3)]! * 1e9;
    this.hasTemp = board() < 0.97;
    this.hasVcgencmd = board() < 0.9;
    this.diskUsed = this.diskTotal * (0.15 + board() * 0.5);
    this.rand = seededRandom(hash32(`${seed}\0${node}\0boot${bootCount}`));
    this.boot = uuidFrom(this.rand);
    this.bootAt = clock();
    // Each device idles around its own level; some are busy.
    this.target = this.rand() < 0.1 ? 0.6 + this.rand() * 0.35 : 0.03 + this.rand() * 0.2;
    this.cpu = Array.from({ length: this.cores }, () => this.target);
    this.memUsed = this.memTotal * (0.1 + this.rand() * 0.3);
    this.temp = 38 + this.rand() * 8;
  }

  async bootId(): Promise<string> {
    return this.boot;
  }

  async imageId(): Promise<string | null> {
    return this.image;
  }

  async sample(): Promise<Metrics> {
    const r = this.rand;
    this.n++;
    // Now and then the device's workload changes.
    if (r() < 0.01) this.target = r() < 0.15 ? 0.6 + r() * 0.35 : 0.03 + r() * 0.2;
    this.cpu = this.cpu.map((c) => clamp(c + (this.target - c) * 0.2 + (r() - 0.5) * 0.1, 0, 1));
    const busy = this.cpu.reduce((a, b) => a + b, 0);
    // load averages: exponentially smoothed runnable count (1/5/15 "minutes" at the sample rate)
    const runnable = busy + (r() < 0.05 ? r() * 2 : 0);
    const k = [0.2, 0.05, 0.02] as const;
    this.load = this.load.map((l, i) => r3(l + (runnable - l) * k[i]!)) as [number, number, number];
    this.memUsed = clamp(this.memUsed + (r() - 0.5) * 0.01 * this.memTotal + (busy / this.cores - 0.3) * 0.002 * this.memTotal, 0.05 * this.memTotal, 0.97 * this.memTotal);
    this.diskUsed = Math.min(this.diskTotal * 0.99, this.diskUsed + r() * 4096);
    this.rx += Math.floor(500 + r() * 20_000 * (1 + busy));
    this.tx += Math.floor(300 + r() * 8_000 * (1 + busy));
    this.temp = clamp(this.temp + (40 + 35 * (busy / this.cores) - this.temp) * 0.1 + (r() - 0.5) * 0.6, 25, 90);
    // get_throttled bits: 0x8 soft temperature limit now, 0x80000 it has happened since boot (sticky)
    if (this.temp > 80) this.throttled |= 0x80008;
    else this.throttled &= 0xf0000;
    const m: Metrics = {
      cpu: this.cpu.map(r3),
      load: this.load,
      mem: [this.memTotal, Math.round(this.memTotal - this.memUsed)],
      disk: [this.diskTotal, Math.round(this.diskTotal - this.diskUsed)],
      net: [this.rx, this.tx],
      uptime: Math.floor((this.clock() - this.bootAt) / 1000),
    };
    if (this.hasTemp) m.temp = Math.round(this.temp * 10) / 10;
    if (this.hasVcgencmd) m.throttled = this.throttled;
    return m;
  }
}

// ── the fleet ──

interface Slot {
  device: SimDevice;
  agent: Agent | null;
  /** Killed (and not revived): the staggered start leaves it down. */
  killed: boolean;
  boots: number;
  stateDir: string;
}

export function startFleetSimulator(opts: FleetSimulatorOptions): FleetSimulator {
  const seed = opts.seed ?? 1;
  const log = opts.log ?? silentLogger;
  const n = opts.devices.length;
  const spread = opts.startSpreadMs ?? Math.min(2000, 2 * n);
  const slots = new Map<string, Slot>();
  const live = new Map<string, Agent>();
  const counters = { samples: 0, welcomes: 0, disconnects: 0, kills: 0, revives: 0 };
  let stopping: Promise<void> | null = null;

  mkdirSync(opts.stateRoot, { recursive: true });
  for (const device of opts.devices) {
    if (slots.has(device.node)) throw new Error(`device ${device.node} is listed twice`);
    slots.set(device.node, { device, agent: null, killed: false, boots: 0, stateDir: join(opts.stateRoot, device.node.replace(/[^A-Za-z0-9_.-]/g, '_')) });
  }

  const launch = async (slot: Slot): Promise<void> => {
    const agent = new Agent({
      server: opts.server,
      node: slot.device.node,
      token: slot.device.token,
      stateDir: slot.stateDir,
      heartbeatMs: opts.heartbeatMs ?? 10_000,
      metrics: new SyntheticMetrics(seed, slot.device.node, slot.boots, { imageId: opts.imageId ?? null }),
      commands: { reboot: ['true'], shutdown: ['true'] },
      bufferCapacity: opts.bufferCapacity ?? 720,
      ...(opts.client ? { client: opts.client } : {}),
      ...(opts.version ? { version: opts.version } : {}),
      log,
    });
    agent.on('sample', () => counters.samples++);
    agent.on('welcome', () => counters.welcomes++);
    agent.on('disconnected', () => counters.disconnects++);
    slot.agent = agent;
    live.set(slot.device.node, agent);
    await agent.start();
  };

  const ready = (async () => {
    const t0 = performance.now();
    let i = 0;
    for (const slot of slots.values()) {
      if (stopping) return;
      const due = t0 + (n > 1 ? (i * spread) / n : 0);
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      if (stopping) return;
      i++;
      if (slot.agent || slot.killed) continue; // revived, or killed, before its turn
      await launch(slot);
    }
  })();
  // stop() may run while starting; the caller sees the failure through `ready`, not as an unhandled rejection.
  ready.catch(() => undefined);

  const slotOf = (node: string): Slot => {
    const s = slots.get(node);
    if (!s) throw new Error(`no simulated device ${node}`);
    return s;
  };

  const stopAgent = async (slot: Slot) => {
    const a = slot.agent;
    if (!a) return;
    slot.agent = null;
    live.delete(slot.device.node);
    await a.stop();
  };

  return {
    agents: live,
    ready,
    stop() {
      stopping ??= (async () => {
        await ready.catch(() => undefined);
        await Promise.allSettled([...slots.values()].map(stopAgent));
        rmSync(opts.stateRoot, { recursive: true, force: true });
      })();
      return stopping;
    },
    async kill(node) {
      const slot = slotOf(node);
      if (slot.killed) return;
      slot.killed = true;
      counters.kills++;
      await stopAgent(slot);
    },
    async revive(node, o = {}) {
      if (stopping) throw new Error('the simulator is stopping');
      const slot = slotOf(node);
      await stopAgent(slot);
      slot.killed = false;
      if (o.reboot ?? true) {
        slot.boots++;
        rmSync(slot.stateDir, { recursive: true, force: true });
      }
      counters.revives++;
      await launch(slot);
    },
    stats() {
      let connected = 0;
      let acked = 0;
      let unacked = 0;
      let dropped = 0;
      for (const a of live.values()) {
        const s = a.status;
        if (s.connected) connected++;
        acked += s.ackedSeq;
        unacked += s.unacked;
        dropped += s.dropped;
      }
      return { devices: n, running: live.size, connected, samples: counters.samples, acked, unacked, dropped, welcomes: counters.welcomes, disconnects: counters.disconnects, kills: counters.kills, revives: counters.revives };
    },
  };
}

// ── registering the devices ──

/** Where devices are registered: the controller's services in this process, or its HTTP API with an admin (or operate) token. */
export type SimDeviceRegistrar = { services: Pick<Services, 'devices' | 'deviceTokens'> } | { url: string; adminToken: string };

export interface CreateSimDevicesOptions {
  /** First serial (8 hex digits are made from it); default random, so repeated runs on one database do not collide. */
  serialBase?: number;
  /** Put every device in this group (id or name). */
  groupId?: string;
  /** Hostnames are PREFIX-<i> (default "sim"). */
  hostnamePrefix?: string;
  /** Requests in flight (default 8). */
  concurrency?: number;
  /** Called every 500 devices. */
  progress?: (done: number) => void;
}

/**
 * Registers `count` accepted devices and returns each one's device token. Through the services
 * the token is the device's boot token (what cmdline.txt would carry); through the API it is a
 * device-role token made with POST /api/v1/tokens. Either authenticates the agent the same way.
 */
export async function createSimDevices(target: SimDeviceRegistrar, count: number, o: CreateSimDevicesOptions = {}): Promise<SimDevice[]> {
  const base = o.serialBase ?? Math.floor(Math.random() * 0xf0000000);
  if (base + count > 0xffffffff) throw new Error('serialBase + count must stay within 8 hex digits');
  const prefix = o.hostnamePrefix ?? 'sim';
  const out = new Array<SimDevice>(count);

  const one = async (i: number): Promise<SimDevice> => {
    const serial = (base + i).toString(16).padStart(8, '0');
    const input = { serial, hostname: `${prefix}-${i}`, state: 'accepted' as const, ...(o.groupId ? { groupId: o.groupId } : {}) };
    if ('services' in target) {
      const device = await target.services.devices.create(input, 'simulator');
      return { node: device.id, token: await target.services.deviceTokens.tokenFor(device) };
    }
    const call = async <T>(path: string, body: unknown): Promise<T> => {
      const res = await fetch(new URL(path, target.url), {
        method: 'POST',
        headers: { authorization: `Bearer ${target.adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`POST ${path}: ${res.status} ${text.slice(0, 300)}`);
      return JSON.parse(text) as T;
    };
    const device = await call<{ id: string }>('/api/v1/devices', input);
    const tok = await call<{ secret: string }>('/api/v1/tokens', { name: `sim:${serial}`, role: 'device', deviceId: device.id });
    return { node: device.id, token: tok.secret };
  };

  let next = 0;
  let done = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= count) return;
      out[i] = await one(i);
      if (++done % 500 === 0) o.progress?.(done);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(o.concurrency ?? 8, count)) }, worker));
  return out;
}
