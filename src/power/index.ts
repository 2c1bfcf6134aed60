// Power drivers: one small interface (on | off | cycle | status) and a registry by name.
import type { Logger } from 'pino';
import type { PowerConfig } from './config.js';
import { ClusterHatDriver, ExecDriver, HttpDriver, SnmpPoeDriver, TpiDriver, UhubctlDriver, type PowerDriver } from './drivers.js';

export { DRIVERS, mergePowerConfig, parsePowerConfig, type PowerConfig } from './config.js';
export type { PowerDriver, PowerState, PowerTarget } from './drivers.js';

export function createPowerDriver(cfg: PowerConfig, _opts: { logger?: Logger } = {}): PowerDriver {
  switch (cfg.driver) {
    case 'exec':
      return new ExecDriver(cfg);
    case 'http':
      return new HttpDriver(cfg);
    case 'uhubctl':
      return new UhubctlDriver(cfg);
    case 'snmp-poe':
      return new SnmpPoeDriver(cfg);
    case 'tpi':
      return new TpiDriver(cfg);
    case 'clusterhat':
      return new ClusterHatDriver(cfg);
  }
}
