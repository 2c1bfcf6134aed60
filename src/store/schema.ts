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
}
