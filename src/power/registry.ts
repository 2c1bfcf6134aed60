// createPowerDriver: the registry from a parsed config to its driver, with the shared defaults
// (10 s per action, 3 s off in a cycle) filled in once here rather than in every driver.
import type { PowerConfig } from './config.js';
import { ClusterhatDriver } from './drivers/clusterhat.js';
import { ExecDriver } from './drivers/exec.js';
import { HttpDriver } from './drivers/http.js';
import { SnmpPoeDriver } from './drivers/snmp-poe.js';
import { TpiDriver } from './drivers/tpi.js';
import { UhubctlDriver } from './drivers/uhubctl.js';
import { DEFAULT_CYCLE_DELAY_MS, DEFAULT_TIMEOUT_MS, type DriverContext, type PowerDriver, type PowerDriverOptions } from './types.js';

export function createPowerDriver(cfg: PowerConfig, opts: PowerDriverOptions = {}): PowerDriver {
  const ctx: DriverContext = {
    logger: opts.logger,
    env: opts.env ?? process.env,
    timeoutMs: cfg.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    cycleDelayMs: cfg.cycleDelayMs ?? DEFAULT_CYCLE_DELAY_MS,
  };
  switch (cfg.driver) {
    case 'exec':
      return new ExecDriver(cfg, ctx);
    case 'http':
      return new HttpDriver(cfg, ctx);
    case 'uhubctl':
      return new UhubctlDriver(cfg, ctx);
    case 'snmp-poe':
      return new SnmpPoeDriver(cfg, ctx);
    case 'tpi':
      return new TpiDriver(cfg, ctx);
    case 'clusterhat':
      return new ClusterhatDriver(cfg, ctx);
  }
}
