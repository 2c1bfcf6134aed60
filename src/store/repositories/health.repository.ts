import { sql, type Kysely, type Selectable } from 'kysely';
import type { Health, RemediationState } from '../../domain/health.js';
import type { DeviceHealth } from '../../domain/records.js';
import type { Database, DeviceHealthTable } from '../schema.js';
import { parseJson } from './util.js';

export type HealthPatch = Partial<Omit<DeviceHealth, 'deviceId' | 'updatedAt' | 'agent'>> & {
  agent?: Partial<DeviceHealth['agent']>;
};

const TOUCH_CHUNK = 500;

export class HealthRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async get(deviceId: string): Promise<DeviceHealth | undefined> {
    const row = await this.db.selectFrom('device_health').selectAll().where('device_id', '=', deviceId).executeTakeFirst();
    return row ? toHealth(row) : undefined;
  }

  async getMany(deviceIds: string[]): Promise<Map<string, DeviceHealth>> {
    const out = new Map<string, DeviceHealth>();
    for (let i = 0; i < deviceIds.length; i += 500) {
      const rows = await this.db.selectFrom('device_health').selectAll().where('device_id', 'in', deviceIds.slice(i, i + 500)).execute();
      for (const r of rows) out.set(r.device_id, toHealth(r));
    }
    return out;
  }

  /** Every row (the health service loads them once at start). */
  async all(): Promise<DeviceHealth[]> {
    return (await this.db.selectFrom('device_health').selectAll().execute()).map(toHealth);
  }

  async countByHealth(): Promise<Record<string, number>> {
    const rows = await this.db
      .selectFrom('device_health')
      .select(['health', (eb) => eb.fn.countAll<number>().as('n')])
      .groupBy('health')
      .execute();
    return Object.fromEntries(rows.map((r) => [r.health, Number(r.n)]));
  }

  /** Creates the row on first use, then applies the patch. */
  async upsert(deviceId: string, patch: HealthPatch, now: string): Promise<DeviceHealth> {
    const set = toRow(patch);
    set.updated_at = now;
    const res = await this.db.updateTable('device_health').set(set).where('device_id', '=', deviceId).executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) {
      await this.db
        .insertInto('device_health')
        .values({ device_id: deviceId, health: 'unknown', agent_connected: 0, last_seq: 0, remediation: '{}', ...set, updated_at: now })
        .onConflict((oc) => oc.column('device_id').doUpdateSet(set))
        .execute();
    }
    return (await this.get(deviceId))!;
  }

  /** Many small updates (heartbeat time, phi, seq) in one statement each, inside the caller's transaction. */
  /**
   * Last heartbeat and stored seq of many devices (one ingest flush): one UPDATE … FROM a VALUES
   * list per chunk, not one statement (a PostgreSQL round trip) per device.
   */
  async touchMany(rows: { deviceId: string; lastHeartbeat: string; lastSeq: number }[], now: string): Promise<void> {
    for (let i = 0; i < rows.length; i += TOUCH_CHUNK) {
      const values = sql.join(rows.slice(i, i + TOUCH_CHUNK).map((r) => sql`(${r.deviceId}, ${r.lastHeartbeat}, CAST(${r.lastSeq} AS INTEGER))`));
      // UPDATE … FROM: SQLite 3.33+ and PostgreSQL; the CTE names the columns for both.
      await sql`WITH v(id, hb, seq) AS (VALUES ${values})
        UPDATE device_health SET last_heartbeat = v.hb, last_seq = v.seq, updated_at = ${now}
        FROM v WHERE device_health.device_id = v.id`.execute(this.db);
    }
  }
}

function toRow(p: HealthPatch): Partial<DeviceHealthTable> {
  const set: Partial<DeviceHealthTable> = {};
  if (p.health !== undefined) set.health = p.health;
  if (p.phi !== undefined) set.phi = p.phi;
  if (p.since !== undefined) set.since = p.since;
  if (p.reason !== undefined) set.reason = p.reason;
  if (p.lastHeartbeat !== undefined) set.last_heartbeat = p.lastHeartbeat;
  if (p.stream !== undefined) set.stream = p.stream;
  if (p.lastSeq !== undefined) set.last_seq = p.lastSeq;
  if (p.gossip !== undefined) set.gossip = p.gossip ? JSON.stringify(p.gossip) : null;
  if (p.remediation !== undefined) set.remediation = JSON.stringify(p.remediation);
  if (p.agent) {
    if (p.agent.connected !== undefined) set.agent_connected = p.agent.connected ? 1 : 0;
    if (p.agent.version !== undefined) set.agent_version = p.agent.version;
    if (p.agent.bootId !== undefined) set.boot_id = p.agent.bootId;
    if (p.agent.imageId !== undefined) set.reported_image_id = p.agent.imageId;
    if (p.agent.bootedAt !== undefined) set.booted_at = p.agent.bootedAt;
  }
  return set;
}

function toHealth(r: Selectable<DeviceHealthTable>): DeviceHealth {
  return {
    deviceId: r.device_id,
    health: r.health as Health,
    phi: r.phi === null ? null : Number(r.phi),
    since: r.since,
    reason: r.reason,
    lastHeartbeat: r.last_heartbeat,
    agent: { connected: Number(r.agent_connected) === 1, version: r.agent_version, bootId: r.boot_id, imageId: r.reported_image_id, bootedAt: r.booted_at },
    stream: r.stream,
    lastSeq: Number(r.last_seq),
    gossip: r.gossip ? parseJson<{ addr: string; port: number } | null>(r.gossip, null) : null,
    remediation: parseJson<RemediationState>(r.remediation, {}),
    updatedAt: r.updated_at,
  };
}
