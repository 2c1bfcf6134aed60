// The agent ⇄ controller wire protocol: one JSON object per WebSocket text message. Both sides
// import these types; the controller validates every message it receives (agents are not
// trusted further than their own device), the agent ignores message types it does not know.
//
// Delivery of samples is at-least-once with in-order replay: every heartbeat carries a `seq`
// from the agent's stream (`stream` is a random id the agent keeps with its buffer, so a new
// buffer never collides with an old one); the controller stores a sample once, acks the highest
// seq it has stored, and the agent drops what is acked. After a reconnect the `welcome` carries
// the last stored seq so the agent replays only the rest.

/** WebSocket path on the controller; the device token goes in `Authorization: Bearer`. */
export const AGENT_WS_PATH = '/agent/v1/ws';
export const AGENT_PROTOCOL = 1;

/** One sample, compact on purpose (100,000 devices × every 10 s). Sizes are bytes. */
export interface Metrics {
  /** Busy fraction 0..1 per core since the previous sample. */
  cpu: number[];
  /** Load average 1/5/15 minutes. */
  load: [number, number, number];
  /** MemTotal and MemAvailable. */
  mem: [total: number, available: number];
  /** statfs of / (total, free for unprivileged users). */
  disk: [total: number, free: number];
  /** Highest thermal zone, °C; absent when the board has none. */
  temp?: number;
  /** `vcgencmd get_throttled` bits (under-voltage = bit 0, throttled = bit 2, …); absent without vcgencmd. */
  throttled?: number;
  /** Received and sent bytes over all interfaces but lo (counters since boot). */
  net: [rx: number, tx: number];
  /** Seconds since boot. */
  uptime: number;
}

export interface Sample {
  seq: number;
  /** Device clock, epoch ms. */
  ts: number;
  m: Metrics;
}

/** A member as one agent's gossip view sees it. */
export interface ViewMember {
  /** Device id (the gossip member name). */
  node: string;
  state: 'alive' | 'suspect' | 'dead' | 'left';
  incarnation: number;
  /** The reporter's phi for this member's gossip heartbeats, if it has one. */
  phi?: number;
}

export type JobKind = 'reboot' | 'shutdown' | 'exec' | 'write-file' | 'restart-unit' | 'logs' | 'next-boot-image';

export interface JobParams {
  reboot: Record<string, never>;
  shutdown: Record<string, never>;
  /** `argv` runs without a shell; `sh` runs through /bin/sh -c. */
  exec: { argv?: string[]; sh?: string; timeoutMs?: number; env?: Record<string, string> };
  /** Written atomically (temp file + rename); content is base64. */
  'write-file': { path: string; contentB64: string; mode?: number };
  'restart-unit': { unit: string };
  /** Journal tail: `journalctl -n lines [-u unit]`. */
  logs: { lines?: number; unit?: string };
  /** The controller has already set the image; the agent reboots when `reboot` is true. */
  'next-boot-image': { imageId: string; reboot?: boolean };
}

/** Agent → controller. */
export type AgentMessage =
  | {
      t: 'hello';
      v: number;
      node: string;
      bootId: string;
      imageId: string | null;
      version: string;
      stream: string;
      /** Where this agent's gossip member listens, as others should reach it. */
      gossip?: { addr: string; port: number };
    }
  | ({ t: 'hb' } & Sample)
  /** Replay of buffered samples, oldest first. */
  | { t: 'batch'; items: Sample[] }
  | { t: 'job-started'; job: string }
  | { t: 'job-output'; job: string; stream: 'stdout' | 'stderr'; data: string }
  | { t: 'job-result'; job: string; ok: boolean; exitCode?: number | null; error?: string; output?: string; durationMs: number }
  /** The agent's gossip view, sent when it changes (at most once a second) and after hello. */
  | { t: 'view'; members: ViewMember[] };

/** Controller → agent. */
export type ControllerMessage =
  | {
      t: 'welcome';
      /** How often to send `hb`. */
      heartbeatMs: number;
      /** Highest seq of this stream the controller has stored (0 when none). */
      ack: number;
      /** Gossip members to join through (device id, address, port); may be empty. */
      seeds: { node: string; addr: string; port: number }[];
    }
  | { t: 'ack'; seq: number }
  | { t: 'job'; job: string; kind: JobKind; params: JobParams[JobKind]; timeoutMs: number }
  | { t: 'error'; code: string; message: string };
