// The power driver contract: every way of switching a Pi's power (a bakery PPI script, a smart
// plug, a USB hub port, a PoE switch port, a Turing Pi BMC, a Cluster HAT) answers these four calls.
import type { Logger } from 'pino';

export type PowerState = 'on' | 'off' | 'unknown';

/** What a driver knows about the device it switches; templates may use any of these. */
export interface PowerTarget {
  deviceId: string;
  serial: string;
  hostname: string | null;
}

export interface PowerDriver {
  /** The driver name from the config (`exec`, `http`, ...), for logs and messages. */
  readonly name: string;
  on(t: PowerTarget): Promise<void>;
  off(t: PowerTarget): Promise<void>;
  /** Off, wait, on, or the peer's own cycle where it has one (uhubctl). */
  cycle(t: PowerTarget): Promise<void>;
  /** 'unknown' when the peer cannot tell; a peer that cannot be reached is an error. */
  status(t: PowerTarget): Promise<PowerState>;
}

export interface PowerDriverOptions {
  logger?: Logger;
  /** Environment for the tools drivers run (PATH decides which uhubctl/snmpset is found). Default: process.env. */
  env?: NodeJS.ProcessEnv;
}

/** What createPowerDriver hands every driver, defaults filled in. */
export interface DriverContext {
  logger: Logger | undefined;
  env: NodeJS.ProcessEnv;
  /** Per action. */
  timeoutMs: number;
  /** How long a cycle keeps the power off. */
  cycleDelayMs: number;
}

export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_CYCLE_DELAY_MS = 3_000;
