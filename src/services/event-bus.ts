// In-process fan-out of committed changes to live streams (SSE). One controller process; with
// several replicas on PostgreSQL this becomes LISTEN/NOTIFY (see docs/architecture.md).
import { EventEmitter } from 'node:events';
import type { Metrics } from '../agent/protocol.js';
import type { Device, DeviceHealth, DroverEvent, Job } from '../domain/records.js';
import type { IngestJob } from './images.service.js';

// `progress`, `job-output` and `sample` are transient (never stored as events): long work
// reporting its phase, a job's output as it streams, a device's live metrics for charts.
export type BusMessage =
  | { kind: 'event'; event: DroverEvent }
  | { kind: 'device'; device: Device }
  | { kind: 'progress'; job: IngestJob }
  | { kind: 'health'; health: DeviceHealth }
  | { kind: 'job'; job: Job }
  | { kind: 'job-output'; jobId: string; deviceId: string; stream: 'stdout' | 'stderr'; data: string }
  | { kind: 'sample'; deviceId: string; ts: string; m: Metrics };

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
