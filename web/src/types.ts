// The API's records as the dashboard sees them (see src/api/schemas.ts).

export const DEVICE_STATES = ['incoming', 'accepted', 'booting', 'running', 'suspect', 'failed', 'retired'] as const;
export type DeviceState = (typeof DEVICE_STATES)[number];

export type DeviceAction = 'accept' | 'reject' | 'retire';

/** Which states an operator action may start from (mirrors src/domain/device.ts). */
export const ACTIONS_FROM: Record<DeviceAction, readonly DeviceState[]> = {
  accept: ['incoming', 'retired'],
  reject: ['incoming'],
  retire: ['incoming', 'accepted', 'booting', 'running', 'suspect', 'failed'],
};

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
  bootMode: string | null;
  state: DeviceState;
  ipAddresses: string[];
  firstSeen: string | null;
  lastSeen: string | null;
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

export interface Group {
  id: string;
  name: string;
  description: string;
  imageId: string | null;
  bootMode: string | null;
  settings: Record<string, unknown>;
  policy: Record<string, unknown>;
}

export interface Image {
  id: string;
  name: string;
  tag: string;
  sha256: string | null;
  status: string;
  kind: string;
  createdAt: string;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
  total?: number;
}

export interface Me {
  tokenId: string;
  name: string;
  role: 'admin' | 'operator' | 'viewer' | 'device';
  deviceId: string | null;
  userId: string | null;
}

export interface LoginReply {
  token: string;
  expiresAt: string;
  user: { id: string; username: string; role: 'admin' | 'operator' | 'viewer' };
}
