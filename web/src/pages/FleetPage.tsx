// The fleet: counts by state (click to filter), then the device table. Live: every `device`
// message from the stream updates its row and the counts in place, every `health` message its
// health badge and suspicion (phi).
import { useCallback, useEffect, useRef, useState } from 'react';
import { api, ApiError, asApiError } from '../api';
import { useCatalog } from '../catalog';
import { ConfirmButton } from '../components/ConfirmButton';
import { ErrorBanner } from '../components/ErrorBanner';
import { HealthBadge, Phi } from '../components/HealthBadge';
import { LabelChips } from '../components/Labels';
import { Link } from '../components/Link';
import { RelativeTime } from '../components/RelativeTime';
import { StateBadge } from '../components/StateBadge';
import { deviceMatches, filtersFromQuery, labelPairs, mergeDevices, type FleetFilters } from '../fleet';
import { useLive, useStream } from '../live';
import { navigate, paths, useDocumentTitle } from '../router';
import { useSession } from '../session';
import { DEVICE_STATES, type Device, type DeviceState, type Page } from '../types';

const PAGE_SIZE = 50;
const FLASH_MS = 2500;
const RECONCILE_MS = 1500;

type Counts = Record<DeviceState, number>;

export function FleetPage({ query }: { query: URLSearchParams }) {
  useDocumentTitle('Fleet');
  const filters = filtersFromQuery(query);
  const filterKey = JSON.stringify(filters);
  const { epoch } = useLive();
  const { groups, groupName, imageName } = useCatalog();
  const { canOperate } = useSession();

  const [rows, setRows] = useState<Device[]>([]);
  const [nextCursor, setNextCursor] = useState<string | null>(null);
  const [total, setTotal] = useState<number | null>(null);
  const [loading, setLoading] = useState(true);
  const [loadingMore, setLoadingMore] = useState(false);
  const [counts, setCounts] = useState<Counts | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState<ReadonlySet<string>>(new Set());
  const [fresh, setFresh] = useState<ReadonlySet<string>>(new Set());

  /** The last version seen of each device, to move counts between tiles and rows in or out of view. */
  const known = useRef(new Map<string, Device>());
  const filtersRef = useRef<FleetFilters>(filters);
  filtersRef.current = filters;

  const remember = (items: Device[]) => {
    for (const d of items) {
      const prev = known.current.get(d.id);
      if (!prev || prev.updatedAt <= d.updatedAt) known.current.set(d.id, d);
    }
  };

  const setFilters = (patch: Partial<FleetFilters>) => navigate(paths.fleet({ ...filters, ...patch }), { replace: true });

  // --- counts --------------------------------------------------------------------------
  const loadCounts = useCallback(async () => {
    const f = filtersRef.current;
    const [summary, filtered] = await Promise.all([
      api.get<{ total: number; byState: Record<string, number> }>('/devices/summary'),
      api.get<Page<Device>>('/devices', { ...apiFilter(f), limit: 1 }),
    ]);
    setCounts(Object.fromEntries(DEVICE_STATES.map((s) => [s, summary.byState[s] ?? 0])) as Counts);
    if (JSON.stringify(filtersRef.current) === JSON.stringify(f)) setTotal(filtered.total ?? null);
  }, []);

  const reconcileTimer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const scheduleReconcile = useCallback(() => {
    if (reconcileTimer.current) return;
    reconcileTimer.current = setTimeout(() => {
      reconcileTimer.current = undefined;
      loadCounts().catch(() => {});
    }, RECONCILE_MS);
  }, [loadCounts]);
  useEffect(() => () => clearTimeout(reconcileTimer.current), []);

  useEffect(() => {
    loadCounts().catch((err) => setError(asApiError(err)));
  }, [loadCounts, epoch]);

  // --- first page (again whenever the filters change or the stream reconnects) -----------
  useEffect(() => {
    const ctl = new AbortController();
    setLoading(true);
    setError(null);
    api
      .get<Page<Device>>('/devices', { ...apiFilter(filters), limit: PAGE_SIZE }, ctl.signal)
      .then((page) => {
        remember(page.items);
        setRows(page.items);
        setNextCursor(page.nextCursor);
        setTotal(page.total ?? null);
        setLoading(false);
      })
      .catch((err) => {
        if ((err as Error).name === 'AbortError') return;
        setError(asApiError(err));
        setRows([]);
        setNextCursor(null);
        setLoading(false);
      });
    return () => ctl.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [filterKey, epoch]);

  async function loadMore() {
    if (!nextCursor) return;
    setLoadingMore(true);
    try {
      const page = await api.get<Page<Device>>('/devices', { ...apiFilter(filters), limit: PAGE_SIZE, cursor: nextCursor });
      remember(page.items);
      setRows((rs) => mergeDevices(rs, page.items));
      setNextCursor(page.nextCursor);
      if (page.total !== undefined) setTotal(page.total);
    } catch (err) {
      setError(asApiError(err));
    } finally {
      setLoadingMore(false);
    }
  }

  // --- live updates ----------------------------------------------------------------------
  const flash = (id: string) => {
    setFresh((s) => new Set(s).add(id));
    setTimeout(
      () =>
        setFresh((s) => {
          const n = new Set(s);
          n.delete(id);
          return n;
        }),
      FLASH_MS,
    );
  };

  /** Applies a device's new version (from the stream or an action's reply); idempotent. */
  const applyDevice = (incoming: Device) => {
    const prev = known.current.get(incoming.id);
    if (prev && prev.updatedAt > incoming.updatedAt) return; // an older version arriving late
    // Stream and action replies carry the record without health: keep the health already known.
    const d = incoming.health || !prev?.health ? incoming : { ...incoming, health: prev.health };
    known.current.set(d.id, d);
    if (prev?.state !== d.state) {
      setCounts((c) => {
        if (!c) return c;
        const n = { ...c };
        if (prev) n[prev.state] = Math.max(0, n[prev.state] - 1);
        n[d.state] += 1;
        return n;
      });
      // A device not seen before may already have been counted: let the server settle it.
      scheduleReconcile();
      flash(d.id);
    }
    const f = filtersRef.current;
    const matches = deviceMatches(d, f, groupName);
    const matched = prev ? deviceMatches(prev, f, groupName) : false;
    if (matches !== matched) setTotal((t) => (t === null ? t : Math.max(0, t + (matches ? 1 : -1))));
    setRows((rs) => {
      const present = rs.some((r) => r.id === d.id);
      if (!matches) return present ? rs.filter((r) => r.id !== d.id) : rs;
      return present ? rs.map((r) => (r.id === d.id ? d : r)) : mergeDevices(rs, [d]);
    });
  };

  /** A health change: only the health of a row already known moves (the record is unchanged). */
  const applyHealth = (deviceId: string, health: NonNullable<Device['health']>) => {
    const prev = known.current.get(deviceId);
    if (prev) known.current.set(deviceId, { ...prev, health });
    setRows((rs) => (rs.some((r) => r.id === deviceId) ? rs.map((r) => (r.id === deviceId ? { ...r, health } : r)) : rs));
  };

  useStream((m) => {
    if (m.kind === 'device') applyDevice(m.device);
    else if (m.kind === 'health') {
      const { deviceId, ...health } = m.health;
      applyHealth(deviceId, health);
    }
  });

  async function act(d: Device, action: 'accept' | 'reject') {
    setBusy((s) => new Set(s).add(d.id));
    setError(null);
    try {
      applyDevice(await api.post<Device>(`/devices/${encodeURIComponent(d.id)}/${action}`, {}));
    } catch (err) {
      setError(asApiError(err));
    } finally {
      setBusy((s) => {
        const n = new Set(s);
        n.delete(d.id);
        return n;
      });
    }
  }

  const fleetTotal = counts ? DEVICE_STATES.reduce((n, s) => n + counts[s], 0) : null;
  const filtered = Boolean(filters.q || filters.state || filters.label || filters.group);

  return (
    <div className="page">
      <div className="page-head">
        <div>
          <h1>Fleet</h1>
          <p className="muted page-sub">{fleetTotal === null ? 'Loading…' : `${fleetTotal} device${fleetTotal === 1 ? '' : 's'} known to this controller`}</p>
        </div>
      </div>

      <section className="tiles" aria-label="Devices by state">
        {DEVICE_STATES.map((s) => (
          <button
            key={s}
            type="button"
            className={`tile tile-${s}${filters.state === s ? ' active' : ''}${counts && counts[s] === 0 ? ' zero' : ''}`}
            data-tile={s}
            aria-pressed={filters.state === s}
            title={filters.state === s ? 'Show every state' : `Show only ${s} devices`}
            onClick={() => setFilters({ state: filters.state === s ? '' : s })}
          >
            <span className="tile-count" data-count={counts ? counts[s] : ''}>
              {counts ? counts[s] : '–'}
            </span>
            <span className="tile-label">{s}</span>
          </button>
        ))}
      </section>

      <FilterBar filters={filters} groups={groups} onChange={setFilters} />

      <ErrorBanner error={error} onClose={() => setError(null)} />

      <div className="card table-card">
        <div className="table-wrap">
          <table className="table devices-table" aria-label="Devices" aria-busy={loading}>
            <thead>
              <tr>
                <th>State</th>
                <th>Health</th>
                <th className="nowrap num" title="Suspicion of the heartbeat detector (phi accrual); suspect from 8 by default">
                  Suspicion (φ)
                </th>
                <th>Hostname</th>
                <th className="hide-md">Model</th>
                <th className="hide-sm">Serial</th>
                <th>IP</th>
                <th className="hide-md">Image</th>
                <th className="nowrap">Last seen</th>
                <th className="hide-sm">Labels</th>
                {canOperate ? <th className="col-actions" aria-label="Actions" /> : null}
              </tr>
            </thead>
            <tbody>
              {rows.map((d) => (
                <tr key={d.id} data-device-id={d.id} data-serial={d.serial} data-state={d.state} data-health={d.health?.health ?? 'unknown'} className={fresh.has(d.id) ? 'row-fresh' : undefined}>
                  <td>
                    <StateBadge state={d.state} />
                  </td>
                  <td data-col="health">
                    <HealthBadge health={d.health?.health ?? 'unknown'} />
                  </td>
                  <td data-col="phi" className="num">
                    <Phi health={d.health} />
                  </td>
                  <td className="nowrap">
                    <Link to={paths.device(d.id)} className="strong">
                      {d.hostname ?? (
                        <span className="unnamed" title="No hostname yet">
                          {d.serial}
                        </span>
                      )}
                    </Link>
                  </td>
                  <td className="hide-md">{d.model ?? <span className="muted">—</span>}</td>
                  <td className="hide-sm mono">{d.serial}</td>
                  <td className="mono nowrap">{d.ipAddresses[0] ?? <span className="muted">—</span>}</td>
                  <td className="hide-md">{imageName(d.imageId) ?? <span className="muted">—</span>}</td>
                  <td className="nowrap">
                    <RelativeTime iso={d.lastSeen} />
                  </td>
                  <td className="hide-sm">
                    <LabelChips labels={d.labels} />
                  </td>
                  {canOperate ? (
                    <td className="col-actions nowrap">
                      {d.state === 'incoming' ? (
                        <span className="row-actions">
                          <button type="button" className="btn btn-primary btn-sm" disabled={busy.has(d.id)} onClick={() => act(d, 'accept')}>
                            Accept
                          </button>
                          <ConfirmButton className="btn btn-danger-ghost btn-sm" confirmLabel="Reject?" disabled={busy.has(d.id)} onConfirm={() => act(d, 'reject')}>
                            Reject
                          </ConfirmButton>
                        </span>
                      ) : null}
                    </td>
                  ) : null}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        {!loading && rows.length === 0 ? (
          <div className="empty-table">
            {filtered ? (
              <>
                <strong>No devices match these filters.</strong>
                <button type="button" className="btn-link" onClick={() => navigate(paths.fleet(), { replace: true })}>
                  Clear filters
                </button>
              </>
            ) : (
              <>
                <strong>No devices yet.</strong>
                <span className="muted">Pis appear here as incoming when they first netboot, or when registered with the API or CLI.</span>
              </>
            )}
          </div>
        ) : null}
        <div className="table-foot">
          <span className="muted small">
            {loading ? 'Loading…' : `Showing ${rows.length}${total !== null ? ` of ${total}` : ''}`}
          </span>
          {nextCursor ? (
            <button type="button" className="btn btn-secondary btn-sm" disabled={loadingMore} onClick={loadMore}>
              {loadingMore ? 'Loading…' : 'Load more'}
            </button>
          ) : null}
        </div>
      </div>
    </div>
  );
}

function apiFilter(f: FleetFilters) {
  return { q: f.q, state: f.state, group: f.group, label: labelPairs(f.label) };
}

function FilterBar({
  filters,
  groups,
  onChange,
}: {
  filters: FleetFilters;
  groups: { id: string; name: string }[];
  onChange: (patch: Partial<FleetFilters>) => void;
}) {
  const [q, setQ] = useState(filters.q);
  const [label, setLabel] = useState(filters.label);
  useEffect(() => setQ(filters.q), [filters.q]);
  useEffect(() => setLabel(filters.label), [filters.label]);
  // Search as you type, a moment after the last key.
  useEffect(() => {
    if (q === filters.q) return;
    const t = setTimeout(() => onChange({ q: q.trim() }), 300);
    return () => clearTimeout(t);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [q]);
  const applyLabel = () => {
    if (label.trim() !== filters.label) onChange({ label: label.trim() });
  };
  const any = filters.q || filters.state || filters.label || filters.group;
  return (
    <form
      className="filters"
      role="search"
      onSubmit={(e) => {
        e.preventDefault();
        onChange({ q: q.trim(), label: label.trim() });
      }}
    >
      <input
        className="input filter-q"
        type="search"
        name="q"
        aria-label="Search"
        placeholder="Search serial, hostname, model or MAC"
        value={q}
        onChange={(e) => setQ(e.target.value)}
      />
      <select className="input" name="state" aria-label="State" value={filters.state} onChange={(e) => onChange({ state: e.target.value })}>
        <option value="">All states</option>
        {DEVICE_STATES.map((s) => (
          <option key={s} value={s}>
            {s}
          </option>
        ))}
      </select>
      <input
        className="input filter-label"
        name="label"
        aria-label="Label"
        placeholder="Label key=value"
        value={label}
        onChange={(e) => setLabel(e.target.value)}
        onBlur={applyLabel}
      />
      <select className="input" name="group" aria-label="Group" value={filters.group} onChange={(e) => onChange({ group: e.target.value })}>
        <option value="">All groups</option>
        {groups.map((g) => (
          <option key={g.id} value={g.id}>
            {g.name}
          </option>
        ))}
        {filters.group && !groups.some((g) => g.id === filters.group) ? <option value={filters.group}>{filters.group}</option> : null}
      </select>
      {any ? (
        <button type="button" className="btn btn-ghost btn-sm" onClick={() => onChange({ q: '', state: '', label: '', group: '' })}>
          Clear
        </button>
      ) : null}
      <button type="submit" hidden />
    </form>
  );
}
