// Table shapes as Kysely sees them. Both dialects store the same thing: text for ids, ISO time
// strings and JSON documents, integers for counters. JSON columns hold objects whose shape the
// repositories own.
import type { Generated } from 'kysely';

export interface DevicesTable {
  id: string;
  serial: string;
  model: string | null;
  board_revision: string | null;
  hostname: string | null;
  group_id: string | null;
  image_id: string | null;
  boot_mode: string | null;
  state: string;
  ip_addresses: string; // JSON string[]
  settings: string; // JSON object (per-device overrides, e.g. power)
  first_seen: string | null;
  last_seen: string | null;
  created_at: string;
  updated_at: string;
}

export interface DeviceMacsTable {
  mac: string;
  device_id: string;
}

export interface DeviceLabelsTable {
  device_id: string;
  key: string;
  value: string;
}

export interface GroupsTable {
  id: string;
  name: string;
  description: string;
  image_id: string | null;
  boot_mode: string | null;
  settings: string; // JSON object
  policy: string; // JSON object
  created_at: string;
  updated_at: string;
}

export interface ImagesTable {
  id: string;
  name: string;
  tag: string;
  sha256: string | null;
  status: string;
  kind: string;
  metadata: string; // JSON object
  created_at: string;
}

export interface TokensTable {
  id: string;
  name: string;
  role: string;
  hash: string;
  prefix: string;
  device_id: string | null;
  user_id: string | null;
  kind: string; // api | session | bootstrap
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface UsersTable {
  id: string;
  username: string;
  password_hash: string;
  role: string;
  disabled: number;
  created_at: string;
  updated_at: string;
}

export interface EventsTable {
  id: Generated<number>;
  time: string;
  type: string;
  device_id: string | null;
  actor: string | null;
  data: string; // JSON object
}

export interface DeviceHealthTable {
  device_id: string;
  health: string; // alive | suspect | dead | unknown
  phi: number | null;
  since: string | null;
  reason: string | null;
  last_heartbeat: string | null;
  agent_connected: number;
  agent_version: string | null;
  boot_id: string | null;
  reported_image_id: string | null;
  booted_at: string | null;
  stream: string | null;
  last_seq: number;
  gossip: string | null; // JSON {addr, port}
  remediation: string; // JSON RemediationState
  updated_at: string;
}

export interface MetricsTable {
  device_id: string;
  ts: string;
  seq: number;
  data: string; // JSON Metrics
}

export interface MetricsRollupTable {
  device_id: string;
  minute: string;
  n: number;
  data: string; // JSON MetricsRollup
}

export interface JobsTable {
  id: string;
  device_id: string;
  kind: string;
  params: string; // JSON
  state: string;
  actor: string | null;
  timeout_ms: number;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  exit_code: number | null;
  output: string | null;
  error: string | null;
}

export interface MetaTable {
  key: string;
  value: string;
}

export interface Database {
  devices: DevicesTable;
  device_macs: DeviceMacsTable;
  device_labels: DeviceLabelsTable;
  groups: GroupsTable;
  images: ImagesTable;
  tokens: TokensTable;
  users: UsersTable;
  events: EventsTable;
  meta: MetaTable;
  device_health: DeviceHealthTable;
  metrics: MetricsTable;
  metrics_rollup: MetricsRollupTable;
  jobs: JobsTable;
}
