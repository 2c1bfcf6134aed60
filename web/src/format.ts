// Formatting helpers: relative times, dates, event summaries.
import { useSyncExternalStore } from 'react';

const TICK_MS = 10_000;
let now = Date.now();
const tickers = new Set<() => void>();
setInterval(() => {
  now = Date.now();
  for (const t of tickers) t();
}, TICK_MS);

/** The current time, re-rendering the caller every few seconds (for "2 min ago"). */
export function useNow(): number {
  return useSyncExternalStore(
    (l) => {
      tickers.add(l);
      return () => tickers.delete(l);
    },
    () => now,
  );
}

export function relativeTime(iso: string | null | undefined, at: number = Date.now()): string {
  if (!iso) return 'never';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const s = Math.round((at - t) / 1000);
  if (s < 10) return 'just now'; // also small clock skew into the future
  if (s < 60) return `${s} s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ago`;
  const d = Math.floor(h / 24);
  if (d < 60) return `${d} days ago`;
  return new Date(t).toLocaleDateString();
}

export function dateTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** An event's time: the time of day when it is today, otherwise the date and time. */
export function eventTime(iso: string, at: number = Date.now()): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const today = new Date(at).toDateString() === d.toDateString();
  return today
    ? d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' })
    : d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

/** A compact one-line view of an event's data: `from=incoming to=accepted`. */
export function summarizeData(data: Record<string, unknown>): string {
  return Object.entries(data)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : Array.isArray(v) && v.every((x) => typeof x === 'string') ? v.join(',') : JSON.stringify(v)}`)
    .join('  ');
}

/** A byte count in SI units: `812 B`, `3.6 MB`, `24.0 MB`, `812 MB`. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return '—';
  if (Math.abs(n) < 1000) return `${Math.round(n)} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n / 1000;
  let i = 0;
  while (Math.abs(v) >= 999.95 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(Math.abs(v) < 99.95 ? 1 : 0)} ${units[i]}`;
}

/** A duration: `850 ms`, `3.6 s`, `2 min 5 s`, `1 h 4 min`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  if (ms < 0) return `-${formatDuration(-ms)}`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 59_950) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ''}`;
  const m = Math.round(s / 60);
  return `${Math.floor(m / 60)} h${m % 60 ? ` ${m % 60} min` : ''}`;
}
