// The records Drover keeps, as the services and the API see them (camelCase, parsed JSON).
import type { BootMode, DeviceState } from './device.js';
import type { Health, RemediationState } from './health.js';
import type { JobKind } from '../agent/protocol.js';
import type { Role } from './roles.js';

export interface Device {
  id: string;
  serial: string;
  macs: string[];
  model: string | null;
  boardRevision: string | null;
  hostname: string | null;
  labels: Record<string, string>;
  groupId: string | null;
  imageId: string | null;
  bootMode: BootMode | null;
  state: DeviceState;
  ipAddresses: string[];
  /** Per-device overrides of the group's settings (e.g. `power`). */
  settings: Record<string, unknown>;
  firstSeen: string | null;
  lastSeen: string | null;
  createdAt: string;
  updatedAt: string;
}

/** What the controller knows about a device's agent and health (device_health). */
export interface DeviceHealth {
  deviceId: string;
  health: Health;
  /** phi of the heartbeat detector when it was last stored. */
  phi: number | null;
  /** When `health` last changed, and why. */
  since: string | null;
  reason: string | null;
  lastHeartbeat: string | null;
  agent: { connected: boolean; version: string | null; bootId: string | null; imageId: string | null; bootedAt: string | null };
  stream: string | null;
  lastSeq: number;
  gossip: { addr: string; port: number } | null;
  remediation: RemediationState;
  updatedAt: string;
}

export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'timeout' | 'lost';

export interface Job {
  id: string;
  deviceId: string;
  kind: JobKind;
  params: Record<string, unknown>;
  state: JobState;
  actor: string | null;
  timeoutMs: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  exitCode: number | null;
  /** The output's tail (64 KiB at most). */
  output: string | null;
  error: string | null;
}

export interface GroupPolicy {
  /** Devices that netboot and would land in this group are accepted without a person. */
  autoAccept?: boolean;
  [key: string]: unknown;
}

export interface Group {
  id: string;
  name: string;
  description: string;
  imageId: string | null;
  bootMode: BootMode | null;
  settings: Record<string, unknown>;
  policy: GroupPolicy;
  createdAt: string;
  updatedAt: string;
}

export interface Image {
  id: string;
  name: string;
  tag: string;
  sha256: string | null;
  status: 'ready' | 'pending' | 'failed';
  kind: string;
  metadata: Record<string, unknown>;
  createdAt: string;
}

export type TokenKind = 'api' | 'session' | 'bootstrap' | 'device-boot';

export interface Token {
  id: string;
  name: string;
  role: Role;
  prefix: string;
  deviceId: string | null;
  userId: string | null;
  kind: TokenKind;
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

export interface User {
  id: string;
  username: string;
  role: Exclude<Role, 'device'>;
  disabled: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface DroverEvent {
  id: number;
  time: string;
  type: string;
  deviceId: string | null;
  actor: string | null;
  data: Record<string, unknown>;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
  total?: number;
}

/** Phases of an OS image ingest, in order (`queued` before it starts). */
export type IngestPhase = 'receive' | 'decompress' | 'partitions' | 'boot-files' | 'rootfs' | 'initramfs' | 'runtime' | 'store';

/** An OS image ingest while it runs and shortly after: its phase, progress and outcome. */
export interface IngestJob {
  id: string;
  name: string;
  tag: string;
  source: string;
  status: 'running' | 'done' | 'failed';
  phase: IngestPhase | 'queued';
  done: number;
  total: number | null;
  startedAt: string;
  finishedAt: string | null;
  imageId: string | null;
  error: { code: string; message: string } | null;
}
