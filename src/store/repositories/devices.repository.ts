import { sql, type Kysely } from 'kysely';
import type { BootMode, DeviceState } from '../../domain/device.js';
import { DroverError } from '../../domain/errors.js';
import type { Device, Page } from '../../domain/records.js';
import type { Database, DevicesTable } from '../schema.js';
import { decodeCursor, encodeCursor, isUniqueViolation, likeEscape, parseJson } from './util.js';

export interface DeviceFilter {
  state?: DeviceState[] | undefined;
  groupId?: string | undefined;
  imageId?: string | undefined;
  labels?: Record<string, string> | undefined;
  /** Substring of serial, hostname, model or MAC. */
  q?: string | undefined;
}

export type NewDevice = Omit<Device, 'updatedAt' | 'settings'> & { settings?: Record<string, unknown> };

export type DevicePatch = Partial<
  Pick<Device, 'model' | 'boardRevision' | 'hostname' | 'groupId' | 'imageId' | 'bootMode' | 'state' | 'ipAddresses' | 'firstSeen' | 'lastSeen' | 'settings'>
> & { labels?: Record<string, string>; macs?: string[] };

export class DevicesRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async create(d: NewDevice): Promise<Device> {
    try {
      await this.db
        .insertInto('devices')
        .values({
          id: d.id,
          serial: d.serial,
          model: d.model,
          board_revision: d.boardRevision,
          hostname: d.hostname,
          group_id: d.groupId,
          image_id: d.imageId,
          boot_mode: d.bootMode,
          state: d.state,
          ip_addresses: JSON.stringify(d.ipAddresses),
          settings: JSON.stringify(d.settings ?? {}),
          first_seen: d.firstSeen,
          last_seen: d.lastSeen,
          created_at: d.createdAt,
          updated_at: d.createdAt,
        })
        .execute();
      if (d.macs.length) await this.db.insertInto('device_macs').values(d.macs.map((mac) => ({ mac, device_id: d.id }))).execute();
      const labels = Object.entries(d.labels);
      if (labels.length) {
        await this.db.insertInto('device_labels').values(labels.map(([key, value]) => ({ device_id: d.id, key, value }))).execute();
      }
    } catch (err) {
      if (isUniqueViolation(err)) throw new DroverError('DROVER_DEVICE_EXISTS', `A device with serial ${d.serial} or one of its MACs exists.`);
      throw err;
    }
    return (await this.get(d.id))!;
  }

  async get(id: string): Promise<Device | undefined> {
    const row = await this.db.selectFrom('devices').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? (await this.hydrate([row]))[0] : undefined;
  }

  async findBySerial(serial: string): Promise<Device | undefined> {
    const row = await this.db.selectFrom('devices').selectAll().where('serial', '=', serial).executeTakeFirst();
    return row ? (await this.hydrate([row]))[0] : undefined;
  }

  async findByMac(mac: string): Promise<Device | undefined> {
    const row = await this.db
      .selectFrom('device_macs')
      .innerJoin('devices', 'devices.id', 'device_macs.device_id')
      .selectAll('devices')
      .where('device_macs.mac', '=', mac)
      .executeTakeFirst();
    return row ? (await this.hydrate([row]))[0] : undefined;
  }

  async findByHostname(hostname: string): Promise<Device[]> {
    const rows = await this.db.selectFrom('devices').selectAll().where('hostname', '=', hostname).orderBy('id').execute();
    return this.hydrate(rows);
  }

  async list(filter: DeviceFilter, page: { limit: number; cursor?: string | undefined }): Promise<Page<Device>> {
    let q = this.db.selectFrom('devices');
    if (filter.state?.length) q = q.where('state', 'in', filter.state);
    if (filter.groupId) q = q.where('group_id', '=', filter.groupId);
    if (filter.imageId) q = q.where('image_id', '=', filter.imageId);
    for (const [key, value] of Object.entries(filter.labels ?? {})) {
      q = q.where(({ exists, selectFrom }) =>
        exists(
          selectFrom('device_labels')
            .select('device_labels.key')
            .whereRef('device_labels.device_id', '=', 'devices.id')
            .where('device_labels.key', '=', key)
            .where('device_labels.value', '=', value),
        ),
      );
    }
    if (filter.q) {
      const pattern = `%${likeEscape(filter.q.toLowerCase())}%`;
      const like = (col: string) => sql<boolean>`lower(${sql.ref(col)}) like ${pattern} escape '\\'`;
      q = q.where((eb) =>
        eb.or([
          like('devices.serial'),
          like('devices.hostname'),
          like('devices.model'),
          eb.exists(
            eb
              .selectFrom('device_macs')
              .select('device_macs.mac')
              .whereRef('device_macs.device_id', '=', 'devices.id')
              .where(sql<boolean>`device_macs.mac like ${pattern} escape '\\'`),
          ),
        ]),
      );
    }
    const totalRow = await q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst();
    let pageQ = q.selectAll('devices').orderBy('devices.id').limit(page.limit + 1);
    if (page.cursor) pageQ = pageQ.where('devices.id', '>', decodeCursor(page.cursor));
    const rows = await pageQ.execute();
    const more = rows.length > page.limit;
    const items = await this.hydrate(rows.slice(0, page.limit));
    return { items, nextCursor: more ? encodeCursor(items[items.length - 1]!.id) : null, total: Number(totalRow?.n ?? 0) };
  }

  async update(id: string, patch: DevicePatch, now: string): Promise<Device> {
    const set: Partial<DevicesTable> = { updated_at: now };
    if (patch.model !== undefined) set.model = patch.model;
    if (patch.boardRevision !== undefined) set.board_revision = patch.boardRevision;
    if (patch.hostname !== undefined) set.hostname = patch.hostname;
    if (patch.groupId !== undefined) set.group_id = patch.groupId;
    if (patch.imageId !== undefined) set.image_id = patch.imageId;
    if (patch.bootMode !== undefined) set.boot_mode = patch.bootMode;
    if (patch.state !== undefined) set.state = patch.state;
    if (patch.ipAddresses !== undefined) set.ip_addresses = JSON.stringify(patch.ipAddresses);
    if (patch.settings !== undefined) set.settings = JSON.stringify(patch.settings);
    if (patch.firstSeen !== undefined) set.first_seen = patch.firstSeen;
    if (patch.lastSeen !== undefined) set.last_seen = patch.lastSeen;
    try {
      const res = await this.db.updateTable('devices').set(set).where('id', '=', id).executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0) throw new DroverError('DROVER_DEVICE_NOT_FOUND');
      if (patch.labels) {
        await this.db.deleteFrom('device_labels').where('device_id', '=', id).execute();
        const labels = Object.entries(patch.labels);
        if (labels.length) {
          await this.db.insertInto('device_labels').values(labels.map(([key, value]) => ({ device_id: id, key, value }))).execute();
        }
      }
      if (patch.macs) {
        await this.db.deleteFrom('device_macs').where('device_id', '=', id).execute();
        if (patch.macs.length) await this.db.insertInto('device_macs').values(patch.macs.map((mac) => ({ mac, device_id: id }))).execute();
      }
    } catch (err) {
      if (isUniqueViolation(err)) throw new DroverError('DROVER_DEVICE_EXISTS', 'Another device already has one of these MAC addresses.');
      throw err;
    }
    return (await this.get(id))!;
  }

  async delete(id: string): Promise<boolean> {
    const res = await this.db.deleteFrom('devices').where('id', '=', id).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  async countByState(): Promise<Record<string, number>> {
    const rows = await this.db
      .selectFrom('devices')
      .select(['state', (eb) => eb.fn.countAll<number>().as('n')])
      .groupBy('state')
      .execute();
    return Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
  }

  /** Ids of (up to `limit`) devices assigned to an image. */
  async idsWithImage(imageId: string, limit: number): Promise<string[]> {
    const rows = await this.db.selectFrom('devices').select('id').where('image_id', '=', imageId).limit(limit).execute();
    return rows.map((r) => r.id);
  }

  async countInGroup(groupId: string): Promise<number> {
    const row = await this.db
      .selectFrom('devices')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('group_id', '=', groupId)
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  private async hydrate(rows: DevicesTable[]): Promise<Device[]> {
    if (rows.length === 0) return [];
    const ids = rows.map((r) => r.id);
    const [macs, labels] = await Promise.all([
      this.db.selectFrom('device_macs').selectAll().where('device_id', 'in', ids).orderBy('mac').execute(),
      this.db.selectFrom('device_labels').selectAll().where('device_id', 'in', ids).orderBy('key').execute(),
    ]);
    const macsOf = groupBy(macs, (m) => m.device_id);
    const labelsOf = groupBy(labels, (l) => l.device_id);
    return rows.map((r) => ({
      id: r.id,
      serial: r.serial,
      macs: (macsOf.get(r.id) ?? []).map((m) => m.mac),
      model: r.model,
      boardRevision: r.board_revision,
      hostname: r.hostname,
      labels: Object.fromEntries((labelsOf.get(r.id) ?? []).map((l) => [l.key, l.value])),
      groupId: r.group_id,
      imageId: r.image_id,
      bootMode: r.boot_mode as BootMode | null,
      state: r.state as DeviceState,
      ipAddresses: parseJson<string[]>(r.ip_addresses, []),
      settings: parseJson<Record<string, unknown>>(r.settings, {}),
      firstSeen: r.first_seen,
      lastSeen: r.last_seen,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    }));
  }
}

function groupBy<T>(items: T[], key: (t: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}
