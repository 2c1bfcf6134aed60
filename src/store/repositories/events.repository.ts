import type { Kysely, Selectable } from 'kysely';
import type { DroverEvent, Page } from '../../domain/records.js';
import type { Database, EventsTable } from '../schema.js';
import { decodeCursor, encodeCursor, parseJson } from './util.js';

export interface EventFilter {
  deviceId?: string | undefined;
  /** Exact type, or a prefix ending in `.*` (e.g. `device.*`). */
  type?: string | undefined;
  since?: string | undefined;
  until?: string | undefined;
}

export type NewEvent = Omit<DroverEvent, 'id'>;

export class EventsRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async append(e: NewEvent): Promise<DroverEvent> {
    const row = await this.db
      .insertInto('events')
      .values({ time: e.time, type: e.type, device_id: e.deviceId, actor: e.actor, data: JSON.stringify(e.data) })
      .returning('id')
      .executeTakeFirstOrThrow();
    return { ...e, id: Number(row.id) };
  }

  /** Newest first; the cursor continues to older events. */
  async list(filter: EventFilter, page: { limit: number; cursor?: string | undefined }): Promise<Page<DroverEvent>> {
    let q = this.db.selectFrom('events').selectAll();
    if (filter.deviceId) q = q.where('device_id', '=', filter.deviceId);
    if (filter.type) {
      q = filter.type.endsWith('.*')
        ? // the API restricts types to [a-z0-9.-], so the prefix holds no LIKE wildcards
          q.where('type', 'like', `${filter.type.slice(0, -1)}%`)
        : q.where('type', '=', filter.type);
    }
    if (filter.since) q = q.where('time', '>=', filter.since);
    if (filter.until) q = q.where('time', '<', filter.until);
    if (page.cursor) {
      const before = Number(decodeCursor(page.cursor));
      q = q.where('id', '<', Number.isFinite(before) ? before : 0);
    }
    const rows = await q.orderBy('id', 'desc').limit(page.limit + 1).execute();
    const more = rows.length > page.limit;
    const items = rows.slice(0, page.limit).map(toEvent);
    return { items, nextCursor: more ? encodeCursor(items[items.length - 1]!.id) : null };
  }

  /** Oldest first, strictly after an id: what a reconnecting stream missed. */
  async after(id: number, limit: number, deviceId?: string): Promise<DroverEvent[]> {
    let q = this.db.selectFrom('events').selectAll().where('id', '>', id);
    if (deviceId) q = q.where('device_id', '=', deviceId);
    return (await q.orderBy('id', 'asc').limit(limit).execute()).map(toEvent);
  }
}

function toEvent(r: Selectable<EventsTable>): DroverEvent {
  return { id: Number(r.id), time: r.time, type: r.type, deviceId: r.device_id, actor: r.actor, data: parseJson(r.data, {}) };
}
