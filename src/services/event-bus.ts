// In-process fan-out of committed changes to live streams (SSE). One controller process; with
// several replicas on PostgreSQL this becomes LISTEN/NOTIFY (see docs/architecture.md).
import { EventEmitter } from 'node:events';
import type { Device, DroverEvent } from '../domain/records.js';
import type { IngestJob } from './images.service.js';

// `progress` is transient (never stored): long work such as an image ingest reporting its phase.
export type BusMessage = { kind: 'event'; event: DroverEvent } | { kind: 'device'; device: Device } | { kind: 'progress'; job: IngestJob };

export class EventBus {
  private readonly emitter = new EventEmitter();

  constructor() {
    // Every open dashboard or `drover events --follow` is one listener.
    this.emitter.setMaxListeners(0);
  }

  publish(message: BusMessage): void {
    this.emitter.emit('message', message);
  }

  subscribe(listener: (m: BusMessage) => void): () => void {
    this.emitter.on('message', listener);
    return () => this.emitter.off('message', listener);
  }

  get listenerCount(): number {
    return this.emitter.listenerCount('message');
  }
}
