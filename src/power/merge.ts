// A device's power settings override its group's key by key: a group of Pis on one PoE switch
// sets driver, host and community once and each device adds its ifPort. Top-level keys only (a
// device's `headers` replaces the group's whole object, which keeps the result predictable); a
// null value drops the group's key. A device naming a different driver starts afresh, since the
// group's keys would be unknown settings for it. Only the merged result is validated: a group's
// part alone is usually incomplete.
import type { PowerConfig } from './config.js';
import { configError } from './failures.js';
import { parsePowerConfig } from './parse.js';

type Settings = Record<string, unknown>;

function asSettings(value: unknown, owner: 'group' | 'device'): Settings | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw configError('power', `the ${owner}'s power setting must be an object, not ${Array.isArray(value) ? 'an array' : typeof value}`);
  return value as Settings;
}

export function mergePowerConfig(group: unknown, device: unknown): PowerConfig | null {
  const g = asSettings(group, 'group');
  const d = asSettings(device, 'device');
  if (g === undefined && d === undefined) return null;
  const startAfresh = d?.driver !== undefined && g?.driver !== undefined && d.driver !== g.driver;
  const merged: Settings = { ...(startAfresh ? {} : g), ...d };
  for (const [k, v] of Object.entries(merged)) if (v === null) delete merged[k];
  if (Object.keys(merged).length === 0) return null;
  return parsePowerConfig(merged);
}
