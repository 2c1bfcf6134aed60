// Power driver settings: `settings.power` of a group, overridden key by key by a device's, and
// validated strictly so a typo is an error naming the field, not a silent no-op at 3 a.m.
import { DroverError } from '../domain/errors.js';

interface Common {
  /** Each action's time limit (ms). */
  timeoutMs?: number;
  /** Off → on pause of `cycle` (ms). */
  cycleDelayMs?: number;
}
export type PowerConfig =
  | (Common & { driver: 'exec'; command: string[]; piId?: string })
  | (Common & {
      driver: 'http';
      preset?: 'shelly-gen1' | 'shelly-gen2' | 'tasmota';
      host?: string;
      relay?: number;
      on?: string;
      off?: string;
      status?: string;
      method?: 'GET' | 'POST' | 'PUT';
      body?: string;
      headers?: Record<string, string>;
      expectBody?: string;
      onPattern?: string;
      offPattern?: string;
      port?: string;
    })
  | (Common & { driver: 'uhubctl'; location: string; port: number; binary?: string })
  | (Common & { driver: 'snmp-poe'; host: string; snmpPort?: number; community?: string; communityFile?: string; group?: number; port: number; binary?: string })
  | (Common & { driver: 'tpi'; node: number; mode?: 'api' | 'cli'; url?: string; username?: string; password?: string; insecure?: boolean; binary?: string })
  | (Common & { driver: 'clusterhat'; node: number; binary?: string });

export const DRIVERS = ['exec', 'http', 'uhubctl', 'snmp-poe', 'tpi', 'clusterhat'] as const;

type Kind = 'string' | 'number' | 'boolean' | 'strings' | 'headers';
const COMMON: Record<string, Kind> = { driver: 'string', timeoutMs: 'number', cycleDelayMs: 'number' };
const FIELDS: Record<(typeof DRIVERS)[number], { required: string[]; fields: Record<string, Kind> }> = {
  exec: { required: ['command'], fields: { command: 'strings', piId: 'string' } },
  http: {
    required: [],
    fields: { preset: 'string', host: 'string', relay: 'number', on: 'string', off: 'string', status: 'string', method: 'string', body: 'string', headers: 'headers', expectBody: 'string', onPattern: 'string', offPattern: 'string', port: 'string' },
  },
  uhubctl: { required: ['location', 'port'], fields: { location: 'string', port: 'number', binary: 'string' } },
  'snmp-poe': { required: ['host', 'port'], fields: { host: 'string', snmpPort: 'number', community: 'string', communityFile: 'string', group: 'number', port: 'number', binary: 'string' } },
  tpi: { required: ['node'], fields: { node: 'number', mode: 'string', url: 'string', username: 'string', password: 'string', insecure: 'boolean', binary: 'string' } },
  clusterhat: { required: ['node'], fields: { node: 'number', binary: 'string' } },
};

const bad = (message: string) => new DroverError('DROVER_POWER_CONFIG', message);

function checkKind(key: string, value: unknown, kind: Kind): void {
  const ok =
    kind === 'string' ? typeof value === 'string' && value.length > 0
    : kind === 'number' ? typeof value === 'number' && Number.isFinite(value) && value >= 0
    : kind === 'boolean' ? typeof value === 'boolean'
    : kind === 'strings' ? Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === 'string' && v.length > 0)
    : typeof value === 'object' && value !== null && !Array.isArray(value) && Object.values(value).every((v) => typeof v === 'string');
  if (!ok) throw bad(`power.${key} must be ${{ string: 'a non-empty string', number: 'a number ≥ 0', boolean: 'true or false', strings: 'a non-empty list of strings', headers: 'an object of header strings' }[kind]}.`);
}

export function parsePowerConfig(raw: unknown): PowerConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('power must be an object with a "driver".');
  const o = raw as Record<string, unknown>;
  if (typeof o.driver !== 'string' || !(DRIVERS as readonly string[]).includes(o.driver)) throw bad(`power.driver must be one of ${DRIVERS.join(', ')}.`);
  const spec = FIELDS[o.driver as (typeof DRIVERS)[number]];
  for (const [key, value] of Object.entries(o)) {
    const kind = COMMON[key] ?? spec.fields[key];
    if (!kind) throw bad(`power has no setting "${key}" for driver ${o.driver}.`);
    checkKind(key, value, kind);
  }
  for (const key of spec.required) if (o[key] === undefined) throw bad(`power.${key} is required for driver ${o.driver}.`);
  if (o.driver === 'http') {
    if (o.preset !== undefined && !['shelly-gen1', 'shelly-gen2', 'tasmota'].includes(o.preset as string)) throw bad('power.preset must be shelly-gen1, shelly-gen2 or tasmota.');
    if (o.preset !== undefined && o.host === undefined) throw bad('power.host is required with a preset.');
    if (o.preset === undefined && (o.on === undefined || o.off === undefined)) throw bad('power.on and power.off (URL templates) are required without a preset.');
    if (o.method !== undefined && !['GET', 'POST', 'PUT'].includes(o.method as string)) throw bad('power.method must be GET, POST or PUT.');
    for (const k of ['expectBody', 'onPattern', 'offPattern']) {
      if (typeof o[k] === 'string') {
        try {
          new RegExp(o[k] as string);
        } catch {
          throw bad(`power.${k} is not a valid regular expression.`);
        }
      }
    }
  }
  if (o.driver === 'tpi' && o.mode !== undefined && o.mode !== 'api' && o.mode !== 'cli') throw bad('power.mode must be api or cli.');
  if (o.driver === 'tpi' && (o.mode ?? 'api') === 'api' && o.url === undefined) throw bad('power.url (the BMC, e.g. https://turingpi.local) is required in api mode.');
  return o as unknown as PowerConfig;
}

/** The device's keys win over the group's; null when neither configures power. */
export function mergePowerConfig(group: unknown, device: unknown): PowerConfig | null {
  const g = isObject(group) ? group : {};
  const d = isObject(device) ? device : {};
  if (Object.keys(g).length === 0 && Object.keys(d).length === 0) return null;
  // A device naming another driver does not inherit the group's driver-specific keys.
  const merged = d.driver !== undefined && d.driver !== g.driver ? { ...d } : { ...g, ...d };
  return parsePowerConfig(merged);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
