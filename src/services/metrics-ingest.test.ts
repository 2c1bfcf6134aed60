// Ingest: samples are stored once (replays and duplicates are acked, not stored twice), acks
// come only after the commit, a device clock stuck in 1970 is stamped on arrival, and closed
// minutes become rollups.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Metrics } from '../agent/protocol.js';
import { newId } from '../domain/ids.js';
import { Store } from '../store/store.js';
import { EventBus } from './event-bus.js';
import { MetricsIngest } from './metrics-ingest.js';

const m = (cpu: number, temp?: number): Metrics => ({ cpu: [cpu, cpu], load: [1, 1, 1], mem: [1000, 250], disk: [100, 50], net: [1, 2], uptime: 5, ...(temp !== undefined ? { temp } : {}) });

describe('MetricsIngest', () => {
  const dir = mkdtempSync(join(tmpdir(), 'drover-ingest-'));
  let store: Store;
  let now = new Date('2026-11-21T10:00:30.000Z');
  const ctx = () => ({ store, bus: new EventBus(), clock: () => now, dataDir: dir });
  let deviceId = '';
  before(async () => {
    store = await Store.open(join(dir, 'drover.db'));
    deviceId = newId('dev');
    await store.devices.create({ id: deviceId, serial: '12345678', macs: [], model: null, boardRevision: null, hostname: 'pi1', labels: {}, groupId: null, imageId: null, bootMode: null, state: 'running', ipAddresses: [], firstSeen: null, lastSeen: null, createdAt: now.toISOString() });
    await store.health.upsert(deviceId, { stream: 's1' }, now.toISOString());
  });
  after(async () => {
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores each seq once, acks after the commit, ignores replays', async () => {
    const ingest = new MetricsIngest(ctx(), { flushMs: 10, maxBatch: 1000, rawRetentionHours: 3, rollupRetentionDays: 30 });
    const acks: number[] = [];
    const t = now.getTime();
    ingest.push(deviceId, 's1', [1, 2, 3].map((seq) => ({ seq, ts: t - (4 - seq) * 1000, m: m(0.5) })), (s) => acks.push(s));
    assert.equal(acks.length, 0, 'no ack before the commit');
    await ingest.flush();
    assert.deepEqual(acks, [3]);
    ingest.push(deviceId, 's1', [2, 3, 4].map((seq) => ({ seq, ts: t, m: m(0.5) })), (s) => acks.push(s));
    await ingest.flush();
    assert.deepEqual(acks, [3, 4]);
    ingest.push(deviceId, 's1', [{ seq: 4, ts: t, m: m(0.5) }], (s) => acks.push(s));
    assert.deepEqual(acks, [3, 4, 4], 'an all-duplicate push is acked at once');
    const rows = await store.metrics.range(deviceId, '2026-01-01', '2027-01-01');
    assert.deepEqual(rows.map((r) => r.seq), [1, 2, 3, 4]);
    assert.equal((await store.health.get(deviceId))!.lastSeq, 4);
    assert.equal(ingest.stats.duplicates, 3);
    await ingest.close();
  });

  it('a new stream starts its own sequence; a clock in 1970 is stamped on arrival', async () => {
    const ingest = new MetricsIngest(ctx(), { flushMs: 10, maxBatch: 1000, rawRetentionHours: 3, rollupRetentionDays: 30 });
    ingest.push(deviceId, 's2', [{ seq: 1, ts: 5000, m: m(0.1) }], () => undefined);
    await ingest.flush();
    const latest = await store.metrics.latest(deviceId);
    assert.equal(latest!.ts, now.toISOString());
    await ingest.close();
  });

  it('writes the rollup of a minute once it has closed', async () => {
    const ingest = new MetricsIngest(ctx(), { flushMs: 10, maxBatch: 1000, rawRetentionHours: 3, rollupRetentionDays: 30 });
    now = new Date('2026-11-21T10:05:10.000Z');
    ingest.push(deviceId, 's3', [{ seq: 1, ts: now.getTime(), m: m(0.2, 40) }, { seq: 2, ts: now.getTime() + 1000, m: m(0.4, 50) }], () => undefined);
    await ingest.flush();
    assert.equal((await store.metrics.rollups(deviceId, '2026-11-21T10:05', '2026-11-21T10:06')).length, 0, 'the minute is still open');
    now = new Date('2026-11-21T10:06:01.000Z');
    ingest.push(deviceId, 's3', [{ seq: 3, ts: now.getTime(), m: m(0.9) }], () => undefined);
    await ingest.settled(); // rollups are written after the batch's acks
    const [r] = await store.metrics.rollups(deviceId, '2026-11-21T10:05', '2026-11-21T10:06');
    assert.equal(r!.n, 2);
    assert.equal(r!.data.cpu, 0.3);
    assert.equal(r!.data.tempMax, 50);
    assert.equal(r!.data.memUsed, 0.75);
    await ingest.close();
    assert.equal((await store.metrics.rollups(deviceId, '2026-11-21T10:06', '2026-11-21T10:07')).length, 1, 'close writes the open minute');
  });

  it('prunes raw samples past retention in slices, oldest first, and keeps the rest', async () => {
    now = new Date('2026-11-21T20:00:00.000Z');
    const ingest = new MetricsIngest(ctx(), { flushMs: 10, maxBatch: 1000, rawRetentionHours: 3, rollupRetentionDays: 30 });
    const cut = now.getTime() - 3 * 3600_000;
    // 95 s of samples before the cut (ten slices) and 5 after it
    const old = Array.from({ length: 100 }, (_, i) => ({ deviceId, ts: new Date(cut - 95_000 + i * 1000).toISOString(), seq: 10_000 + i, m: m(0.1) }));
    await store.metrics.insertMany(old);
    ingest.push(deviceId, 's9', [{ seq: 1, ts: now.getTime(), m: m(0.2) }], () => undefined);
    await ingest.settled();
    const left = await store.metrics.range(deviceId, '2026-01-01', '2027-01-01', 100_000);
    assert.equal(left.filter((r) => r.seq >= 10_000).length, 5, 'the five samples younger than 3 h stay');
    assert.ok(left.every((r) => r.ts >= new Date(cut).toISOString()));
    await ingest.close();
  });
});
