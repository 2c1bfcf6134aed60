// Event list helpers shared by the device and events pages.
import { useEffect, useState } from 'react';
import { api } from './api';
import { displayName } from './fleet';
import { useStream } from './live';
import type { Device, DroverEvent } from './types';

/** Newest first, without duplicates (a live event may also arrive in a fetched page). */
export function mergeEvents(current: DroverEvent[], incoming: DroverEvent[]): DroverEvent[] {
  const byId = new Map(current.map((e) => [e.id, e]));
  for (const e of incoming) byId.set(e.id, e);
  return [...byId.values()].sort((a, b) => b.id - a.id);
}

/** The API's type filter: exact, or `prefix.*` for a whole family. */
export function typeMatches(type: string, filter: string): boolean {
  if (!filter) return true;
  if (filter.endsWith('.*')) return type.startsWith(filter.slice(0, -1));
  return type === filter;
}

export const EVENT_TYPE_PATTERN = /^[a-z][a-z0-9-]*(\.[a-z0-9-]+)*(\.\*)?$/;

// Device names for event lists: looked up once per device and kept for the session.
const names = new Map<string, string>();
const pending = new Set<string>();

/** Display names for the given device ids, fetching the unknown ones; re-renders as they arrive. */
export function useDeviceNames(ids: readonly string[]): (id: string) => string | undefined {
  const [, setVersion] = useState(0);
  useStream((m) => {
    if (m.kind === 'device' && names.get(m.device.id) !== displayName(m.device)) {
      names.set(m.device.id, displayName(m.device));
      setVersion((v) => v + 1);
    }
  });
  const key = [...new Set(ids)].filter((id) => !names.has(id) && !pending.has(id)).join(',');
  useEffect(() => {
    if (!key) return;
    let live = true;
    const missing = key.split(',');
    for (const id of missing) pending.add(id);
    void Promise.all(
      missing.map((id) =>
        api
          .get<Device>(`/devices/${encodeURIComponent(id)}`)
          .then((d) => names.set(id, displayName(d)))
          .catch(() => names.set(id, id))
          .finally(() => pending.delete(id)),
      ),
    ).then(() => live && setVersion((v) => v + 1));
    return () => {
      live = false;
    };
  }, [key]);
  return (id) => names.get(id);
}
