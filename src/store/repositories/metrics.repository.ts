import { sql, type Kysely, type Selectable } from 'kysely';
import type { Metrics } from '../../agent/protocol.js';
import type { Database, MetricsTable } from '../schema.js';
import { parseJson } from './util.js';

export interface StoredSample {
  deviceId: string;
  ts: string;
  seq: number;
  m: Metrics;
}

/** One minute of one device: means (cpu = mean of cores, mem/disk used fraction), maxima for temp, throttled bits OR-ed. */
export interface MetricsRollup {
  cpu: number;
  cpuMax: number;
  load1: number;
  memUsed: number;
  diskUsed: number;
  temp: number | null;
  tempMax: number | null;
  throttled: number;
  rx: number;
  tx: number;
}

// Rows per INSERT: keeps PostgreSQL's parameter count (4 per row) well under its 65,535 limit
// and SQLite's statement size modest.
const CHUNK = 1000;

export class MetricsRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async insertMany(samples: StoredSample[]): Promise<void> {
    for (let i = 0; i < samples.length; i += CHUNK) {
      const rows = samples.slice(i, i + CHUNK).map((s) => ({ device_id: s.deviceId, ts: s.ts, seq: s.seq, data: JSON.stringify(s.m) }));
      await this.db.insertInto('metrics').values(rows).execute();
    }
  }

  /** Samples of one device in [from, to), oldest first. */
  async range(deviceId: string, from: string, to: string, limit = 5000): Promise<StoredSample[]> {
    const rows = await this.db
      .selectFrom('metrics')
      .selectAll()
      .where('device_id', '=', deviceId)
      .where('ts', '>=', from)
      .where('ts', '<', to)
      .orderBy('ts', 'asc')
      .limit(limit)
      .execute();
    return rows.map(toSample);
  }

  async latest(deviceId: string): Promise<StoredSample | undefined> {
    const r = await this.db.selectFrom('metrics').selectAll().where('device_id', '=', deviceId).orderBy('ts', 'desc').limit(1).executeTakeFirst();
    return r ? toSample(r) : undefined;
  }

  async upsertRollups(rows: { deviceId: string; minute: string; n: number; data: MetricsRollup }[]): Promise<void> {
    for (let i = 0; i < rows.length; i += CHUNK) {
      const chunk = rows.slice(i, i + CHUNK).map((r) => ({ device_id: r.deviceId, minute: r.minute, n: r.n, data: JSON.stringify(r.data) }));
      await this.db
        .insertInto('metrics_rollup')
        .values(chunk)
        .onConflict((oc) => oc.columns(['device_id', 'minute']).doUpdateSet({ n: sql`excluded.n`, data: sql`excluded.data` }))
        .execute();
    }
  }

  async rollups(deviceId: string, from: string, to: string): Promise<{ minute: string; n: number; data: MetricsRollup }[]> {
    const rows = await this.db
      .selectFrom('metrics_rollup')
      .selectAll()
      .where('device_id', '=', deviceId)
      .where('minute', '>=', from)
      .where('minute', '<', to)
      .orderBy('minute', 'asc')
      .limit(20_000)
      .execute();
    return rows.map((r) => ({ minute: r.minute, n: Number(r.n), data: parseJson<MetricsRollup>(r.data, {} as MetricsRollup) }));
  }

  /** Raw samples in [from, to) of every device, for rolling up a finished minute. */
  async samplesBetween(from: string, to: string): Promise<StoredSample[]> {
    const rows = await this.db.selectFrom('metrics').selectAll().where('ts', '>=', from).where('ts', '<', to).execute();
    return rows.map(toSample);
  }

  /** The oldest raw sample's time (null when there is none). */
  async oldest(): Promise<string | null> {
    const r = await this.db.selectFrom('metrics').select('ts').orderBy('ts', 'asc').limit(1).executeTakeFirst();
    return r?.ts ?? null;
  }

  async prune(rawBefore: string, rollupBefore: string): Promise<{ raw: number; rollups: number }> {
    const a = await this.db.deleteFrom('metrics').where('ts', '<', rawBefore).executeTakeFirst();
    const b = await this.db.deleteFrom('metrics_rollup').where('minute', '<', rollupBefore).executeTakeFirst();
    return { raw: Number(a.numDeletedRows), rollups: Number(b.numDeletedRows) };
  }
}

function toSample(r: Selectable<MetricsTable>): StoredSample {
  return { deviceId: r.device_id, ts: r.ts, seq: Number(r.seq), m: parseJson<Metrics>(r.data, {} as Metrics) };
}
