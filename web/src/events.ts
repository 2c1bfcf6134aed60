// Event list helpers shared by the device and events pages.
import { useEffect, useSyncExternalStore } from 'react';
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

// Device names for event lists: looked up once per device, kept for the session, and updated
// from the live stream. A tiny external store so every list re-renders when a name arrives.
const names = new Map<string, string>();
const requested = new Set<string>();
const listeners = new Set<() => void>();
let version = 0;

function setName(id: string, name: string): void {
  if (names.get(id) === name) return;
  names.set(id, name);
  version++;
  for (const l of listeners) l();
}

function request(ids: Iterable<string>): void {
  for (const id of ids) {
    if (names.has(id) || requested.has(id)) continue;
    requested.add(id);
    api.get<Device>(`/devices/${encodeURIComponent(id)}`).then(
      (d) => setName(id, displayName(d)),
      () => setName(id, id),
    );
  }
}

/** Drops every cached name (on sign-out: the next user may see a different fleet). */
export function forgetDeviceNames(): void {
  names.clear();
  requested.clear();
  version++;
}

/** Display names for the given device ids, fetching unknown ones; re-renders as they arrive. */
export function useDeviceNames(ids: readonly string[]): (id: string) => string | undefined {
  useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    () => version,
  );
  useStream((m) => {
    if (m.kind === 'device') setName(m.device.id, displayName(m.device));
  });
  const key = [...new Set(ids)].filter((id) => !names.has(id)).join(',');
  useEffect(() => {
    if (key) request(key.split(','));
  }, [key]);
  return (id) => names.get(id);
}
