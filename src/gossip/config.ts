// Options of a gossip member and their defaults: memberlist's DefaultLANConfig, which is tuned
// for a LAN of up to thousands of members, i.e. a Pi fleet on one switch fabric.
import type { Meta } from './codec.js';
import type { PhiOptions } from './phi.js';
import type { Random } from './rng.js';
import type { Scheduler } from './scheduler.js';
import type { Transport } from './transport.js';

export interface GossipTimings {
  /** Time between failure probes (memberlist ProbeInterval, 1 s). */
  probeIntervalMs?: number;
  /** Wait for a direct ack before asking others to probe (ProbeTimeout, 500 ms). */
  probeTimeoutMs?: number;
  /** Members asked to probe indirectly (IndirectChecks, 3). */
  indirectChecks?: number;
  /** Suspicion timeout = mult · max(1, log10 N) · probe interval (SuspicionMult, 4). */
  suspicionMult?: number;
  /** Lifeguard: the suspicion timeout starts at this multiple of the minimum (SuspicionMaxTimeoutMult, 6). */
  suspicionMaxTimeoutMult?: number;
  /** Each update is retransmitted mult · ceil(log10(N+1)) times (RetransmitMult, 4). */
  retransmitMult?: number;
  /** Time between gossip rounds (GossipInterval, 200 ms). */
  gossipIntervalMs?: number;
  /** Members gossiped to per round (GossipNodes, 3). */
  gossipNodes?: number;
  /** Dead members still get gossip (and stay listed) this long (GossipToTheDeadTime, 30 s). */
  gossipToTheDeadMs?: number;
  /** Full state sync with one random member (PushPullInterval, 30 s; scaled up above 32 members). */
  pushPullIntervalMs?: number;
  /** Push-pull connect + exchange limit (TCPTimeout, 10 s). */
  pushPullTimeoutMs?: number;
  /** Lifeguard: ceiling of the local health multiplier (AwarenessMaxMultiplier, 8). */
  awarenessMaxMultiplier?: number;
  /** A dead member's name may move to a new address after this long; 0 = only after it left (DeadNodeReclaimTime, 0). */
  deadNodeReclaimMs?: number;
  /** Datagram size cap (UDPBufferSize, 1400: fits an Ethernet MTU with IP/UDP headers). */
  maxPacketBytes?: number;
  /** How long leave() waits for its announcement to be gossiped (default 5 s). */
  leaveTimeoutMs?: number;
  /**
   * Every this often, push-pull with one random failed (dead, not left) member, with probability
   * failed/alive, so a healed partition merges again (Serf's reconnect; memberlist alone never
   * contacts dead members once they are reaped). 0 disables. Default 30 s.
   */
  reconnectIntervalMs?: number;
  /** Failed members are retried this long after they died (default 6 h; Serf: 24 h). */
  reconnectTimeoutMs?: number;
}

/** Where log lines go; a pino logger fits. */
export interface GossipLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface GossipMemberOptions extends GossipTimings {
  /** Unique member name (Drover: the device id). At most 255 bytes of UTF-8. */
  name: string;
  /** Local address to bind; '0.0.0.0' binds all (then advertiseAddr, or the first non-internal IPv4, is announced). */
  bindAddr: string;
  /** UDP + TCP port; 0 = ephemeral. */
  bindPort: number;
  /** Address other members use to reach us (NAT, relay); default: the bound address. */
  advertiseAddr?: string;
  /** Port other members use to reach us; default: the bound port. */
  advertisePort?: number;
  /** Default: a UdpTransport on bindAddr:bindPort. */
  transport?: Transport;
  /** Default: real timers. */
  scheduler?: Scheduler;
  /** Lifeguard extensions (local health, dynamic suspicion, nacks); default true. false = plain SWIM. */
  lifeguard?: boolean;
  /** Small key/value facts gossiped with our alive message (≤ 512 bytes encoded). */
  meta?: Meta;
  logger?: GossipLogger;
  /** Default Math.random; simulations pass a seeded one. */
  random?: Random;
  /** Options of the per-peer phi detectors; false disables them (saves memory in huge simulations). */
  phi?: PhiOptions | false;
}

export type ResolvedTimings = Required<GossipTimings>;

export const DEFAULT_TIMINGS: ResolvedTimings = {
  probeIntervalMs: 1000,
  probeTimeoutMs: 500,
  indirectChecks: 3,
  suspicionMult: 4,
  suspicionMaxTimeoutMult: 6,
  retransmitMult: 4,
  gossipIntervalMs: 200,
  gossipNodes: 3,
  gossipToTheDeadMs: 30_000,
  pushPullIntervalMs: 30_000,
  pushPullTimeoutMs: 10_000,
  awarenessMaxMultiplier: 8,
  deadNodeReclaimMs: 0,
  maxPacketBytes: 1400,
  leaveTimeoutMs: 5000,
  reconnectIntervalMs: 30_000,
  reconnectTimeoutMs: 6 * 3600_000,
};

export function resolveTimings(o: GossipTimings): ResolvedTimings {
  const t: ResolvedTimings = { ...DEFAULT_TIMINGS };
  for (const k of Object.keys(DEFAULT_TIMINGS) as (keyof ResolvedTimings)[]) {
    const v = o[k];
    if (v === undefined) continue;
    if (!Number.isFinite(v) || v < 0) throw new RangeError(`gossip option ${k} must be a finite number ≥ 0, got ${v}`);
    t[k] = v;
  }
  if (t.probeIntervalMs <= 0 || t.gossipIntervalMs <= 0) throw new RangeError('probeIntervalMs and gossipIntervalMs must be > 0');
  if (t.probeTimeoutMs >= t.probeIntervalMs) throw new RangeError('probeTimeoutMs must be shorter than probeIntervalMs');
  if (t.maxPacketBytes < 512 || t.maxPacketBytes > 65_000) throw new RangeError('maxPacketBytes must be within 512..65000');
  if (t.awarenessMaxMultiplier < 1) throw new RangeError('awarenessMaxMultiplier must be ≥ 1');
  return t;
}

/**
 * memberlist's pushPullScale: above 32 members the push-pull interval grows by one multiple per
 * doubling of the group, so full-state syncs do not saturate the network.
 */
export function pushPullScale(intervalMs: number, n: number): number {
  const threshold = 32;
  if (n <= threshold) return intervalMs;
  return (Math.ceil(Math.log2(n) - Math.log2(threshold)) + 1) * intervalMs;
}
