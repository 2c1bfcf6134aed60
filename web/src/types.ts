// The API's records as the dashboard sees them (see src/api/schemas.ts).

// One definition of the records for server and dashboard: the domain modules are pure TS.
export { ALLOWED_FROM as ACTIONS_FROM, DEVICE_STATES } from '../../src/domain/device.js';
export type { DeviceAction, DeviceState } from '../../src/domain/device.js';
export type { DroverEvent, Group, Image, IngestJob, Job, JobState, Page } from '../../src/domain/records.js';
export type { Metrics } from '../../src/agent/protocol.js';
import type { Device as DeviceRecord } from '../../src/domain/records.js';
import type { Health } from '../../src/domain/health.js';
export type { Health };
export { HEALTH_STATES } from '../../src/domain/health.js';

/** Agent and health facts as the API shows them (DeviceHealth in src/api/schemas.ts). */
export interface HealthView {
  health: Health;
  /** Suspicion of the heartbeat detector (phi accrual); suspect from 8 by default. */
  phi: number | null;
  since: string | null;
  reason: string | null;
  lastHeartbeat: string | null;
  agent: { connected: boolean; version: string | null; bootId: string | null; imageId: string | null; bootedAt: string | null };
  remediation: { step?: string; stepStartedAt?: string; reason?: string; failed?: boolean; stepsLastHour: number };
}

/** A device as the API lists it: the record, with its health once an agent has connected. */
export type Device = DeviceRecord & { health?: HealthView };

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
