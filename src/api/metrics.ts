// Prometheus metrics: fleet gauges read from the store at scrape time, request metrics from hooks.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { DEVICE_STATES } from '../domain/device.js';
import type { Store } from '../store/store.js';

export interface ApiMetrics {
  registry: Registry;
  requests: Histogram<'method' | 'route' | 'status_code'>;
  authFailures: Counter<'reason'>;
  streamClients: Gauge;
}

export function createMetrics(store: Store): ApiMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'drover_' });
  // prom-client names these gauges *_total, which Prometheus reserves for counters (promtool
  // flags them); they add little for a controller, so leave them out.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
    registry.removeSingleMetric(`drover_${name}`);
  }
  new Gauge({
    name: 'drover_devices',
    help: 'Devices by lifecycle state.',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const counts = await store.devices.countByState();
      for (const s of DEVICE_STATES) this.set({ state: s }, counts[s] ?? 0);
    },
  });
  return {
    registry,
    requests: new Histogram({
      name: 'drover_http_request_duration_seconds',
      help: 'HTTP request latency by method, route pattern and status code.',
      labelNames: ['method', 'route', 'status_code'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    authFailures: new Counter({
      name: 'drover_auth_failures_total',
      help: 'Rejected authentication attempts by reason.',
      labelNames: ['reason'],
      registers: [registry],
    }),
    streamClients: new Gauge({ name: 'drover_event_stream_clients', help: 'Open live event streams.', registers: [registry] }),
  };
}
