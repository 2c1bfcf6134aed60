// What every service needs: the store, the bus, a clock, and a way to write records and their
// events in one transaction, publishing them only after the commit.
import type { Device, DroverEvent } from '../domain/records.js';
import type { Clock } from '../domain/time.js';
import type { NewEvent } from '../store/repositories/events.repository.js';
import type { Repositories, Store } from '../store/store.js';
import type { EventBus } from './event-bus.js';

export interface ServiceContext {
  store: Store;
  bus: EventBus;
  clock: Clock;
  /** Where images, keys and generated trees live. */
  dataDir: string;
}

export interface Tx extends Repositories {
  /** Appends an event in this transaction; it is published once the transaction commits. */
  emit(e: Omit<NewEvent, 'time'> & { time?: string }): Promise<DroverEvent>;
  /** Publishes a device's new state to live streams after the commit. */
  changed(device: Device): void;
  now: string;
}

export async function inTransaction<T>(ctx: ServiceContext, fn: (tx: Tx) => Promise<T>): Promise<T> {
  const events: DroverEvent[] = [];
  const devices = new Map<string, Device>();
  const now = ctx.clock().toISOString();
  const result = await ctx.store.transaction(async (repos) => {
    const tx = Object.assign(Object.create(repos) as Repositories, {
      now,
      async emit(e: Omit<NewEvent, 'time'> & { time?: string }) {
        const event = await repos.events.append({ ...e, time: e.time ?? now });
        events.push(event);
        return event;
      },
      changed(device: Device) {
        devices.set(device.id, device);
      },
    }) as Tx;
    return fn(tx);
  });
  for (const device of devices.values()) ctx.bus.publish({ kind: 'device', device });
  for (const event of events) ctx.bus.publish({ kind: 'event', event });
  return result;
}
