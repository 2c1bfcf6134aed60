// Fleet list logic kept out of the components: filters, matching a device against them (so live
// updates land in the right view), and ordered merging of device lists.
import type { Device } from './types';

export interface FleetFilters {
  q: string;
  state: string;
  /** `key=value`, several separated by spaces (all must match). */
  label: string;
  /** Group id (or name, when typed into the URL). */
  group: string;
}

export function filtersFromQuery(q: URLSearchParams): FleetFilters {
  return { q: q.get('q') ?? '', state: q.get('state') ?? '', label: q.get('label') ?? '', group: q.get('group') ?? '' };
}

export function labelPairs(label: string): string[] {
  return label.split(/\s+/).map((s) => s.trim()).filter(Boolean);
}

export function parseLabels(label: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of labelPairs(label)) {
    const i = pair.indexOf('=');
    if (i > 0) out[pair.slice(0, i)] = pair.slice(i + 1);
  }
  return out;
}

/** The same test the API applies, so a live update can be placed in (or out of) the view. */
export function deviceMatches(d: Device, f: FleetFilters, groupName: (id: string | null) => string | null): boolean {
  if (f.state && !f.state.split(',').includes(d.state)) return false;
  if (f.group && d.groupId !== f.group && groupName(d.groupId) !== f.group) return false;
  for (const [k, v] of Object.entries(parseLabels(f.label))) if (d.labels[k] !== v) return false;
  if (f.q) {
    const q = f.q.toLowerCase();
    const hay = [d.serial, d.hostname ?? '', d.model ?? '', ...d.macs].map((s) => s.toLowerCase());
    if (!hay.some((s) => s.includes(q))) return false;
  }
  return true;
}

/** Devices in API order (by id, which sorts by creation time), without duplicates. */
export function mergeDevices(current: Device[], incoming: Device[]): Device[] {
  const byId = new Map(current.map((d) => [d.id, d]));
  for (const d of incoming) byId.set(d.id, d);
  return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

export function displayName(d: Pick<Device, 'hostname' | 'serial'>): string {
  return d.hostname ?? d.serial;
}
