// Power control of devices through their configured driver (docs/power.md): the group's
// `settings.power`, overridden key by key by the device's. Every action is an event with its
// outcome, so the remediation ladder's power cycles show in the device's history.
import type { Logger } from 'pino';
import { DroverError } from '../domain/errors.js';
import type { Device } from '../domain/records.js';
import { createPowerDriver, mergePowerConfig, type PowerState } from '../power/index.js';
import { inTransaction, type ServiceContext } from './context.js';
import { resolveDevice } from './devices.service.js';

export type PowerAction = 'on' | 'off' | 'cycle' | 'status';

export class PowerService {
  constructor(
    private readonly ctx: ServiceContext,
    private readonly logger?: Logger,
  ) {}

  /** Whether a power driver is configured for the device (directly or through its group). */
  async configured(device: Device): Promise<boolean> {
    try {
      return (await this.config(device)) !== null;
    } catch {
      return false;
    }
  }

  private async config(device: Device) {
    const group = device.groupId ? await this.ctx.store.groups.get(device.groupId) : undefined;
    return mergePowerConfig(group?.settings.power, device.settings.power);
  }

  async act(deviceRef: string | Device, action: PowerAction, actor: string, reason?: string): Promise<{ device: Device; action: PowerAction; state: PowerState | null; driver: string; ms: number }> {
    const device = typeof deviceRef === 'string' ? await resolveDevice(this.ctx.store, deviceRef) : deviceRef;
    const cfg = await this.config(device);
    if (!cfg) throw new DroverError('DROVER_POWER_NOT_CONFIGURED', `${device.hostname ?? device.serial} has no power driver: set settings.power on the device or its group.`);
    const driver = createPowerDriver(cfg, this.logger ? { logger: this.logger } : {});
    const target = { deviceId: device.id, serial: device.serial, hostname: device.hostname };
    const started = performance.now();
    let state: PowerState | null = null;
    try {
      if (action === 'status') state = await driver.status(target);
      else await driver[action](target);
    } catch (err) {
      const e = err instanceof DroverError ? err : new DroverError('DROVER_POWER_FAILED', (err as Error).message);
      if (action !== 'status') {
        await inTransaction(this.ctx, (tx) => tx.emit({ type: 'power.failed', deviceId: device.id, actor, data: { action, driver: driver.name, error: e.message.slice(0, 500), ...(reason ? { reason } : {}) } }));
      }
      this.logger?.warn({ device: device.id, action, driver: driver.name, err: e.message }, 'power action failed');
      throw e;
    }
    const ms = Math.round(performance.now() - started);
    if (action !== 'status') {
      await inTransaction(this.ctx, (tx) => tx.emit({ type: `power.${action}`, deviceId: device.id, actor, data: { driver: driver.name, ms, ...(reason ? { reason } : {}) } }));
      this.logger?.info({ device: device.id, action, driver: driver.name, ms }, 'power action');
    }
    return { device, action, state, driver: driver.name, ms };
  }
}
