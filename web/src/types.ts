// The API's records as the dashboard sees them (see src/api/schemas.ts).

// One definition of the records for server and dashboard: the domain modules are pure TS.
export { ALLOWED_FROM as ACTIONS_FROM, DEVICE_STATES } from '../../src/domain/device.js';
export type { DeviceAction, DeviceState } from '../../src/domain/device.js';
export type { Device, DroverEvent, Group, Image, IngestJob, Page } from '../../src/domain/records.js';

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
