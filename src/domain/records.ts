// The records Drover keeps, as the services and the API see them (camelCase, parsed JSON).
import type { BootMode, DeviceState } from './device.js';
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
  firstSeen: string | null;
  lastSeen: string | null;
  createdAt: string;
  updatedAt: string;
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
export type IngestPhase = 'receive' | 'decompress' | 'partitions' | 'boot-files' | 'rootfs' | 'initramfs' | 'store';

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
