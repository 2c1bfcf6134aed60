// Power drivers: one small interface (on | off | cycle | status), a strict config per driver and
// a registry by name. docs/power.md describes every driver's settings.
export type { PowerConfig, PowerDriverName } from './config.js';
export { mergePowerConfig } from './merge.js';
export { parsePowerConfig, POWER_DRIVERS, POWER_DRIVERS as DRIVERS } from './parse.js';
export { createPowerDriver } from './registry.js';
export type { PowerDriver, PowerDriverOptions, PowerState, PowerTarget } from './types.js';
