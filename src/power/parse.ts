// parsePowerConfig: the one gate a `power` setting passes before a driver is built from it. The
// driver name picks the schema (so errors name that driver's fields, not a union's), TypeBox
// checks shape and types, then the rules a schema cannot say (exactly one of community and
// communityFile, a URL for each http action, ...). Every refusal is DROVER_POWER_CONFIG with the
// field's path, e.g. "power.ifPort: is required for the snmp-poe driver".
import type { TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors';
import { Value } from '@sinclair/typebox/value';
import {
  POWER_SCHEMAS,
  type ExecPowerConfig,
  type PowerConfig,
  type PowerDriverName,
  type SnmpPoePowerConfig,
  type TpiPowerConfig,
} from './config.js';
import { resolveHttpConfig } from './drivers/http-requests.js';
import { configError } from './failures.js';
import { unknownPlaceholder } from './templates.js';

export const POWER_DRIVERS = Object.keys(POWER_SCHEMAS) as PowerDriverName[];

const checkers = Object.fromEntries(POWER_DRIVERS.map((name) => [name, TypeCompiler.Compile(POWER_SCHEMAS[name])])) as Record<PowerDriverName, TypeCheck<TSchema>>;

const isDriver = (name: string): name is PowerDriverName => (POWER_DRIVERS as string[]).includes(name);

function fieldOf(path: string): string {
  return path === '' ? 'power' : `power${path.split('/').join('.')}`;
}

function describe(e: ValueError, driver: PowerDriverName): string {
  if (e.type === ValueErrorType.ObjectRequiredProperty) return `is required for the ${driver} driver`;
  if (e.type === ValueErrorType.ObjectAdditionalProperties) return `is not a setting of the ${driver} driver (docs/power.md lists them)`;
  const options = (e.schema as { anyOf?: { const?: unknown }[] }).anyOf;
  if (options?.every((o) => o.const !== undefined)) return `must be one of ${options.map((o) => JSON.stringify(o.const)).join(', ')}`;
  return `${e.message.replace(/^Expected/, 'expected')} (got ${JSON.stringify(e.value)?.slice(0, 60) ?? 'nothing'})`;
}

const both = (a: unknown, b: unknown) => a !== undefined && b !== undefined;

function checkExec(cfg: ExecPowerConfig): void {
  if (cfg.piId !== undefined) {
    const bad = unknownPlaceholder(cfg.piId, ['serial', 'deviceId', 'hostname']);
    if (bad !== null) throw configError('power.piId', `unknown placeholder {{${bad}}}; use {{serial}}, {{deviceId}} or {{hostname}}`);
  }
}

function checkSnmp(cfg: SnmpPoePowerConfig): void {
  if (/^[^[]*:\d+$|\]:\d+$/.test(cfg.host)) throw configError('power.host', 'must not carry a port; put the UDP port into power.port');
  const v3Fields = ['user', 'authProtocol', 'authPassword', 'authPasswordFile', 'privProtocol', 'privPassword', 'privPasswordFile'] as const;
  if ((cfg.version ?? 'v2c') === 'v2c') {
    const v3 = v3Fields.find((k) => cfg[k] !== undefined);
    if (v3 !== undefined) throw configError(`power.${v3}`, 'is an SNMPv3 setting; set version to "v3"');
    if (both(cfg.community, cfg.communityFile)) throw configError('power.communityFile', 'give community or communityFile, not both');
    if (cfg.community === undefined && cfg.communityFile === undefined) throw configError('power.community', 'is required for SNMP v2c (or communityFile)');
    return;
  }
  if (cfg.community !== undefined || cfg.communityFile !== undefined) throw configError(cfg.community !== undefined ? 'power.community' : 'power.communityFile', 'is an SNMP v2c setting; SNMPv3 uses user and passwords');
  if (cfg.user === undefined) throw configError('power.user', 'is required for SNMPv3');
  if (both(cfg.authPassword, cfg.authPasswordFile)) throw configError('power.authPasswordFile', 'give authPassword or authPasswordFile, not both');
  if (both(cfg.privPassword, cfg.privPasswordFile)) throw configError('power.privPasswordFile', 'give privPassword or privPasswordFile, not both');
  const auth = cfg.authPassword !== undefined || cfg.authPasswordFile !== undefined;
  const priv = cfg.privPassword !== undefined || cfg.privPasswordFile !== undefined;
  if (priv && !auth) throw configError('power.authPassword', 'is required with a privacy password (SNMPv3 has no privacy without authentication)');
}

function checkTpi(cfg: TpiPowerConfig): void {
  const mode = cfg.mode ?? 'api';
  if (mode === 'api' && cfg.host === undefined) throw configError('power.host', 'is required in api mode (the BMC, e.g. turingpi.local)');
  if (mode === 'cli') {
    for (const k of ['scheme', 'caFile', 'insecureTls'] as const) if (cfg[k] !== undefined) throw configError(`power.${k}`, 'is only used in api mode');
  }
  if (mode === 'api' && cfg.binary !== undefined) throw configError('power.binary', 'is only used in cli mode');
  if (both(cfg.password, cfg.passwordFile)) throw configError('power.passwordFile', 'give password or passwordFile, not both');
  if ((cfg.password !== undefined || cfg.passwordFile !== undefined) && cfg.user === undefined) throw configError('power.user', 'is required with a password');
  if (cfg.caFile !== undefined && cfg.insecureTls === true) throw configError('power.insecureTls', 'give caFile or insecureTls, not both');
}

export function parsePowerConfig(raw: unknown): PowerConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw configError('power', 'must be an object such as {"driver":"exec","command":["/usr/local/bin/ppi"]}');
  }
  const driver: unknown = (raw as Record<string, unknown>).driver;
  if (typeof driver !== 'string' || !isDriver(driver)) {
    const got = driver === undefined ? 'it is missing' : `got ${JSON.stringify(driver)?.slice(0, 40)}`;
    throw configError('power.driver', `must be one of ${POWER_DRIVERS.join(', ')} (${got})`);
  }
  const first = checkers[driver].Errors(raw).First();
  if (first !== undefined) throw configError(fieldOf(first.path), describe(first, driver));

  const cfg = Value.Clone(raw) as PowerConfig;
  switch (cfg.driver) {
    case 'exec':
      checkExec(cfg);
      break;
    case 'http':
      resolveHttpConfig(cfg);
      break;
    case 'snmp-poe':
      checkSnmp(cfg);
      break;
    case 'tpi':
      checkTpi(cfg);
      break;
    case 'uhubctl':
    case 'clusterhat':
      break;
  }
  return cfg;
}
