// The "Metrics" card on the device page: CPU, load, memory and temperature as small line charts,
// drawn as plain SVG. "Last hour" is raw samples, fetched once and then appended live from the
// device's own stream (`sample` messages); 24 h and 7 days are one-minute rollups, refetched
// every minute.
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { api, asApiError, type ApiError } from '../api';
import { dateTime, useNow } from '../format';
import { downsample, mergePoints, pointFromRollup, pointFromSample, type MetricPoint } from '../health';
import { useDeviceStream, useLive } from '../live';
import type { Metrics } from '../types';
import { ErrorBanner } from './ErrorBanner';

const RANGES = [
  { id: '1h', label: '1 h', title: 'Last hour, live', ms: 3600_000 },
  { id: '24h', label: '24 h', title: 'Last 24 hours (one-minute averages)', ms: 24 * 3600_000 },
  { id: '7d', label: '7 d', title: 'Last 7 days (one-minute averages)', ms: 7 * 24 * 3600_000 },
] as const;
type RangeId = (typeof RANGES)[number]['id'];

/** Most points drawn per line: more would not show on a card this wide. */
const MAX_POINTS = 720;
const ROLLUP_REFRESH_MS = 60_000;

type Key = 'cpu' | 'load' | 'mem' | 'temp';
interface Series {
  key: Key;
  label: string;
  unit: string;
  /** Fixed bounds, or computed from the data. */
  bounds: (values: number[]) => [number, number];
  format: (v: number) => string;
}

const percent = (v: number) => `${v < 10 ? v.toFixed(1) : Math.round(v)} %`;
const SERIES: Series[] = [
  { key: 'cpu', label: 'CPU', unit: '%', bounds: () => [0, 100], format: percent },
  { key: 'load', label: 'Load (1 min)', unit: '', bounds: (vs) => [0, niceCeil(Math.max(1, ...vs) * 1.15)], format: (v) => v.toFixed(2) },
  { key: 'mem', label: 'Memory used', unit: '%', bounds: () => [0, 100], format: percent },
  {
    key: 'temp',
    label: 'Temperature',
    unit: '°C',
    bounds: (vs) => {
      const lo = Math.floor((Math.min(...vs) - 2) / 10) * 10;
      const hi = Math.ceil((Math.max(...vs) + 2) / 10) * 10;
      return [Math.max(0, Math.min(lo, 30)), Math.max(hi, lo + 20)];
    },
    format: (v) => `${v.toFixed(1)} °C`,
  },
];

function niceCeil(x: number): number {
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}

export function MetricsChart({ deviceId }: { deviceId: string }) {
  const [range, setRange] = useState<RangeId>('1h');
  const spec = RANGES.find((r) => r.id === range)!;
  const { epoch } = useLive();
  const [points, setPoints] = useState<MetricPoint[]>([]);
  const [resolution, setResolution] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<ApiError | null>(null);
  const [reload, setReload] = useState(0);
  const tick = useNow();
  /** The chart ends at the latest of: the clock's tick, the last sample, the last fetch. */
  const [now, setNow] = useState(() => Date.now());
  const end = Math.max(tick, now);

  /** Samples that arrive while the first fetch runs; merged into its answer. */
  const early = useRef<MetricPoint[] | null>(null);
  const shown = useRef('');

  const live = range === '1h';
  useDeviceStream(
    deviceId,
    live,
    (m) => {
      if (m.kind !== 'sample') return;
      const p = pointFromSample(m.sample.ts, m.sample.m as Partial<Metrics>);
      if (!p) return;
      if (early.current) early.current.push(p);
      else {
        setPoints((cur) => {
          const cutoff = p.t - spec.ms;
          const merged = mergePoints(cur, [p]);
          return merged[0] && merged[0].t < cutoff ? merged.filter((x) => x.t >= cutoff) : merged;
        });
        setNow(Date.now());
      }
    },
    // Fetch again once the stream is up (samples between the first fetch and the connection, or
    // during a gap, would be missing); what arrives meanwhile waits in `early`.
    useCallback(() => setReload((n) => n + 1), []),
  );

  useEffect(() => {
    const ctl = new AbortController();
    const load = (first: boolean) => {
      if (first) setLoading(true);
      if (live) early.current = [];
      const until = new Date(Date.now() + 60_000);
      const since = new Date(until.getTime() - 60_000 - spec.ms);
      api
        .get<{ resolution: string; items: Record<string, unknown>[] }>(
          `/devices/${encodeURIComponent(deviceId)}/metrics`,
          { since: since.toISOString(), until: until.toISOString(), resolution: live ? 'raw' : 'minute' },
          ctl.signal,
        )
        .then((r) => {
          const fetched = r.items
            .map((it) => (r.resolution === 'raw' ? pointFromSample(String(it.ts), it as Partial<Metrics>) : pointFromRollup(it)))
            .filter((p): p is MetricPoint => p !== null);
          const extra = early.current ?? [];
          early.current = null;
          setPoints(mergePoints(mergePoints([], fetched), extra));
          setNow(Date.now());
          setResolution(r.resolution);
          setError(null);
          setLoading(false);
        })
        .catch((err) => {
          if ((err as Error).name === 'AbortError') return;
          early.current = null;
          setError(asApiError(err));
          setLoading(false);
        });
    };
    // Another range or device: the old points do not belong on this chart.
    const key = `${deviceId}|${range}`;
    const fresh = shown.current !== key;
    if (fresh) {
      shown.current = key;
      setPoints([]);
    }
    load(fresh);
    const timer = live ? undefined : setInterval(() => load(false), ROLLUP_REFRESH_MS);
    return () => {
      ctl.abort();
      clearInterval(timer);
      early.current = null;
    };
  }, [deviceId, range, epoch, reload, live, spec.ms]);

  const start = end - spec.ms;
  const visible = useMemo(() => points.filter((p) => p.t >= start), [points, start]);
  const drawn = useMemo(() => downsample(visible, MAX_POINTS), [visible]);
  const latest = visible[visible.length - 1];

  return (
    <section className="card metrics-card" aria-labelledby="metrics-h" data-testid="metrics" data-range={range} data-samples={visible.length} data-resolution={resolution ?? ''}>
      <div className="metrics-head">
        <h2 id="metrics-h">Metrics</h2>
        <span className="muted small">
          {loading
            ? 'Loading…'
            : latest
              ? `${visible.length} ${resolution === 'minute' ? 'one-minute averages' : 'samples'} · latest ${dateTime(new Date(latest.t).toISOString())}${live ? ' · live' : ''}`
              : null}
        </span>
        <div className="segmented" role="group" aria-label="Time range">
          {RANGES.map((r) => (
            <button key={r.id} type="button" className={r.id === range ? 'active' : undefined} aria-pressed={r.id === range} title={r.title} onClick={() => setRange(r.id)}>
              {r.label}
            </button>
          ))}
        </div>
      </div>
      <ErrorBanner error={error} onClose={() => setError(null)} />
      {!loading && visible.length === 0 && !error ? (
        <p className="muted metrics-empty">No metrics in this range: samples arrive with each heartbeat of the device's agent.</p>
      ) : null}
      <div className="metrics-grid">
        {SERIES.map((s) => (
          <LineChart key={s.key} series={s} points={drawn} start={start} end={end} rangeLabel={spec.title} />
        ))}
      </div>
    </section>
  );
}

// --- one chart ---------------------------------------------------------------------------------

const W = 560;
const H = 150;
const PAD = { left: 44, right: 10, top: 10, bottom: 22 };

function LineChart({ series, points, start, end, rangeLabel }: { series: Series; points: MetricPoint[]; start: number; end: number; rangeLabel: string }) {
  const values = points.map((p) => p[series.key]).filter((v): v is number => v !== null);
  const has = values.length > 0;
  const [lo, hi] = has ? series.bounds(values) : series.key === 'temp' ? [30, 60] : series.bounds([0]);
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const x = (t: number) => PAD.left + ((t - start) / (end - start || 1)) * plotW;
  const y = (v: number) => PAD.top + plotH - ((Math.min(Math.max(v, lo), hi) - lo) / (hi - lo || 1)) * plotH;

  // A gap (agent offline) breaks the line: more than three usual intervals without a point.
  const gaps = points.slice(1).map((p, i) => p.t - points[i]!.t).sort((a, b) => a - b);
  const usual = gaps.length ? gaps[Math.floor(gaps.length / 2)]! : 0;
  const maxGap = Math.max(usual * 3, 1000);
  let d = '';
  let n = 0;
  let prevT: number | null = null;
  for (const p of points) {
    const v = p[series.key];
    if (v === null) {
      prevT = null;
      continue;
    }
    const px = x(p.t).toFixed(1);
    const py = y(v).toFixed(1);
    const move = prevT === null || p.t - prevT > maxGap;
    // A lone point is drawn as a dot (a zero-length segment with round caps).
    d += move ? `M${px} ${py}l0.01 0` : `L${px} ${py}`;
    prevT = p.t;
    n++;
  }
  const latest = [...points].reverse().find((p) => p[series.key] !== null)?.[series.key] ?? null;
  const summary = has
    ? `${series.label}, ${rangeLabel.toLowerCase()}: ${values.length} points, latest ${series.format(latest!)}, lowest ${series.format(Math.min(...values))}, highest ${series.format(Math.max(...values))}`
    : `${series.label}, ${rangeLabel.toLowerCase()}: no data`;
  const ticks = [lo, (lo + hi) / 2, hi];
  const fmtTick = (v: number) => (series.unit === '%' ? `${Math.round(v)}%` : series.unit === '°C' ? `${Math.round(v)}°` : v % 1 === 0 ? String(v) : v.toFixed(1));
  const ago = (t: number) => {
    const ms = end - t;
    if (ms < 1000) return 'now';
    if (ms < 2 * 3600_000) return `−${Math.round(ms / 60_000)} min`;
    if (ms < 3 * 86_400_000) return `−${Math.round(ms / 3600_000)} h`;
    return `−${Math.round((ms / 86_400_000) * 10) / 10} d`;
  };

  return (
    <figure className={`chart chart-${series.key}`} data-metric={series.key}>
      <figcaption className="chart-caption">
        <span className="chart-label">{series.label}</span>
        <span className="chart-value mono">{latest === null ? '—' : series.format(latest)}</span>
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} className="chart-svg" role="img" aria-label={summary} data-points={n}>
        <title>{summary}</title>
        {ticks.map((v, i) => (
          <g key={i} className="chart-grid">
            <line x1={PAD.left} x2={W - PAD.right} y1={y(v)} y2={y(v)} />
            <text x={PAD.left - 6} y={y(v)} dy="0.32em" textAnchor="end">
              {fmtTick(v)}
            </text>
          </g>
        ))}
        {[start, (start + end) / 2, end].map((t, i) => (
          <text key={i} className="chart-time" x={x(t)} y={H - 6} textAnchor={i === 0 ? 'start' : i === 2 ? 'end' : 'middle'}>
            {ago(t)}
          </text>
        ))}
        {d ? <path className="chart-line" d={d} vectorEffect="non-scaling-stroke" /> : null}
      </svg>
    </figure>
  );
}
