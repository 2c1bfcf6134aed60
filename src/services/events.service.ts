// The event log: append (with live publication) and read.
import type { DroverEvent, Page } from '../domain/records.js';
import type { EventFilter, NewEvent } from '../store/repositories/events.repository.js';
import { inTransaction, type ServiceContext } from './context.js';

export class EventsService {
  constructor(private readonly ctx: ServiceContext) {}

  record(e: Omit<NewEvent, 'time'>): Promise<DroverEvent> {
    return inTransaction(this.ctx, (tx) => tx.emit(e));
  }

  list(filter: EventFilter, page: { limit: number; cursor?: string | undefined }): Promise<Page<DroverEvent>> {
    return this.ctx.store.events.list(filter, page);
  }

  /** What a reconnecting stream missed since `id`, oldest first. */
  since(id: number, limit: number, deviceId?: string): Promise<DroverEvent[]> {
    return this.ctx.store.events.after(id, limit, deviceId);
  }
}
