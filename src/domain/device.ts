// Device identity rules and the lifecycle state machine. Pure: no I/O.
import { DroverError } from './errors.js';

export const DEVICE_STATES = ['incoming', 'accepted', 'booting', 'running', 'suspect', 'failed', 'retired'] as const;
export type DeviceState = (typeof DEVICE_STATES)[number];

export const BOOT_MODES = ['ramroot', 'nfs', 'sdstub', 'http'] as const;
export type BootMode = (typeof BOOT_MODES)[number];

export type DeviceAction = 'accept' | 'reject' | 'retire';

// Which states an operator action may start from. Health and netboot drive the other states.
export const ALLOWED_FROM: Record<DeviceAction, readonly DeviceState[]> = {
  accept: ['incoming', 'retired'],
  reject: ['incoming'],
  retire: ['incoming', 'accepted', 'booting', 'running', 'suspect', 'failed'],
};

const TARGET: Record<DeviceAction, DeviceState> = { accept: 'accepted', reject: 'retired', retire: 'retired' };

export function transition(current: DeviceState, action: DeviceAction): DeviceState {
  if (!ALLOWED_FROM[action].includes(current)) {
    throw new DroverError(
      'DROVER_DEVICE_INVALID_TRANSITION',
      `Cannot ${action} a device that is ${current}; allowed from: ${ALLOWED_FROM[action].join(', ')}.`,
      { state: current, action },
    );
  }
  return TARGET[action];
}

/**
 * Pi serials appear as 16 hex digits in /proc/cpuinfo and as the last 8 in the TFTP prefix
 * (a leading 10000000 is dropped). Drover keys devices by the 8-digit lowercase form.
 */
export function normalizeSerial(input: string): string {
  const s = input.trim().toLowerCase().replace(/^0x/, '');
  if (!/^[0-9a-f]{8}$|^[0-9a-f]{16}$/.test(s)) {
    throw new DroverError('DROVER_INVALID_SERIAL', `"${truncate(input)}" is not a Pi serial (8 or 16 hex digits).`);
  }
  return s.length === 16 ? s.slice(8) : s;
}

export function normalizeMac(input: string): string {
  const hex = input.trim().toLowerCase().replace(/[:\-.]/g, '');
  if (!/^[0-9a-f]{12}$/.test(hex)) {
    throw new DroverError('DROVER_INVALID_MAC', `"${truncate(input)}" is not a MAC address.`);
  }
  return hex.match(/../g)!.join(':');
}

const LABEL_KEY = /^[a-z0-9][a-z0-9._\-/]{0,62}$/;

export function validateLabels(labels: Record<string, string | null>): void {
  for (const [key, value] of Object.entries(labels)) {
    if (!LABEL_KEY.test(key)) {
      throw new DroverError('DROVER_INVALID_LABEL', `Label key "${truncate(key)}" is not valid.`);
    }
    if (value !== null && (value.length > 253 || /[\u0000-\u001f\u007f]/.test(value))) {
      throw new DroverError('DROVER_INVALID_LABEL', `Label "${key}" has a value that is too long or has control characters.`);
    }
  }
}

export function validateHostname(name: string): string {
  const h = name.trim().toLowerCase();
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(h)) {
    throw new DroverError('DROVER_INVALID_HOSTNAME', `"${truncate(name)}" is not a valid hostname.`);
  }
  return h;
}

/** Applies a JSON-merge-patch style label change: null deletes a key. */
export function mergeLabels(current: Record<string, string>, patch: Record<string, string | null>): Record<string, string> {
  const next = { ...current };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete next[k];
    else next[k] = v;
  }
  return next;
}

function truncate(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}
