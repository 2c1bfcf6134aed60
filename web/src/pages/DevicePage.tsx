// One device: its health and metrics, actions (reboot, power cycle, re-image, run a command), its
// latest network boot, details, hostname/group/image/labels, lifecycle actions, its health
// history and its events — all kept current from the live stream.
import { useCallback, useEffect, useState, type FormEvent, type ReactNode } from 'react';
import { api, ApiError, asApiError } from '../api';
import { imageLabel, useCatalog } from '../catalog';
import { BootTimeline } from '../components/BootTimeline';
import { ConfirmButton } from '../components/ConfirmButton';
import { DeviceActions } from '../components/DeviceActions';
import { ErrorBanner } from '../components/ErrorBanner';
import { EventTable } from '../components/EventList';
import { HealthSummary } from '../components/HealthSummary';
import { LabelChips } from '../components/Labels';
import { Link } from '../components/Link';
import { MetricsChart } from '../components/MetricsChart';
import { RemediationHistory } from '../components/RemediationHistory';
import { RelativeTime } from '../components/RelativeTime';
import { StateBadge } from '../components/StateBadge';
import { mergeEvents } from '../events';
import { displayName } from '../fleet';
import { dateTime } from '../format';
import { useLive, useStream } from '../live';
import { navigate, paths, useDocumentTitle } from '../router';
import { useSession } from '../session';
import { ACTIONS_FROM, type Device, type DeviceAction, type DroverEvent, type HealthView, type Page } from '../types';

/** A newer version of the device record; records from the stream and from actions carry no health, so it is kept. */
function newer(cur: Device | null, d: Device): Device {
  if (cur && cur.updatedAt > d.updatedAt) return cur;
  return d.health || !cur?.health ? d : { ...d, health: cur.health };
}

const EVENTS_PAGE = 50;

export function DevicePage({ id }: { id: string }) {
  const { epoch } = useLive();
  const { canOperate } = useSession();
  const [device, setDevice] = useState<Device | null>(null);
  const [loadError, setLoadError] = useState<ApiError | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const [events, setEvents] = useState<DroverEvent[]>([]);
  const [eventsCursor, setEventsCursor] = useState<string | null>(null);
  const [eventsLoading, setEventsLoading] = useState(true);
  const [fresh, setFresh] = useState<ReadonlySet<number>>(new Set());
  useDocumentTitle(device ? displayName(device) : 'Device');

  useEffect(() => {
    const ctl = new AbortController();
    setLoadError(null);
    api
      .get<Device>(`/devices/${encodeURIComponent(id)}`, undefined, ctl.signal)
      .then((d) => {
        setDevice(d);
        // A serial, MAC or hostname in the address becomes the canonical id.
        if (d.id !== id) navigate(paths.device(d.id), { replace: true });
      })
      .catch((err) => {
        if ((err as Error).name !== 'AbortError') setLoadError(asApiError(err));
      });
    return () => ctl.abort();
  }, [id, epoch]);

  const deviceId = device?.id;
  useEffect(() => {
    if (!deviceId) return;
    const ctl = new AbortController();
    setEventsLoading(true);
    api
      .get<Page<DroverEvent>>(`/devices/${encodeURIComponent(deviceId)}/events`, { limit: EVENTS_PAGE }, ctl.signal)
      .then((page) => {
        setEvents((cur) => mergeEvents(cur, page.items));
        setEventsCursor(page.nextCursor);
        setEventsLoading(false);
      })
      .catch((err) => {
        if ((err as Error).name === 'AbortError') return;
        setError(asApiError(err));
        setEventsLoading(false);
      });
    return () => ctl.abort();
  }, [deviceId, epoch]);

  const setHealth = useCallback((health: HealthView) => setDevice((cur) => (cur ? { ...cur, health } : cur)), []);

  useStream((m) => {
    if (!device) return;
    if (m.kind === 'device' && m.device.id === device.id) {
      setDevice((cur) => newer(cur, m.device));
    } else if (m.kind === 'health' && m.health.deviceId === device.id) {
      const { deviceId: _id, ...health } = m.health;
      setHealth(health);
    } else if (m.kind === 'event' && m.event.deviceId === device.id) {
      const eid = m.event.id;
      setEvents((cur) => mergeEvents(cur, [m.event]));
      setFresh((s) => new Set(s).add(eid));
      setTimeout(() => setFresh((s) => new Set([...s].filter((x) => x !== eid))), 2500);
    }
  });

  async function loadMoreEvents() {
    if (!device || !eventsCursor) return;
    try {
      const page = await api.get<Page<DroverEvent>>(`/devices/${encodeURIComponent(device.id)}/events`, { limit: EVENTS_PAGE, cursor: eventsCursor });
      setEvents((cur) => mergeEvents(cur, page.items));
      setEventsCursor(page.nextCursor);
    } catch (err) {
      setError(asApiError(err));
    }
  }

  /** Runs a change against the API and shows the device it answers with. */
  async function change(fn: () => Promise<Device>): Promise<boolean> {
    setBusy(true);
    setError(null);
    try {
      const d = await fn();
      setDevice((cur) => newer(cur, d));
      return true;
    } catch (err) {
      setError(asApiError(err));
      return false;
    } finally {
      setBusy(false);
    }
  }

  if (loadError) {
    return (
      <div className="page">
        <BackLink />
        <ErrorBanner error={loadError} />
      </div>
    );
  }
  if (!device) {
    return (
      <div className="page">
        <BackLink />
        <p className="muted">Loading device…</p>
      </div>
    );
  }

  const base = `/devices/${encodeURIComponent(device.id)}`;
  const act = (action: DeviceAction) => change(() => api.post<Device>(`${base}/${action}`, {}));
  const patch = (body: Record<string, unknown>) => change(() => api.patch<Device>(base, body));
  const can = (a: DeviceAction) => canOperate && ACTIONS_FROM[a].includes(device.state);

  return (
    <div className="page" data-device-id={device.id}>
      <BackLink />
      <div className="page-head device-head">
        <div>
          <h1 className="device-title">
            <span>{displayName(device)}</span>
            <StateBadge state={device.state} />
          </h1>
          <p className="muted page-sub">
            {device.model ?? 'Unknown model'} · serial <span className="mono">{device.serial}</span>
          </p>
        </div>
        <div className="head-actions">
          {can('accept') ? (
            <button type="button" className="btn btn-primary" disabled={busy} onClick={() => act('accept')}>
              Accept
            </button>
          ) : null}
          {can('reject') ? (
            <ConfirmButton confirmLabel="Confirm reject" disabled={busy} onConfirm={() => act('reject')} className="btn btn-danger-ghost">
              Reject
            </ConfirmButton>
          ) : null}
          {can('retire') ? (
            <ConfirmButton confirmLabel="Confirm retire" disabled={busy} onConfirm={() => act('retire')} className="btn btn-danger-ghost">
              Retire
            </ConfirmButton>
          ) : null}
        </div>
      </div>

      <ErrorBanner error={error} onClose={() => setError(null)} />

      <div className="grid">
        <HealthSummary deviceId={device.id} health={device.health} onRefresh={setHealth} />
        {canOperate ? <DeviceActions device={device} agentConnected={device.health?.agent.connected ?? false} /> : null}
      </div>

      <MetricsChart deviceId={device.id} />

      <BootTimeline deviceId={device.id} events={events} loading={eventsLoading} fresh={fresh} />

      <div className="grid">
        <section className="card" aria-labelledby="details-h">
          <h2 id="details-h">Details</h2>
          <dl className="details">
            <Row k="Device id">
              <span className="mono">{device.id}</span>
            </Row>
            <Row k="Serial">
              <span className="mono">{device.serial}</span>
            </Row>
            <Row k="MAC addresses">{device.macs.length ? <span className="mono">{device.macs.join(', ')}</span> : <span className="muted">—</span>}</Row>
            <Row k="IP addresses">{device.ipAddresses.length ? <span className="mono">{device.ipAddresses.join(', ')}</span> : <span className="muted">—</span>}</Row>
            <Row k="Model">{device.model ?? <span className="muted">—</span>}</Row>
            <Row k="Board revision">{device.boardRevision ? <span className="mono">{device.boardRevision}</span> : <span className="muted">—</span>}</Row>
            <Row k="Boot mode">{device.bootMode ?? <span className="muted">group default</span>}</Row>
            <Row k="First seen">
              <RelativeTime iso={device.firstSeen} />
            </Row>
            <Row k="Last seen">
              <RelativeTime iso={device.lastSeen} />
            </Row>
            <Row k="Registered">{dateTime(device.createdAt)}</Row>
            <Row k="Updated">
              <RelativeTime iso={device.updatedAt} />
            </Row>
          </dl>
        </section>

        <section className="card" aria-labelledby="config-h">
          <h2 id="config-h">Configuration</h2>
          <HostnameForm device={device} disabled={!canOperate || busy} onSave={(hostname) => patch({ hostname })} />
          <GroupForm device={device} disabled={!canOperate || busy} onSave={(groupId) => patch({ groupId })} />
          <ImageForm device={device} disabled={!canOperate || busy} onSave={(image) => change(() => api.post<Device>(`${base}/assign`, { image }))} />
          <div className="form-row form-row-top">
            <span className="form-label">Labels</span>
            <div className="labels-edit">
              <LabelChips labels={device.labels} busy={busy} {...(canOperate ? { onRemove: (k: string) => void patch({ labels: { [k]: null } }) } : {})} />
              {canOperate ? <LabelForm disabled={busy} onAdd={(k, v) => patch({ labels: { [k]: v } })} /> : null}
            </div>
          </div>
        </section>
      </div>

      <RemediationHistory deviceId={device.id} events={events} fresh={fresh} />

      <section className="card table-card" aria-labelledby="events-h">
        <div className="card-head">
          <h2 id="events-h">Events</h2>
          <span className="muted small">newest first · live</span>
        </div>
        {events.length ? (
          <EventTable events={events} showDevice={false} fresh={fresh} />
        ) : (
          <div className="empty-table muted">{eventsLoading ? 'Loading events…' : 'No events for this device yet.'}</div>
        )}
        {eventsCursor ? (
          <div className="table-foot">
            <span className="muted small">Showing {events.length}</span>
            <button type="button" className="btn btn-secondary btn-sm" onClick={loadMoreEvents}>
              Load more
            </button>
          </div>
        ) : null}
      </section>
    </div>
  );
}

function BackLink() {
  return (
    <Link to={paths.fleet()} className="back">
      ← Fleet
    </Link>
  );
}

function Row({ k, children }: { k: string; children: ReactNode }) {
  return (
    <>
      <dt>{k}</dt>
      <dd>{children}</dd>
    </>
  );
}

function HostnameForm({ device, disabled, onSave }: { device: Device; disabled: boolean; onSave: (h: string | null) => Promise<boolean> }) {
  const [value, setValue] = useState(device.hostname ?? '');
  useEffect(() => setValue(device.hostname ?? ''), [device.hostname]);
  const dirty = value.trim() !== (device.hostname ?? '');
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (dirty) void onSave(value.trim() || null);
  };
  return (
    <form className="form-row" onSubmit={submit}>
      <label className="form-label" htmlFor="hostname">
        Hostname
      </label>
      <div className="form-control">
        <input id="hostname" className="input mono" value={value} disabled={disabled} placeholder="not set" maxLength={63} spellCheck={false} onChange={(e) => setValue(e.target.value)} />
        <button type="submit" className="btn btn-secondary btn-sm" disabled={disabled || !dirty}>
          Save
        </button>
      </div>
    </form>
  );
}

interface Choice {
  value: string;
  label: string;
}

/** A select with a submit button; shows an unknown current value rather than hiding it. */
function SelectForm(props: { id: string; label: string; current: string | null; choices: Choice[]; noneLabel: string; submitLabel: string; disabled: boolean; onSave: (v: string | null) => Promise<boolean> }) {
  const { id, label, current, choices, noneLabel, submitLabel, disabled, onSave } = props;
  const [value, setValue] = useState(current ?? '');
  useEffect(() => setValue(current ?? ''), [current]);
  const dirty = value !== (current ?? '');
  return (
    <form
      className="form-row"
      onSubmit={(e) => {
        e.preventDefault();
        if (dirty) void onSave(value || null);
      }}
    >
      <label className="form-label" htmlFor={id}>
        {label}
      </label>
      <div className="form-control">
        <select id={id} className="input" value={value} disabled={disabled} onChange={(e) => setValue(e.target.value)}>
          <option value="">{noneLabel}</option>
          {choices.map((c) => (
            <option key={c.value} value={c.value}>
              {c.label}
            </option>
          ))}
          {current && !choices.some((c) => c.value === current) ? <option value={current}>{current}</option> : null}
        </select>
        <button type="submit" className="btn btn-secondary btn-sm" disabled={disabled || !dirty}>
          {submitLabel}
        </button>
      </div>
    </form>
  );
}

function GroupForm({ device, disabled, onSave }: { device: Device; disabled: boolean; onSave: (g: string | null) => Promise<boolean> }) {
  const { groups } = useCatalog();
  const choices = groups.map((g) => ({ value: g.id, label: g.name }));
  return <SelectForm id="group" label="Group" current={device.groupId} choices={choices} noneLabel="No group" submitLabel="Save" disabled={disabled} onSave={onSave} />;
}

function ImageForm({ device, disabled, onSave }: { device: Device; disabled: boolean; onSave: (image: string | null) => Promise<boolean> }) {
  const { images } = useCatalog();
  const choices = images.map((i) => ({ value: i.id, label: `${imageLabel(i)}${i.status !== 'ready' ? ` (${i.status})` : ''}` }));
  return <SelectForm id="image" label="Image" current={device.imageId} choices={choices} noneLabel="None (group default)" submitLabel="Assign" disabled={disabled} onSave={onSave} />;
}

function LabelForm({ disabled, onAdd }: { disabled: boolean; onAdd: (k: string, v: string) => Promise<boolean> }) {
  const [key, setKey] = useState('');
  const [value, setValue] = useState('');
  return (
    <form
      className="label-form"
      aria-label="Add label"
      onSubmit={async (e) => {
        e.preventDefault();
        const k = key.trim();
        if (!k) return;
        if (await onAdd(k, value.trim())) {
          setKey('');
          setValue('');
        }
      }}
    >
      <input className="input input-sm mono" aria-label="Label key" placeholder="key" value={key} disabled={disabled} spellCheck={false} onChange={(e) => setKey(e.target.value)} />
      <span className="muted">=</span>
      <input className="input input-sm mono" aria-label="Label value" placeholder="value" value={value} disabled={disabled} spellCheck={false} onChange={(e) => setValue(e.target.value)} />
      <button type="submit" className="btn btn-secondary btn-sm" disabled={disabled || !key.trim()}>
        Add label
      </button>
    </form>
  );
}
