// Every event, newest first, filtered by type; new events are prepended as they happen.
import { useEffect, useState } from 'react';
import { api, ApiError, asApiError } from '../api';
import { ErrorBanner } from '../components/ErrorBanner';
import { EventTable } from '../components/EventList';
import { EVENT_TYPE_PATTERN, mergeEvents, typeMatches, useDeviceNames } from '../events';
import { useLive, useStream } from '../live';
import { navigate, useDocumentTitle } from '../router';
import type { DroverEvent, Page } from '../types';

const PAGE_SIZE = 50;
const SUGGESTED_TYPES = [
  'device.*',
  'device.created',
  'device.accepted',
  'device.rejected',
  'device.retired',
  'device.updated',
  'device.image-assigned',
  'boot.*',
  'agent.*',
  'user.*',
  'token.*',
];

export function EventsPage({ query }: { query: URLSearchParams }) {
  useDocumentTitle('Events');
  const type = query.get('type') ?? '';
  const { epoch } = useLive();
  const [events, setEvents] = useState<DroverEvent[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<ApiError | null>(null);
  const [draft, setDraft] = useState(type);
  const [fresh, setFresh] = useState<ReadonlySet<number>>(new Set());
  const deviceName = useDeviceNames(events.flatMap((e) => (e.deviceId ? [e.deviceId] : [])));

  useEffect(() => setDraft(type), [type]);

  useEffect(() => {
    const ctl = new AbortController();
    setLoading(true);
    setError(null);
    api
      .get<Page<DroverEvent>>('/events', { type, limit: PAGE_SIZE }, ctl.signal)
      .then((page) => {
        setEvents(page.items);
        setCursor(page.nextCursor);
        setLoading(false);
      })
      .catch((err) => {
        if ((err as Error).name === 'AbortError') return;
        setError(asApiError(err));
        setEvents([]);
        setCursor(null);
        setLoading(false);
      });
    return () => ctl.abort();
  }, [type, epoch]);

  useStream((m) => {
    if (m.kind !== 'event' || !typeMatches(m.event.type, type)) return;
    const id = m.event.id;
    setEvents((cur) => mergeEvents(cur, [m.event]));
    setFresh((s) => new Set(s).add(id));
    setTimeout(() => setFresh((s) => new Set([...s].filter((x) => x !== id))), 2500);
  });

  async function loadMore() {
    if (!cursor) return;
    try {
      const page = await api.get<Page<DroverEvent>>('/events', { type, limit: PAGE_SIZE, cursor });
      setEvents((cur) => mergeEvents(cur, page.items));
      setCursor(page.nextCursor);
    } catch (err) {
      setError(asApiError(err));
    }
  }

  const apply = (value: string) => {
    const t = value.trim();
    if (t && !EVENT_TYPE_PATTERN.test(t)) {
      setError(new ApiError(0, 'INVALID_FILTER', `"${t}" is not an event type.`, 'Use a type such as device.accepted, or a family such as boot.*'));
      return;
    }
    navigate(t ? `/events?type=${encodeURIComponent(t)}` : '/events', { replace: true });
  };

  return (
    <div className="page">
      <div className="page-head">
        <div>
          <h1>Events</h1>
          <p className="muted page-sub">Everything the controller recorded, newest first. New events appear as they happen.</p>
        </div>
      </div>
      <form
        className="filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          apply(draft);
        }}
      >
        <input
          className="input filter-type mono"
          name="type"
          list="event-types"
          aria-label="Event type"
          placeholder="Type, e.g. device.accepted or boot.*"
          value={draft}
          spellCheck={false}
          onChange={(e) => setDraft(e.target.value)}
        />
        <datalist id="event-types">
          {SUGGESTED_TYPES.map((t) => (
            <option key={t} value={t} />
          ))}
        </datalist>
        <button type="submit" className="btn btn-secondary btn-sm">
          Filter
        </button>
        {type ? (
          <button type="button" className="btn btn-ghost btn-sm" onClick={() => apply('')}>
            Clear
          </button>
        ) : null}
      </form>
      <ErrorBanner error={error} onClose={() => setError(null)} />
      <section className="card table-card">
        {events.length ? (
          <EventTable events={events} showDevice fresh={fresh} deviceName={deviceName} />
        ) : (
          <div className="empty-table muted">{loading ? 'Loading events…' : type ? `No ${type} events.` : 'No events yet.'}</div>
        )}
        <div className="table-foot">
          <span className="muted small">{loading ? 'Loading…' : `Showing ${events.length}`}</span>
          {cursor ? (
            <button type="button" className="btn btn-secondary btn-sm" onClick={loadMore}>
              Load more
            </button>
          ) : null}
        </div>
      </section>
    </div>
  );
}
