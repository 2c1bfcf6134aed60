// The "Health history" card on the device page: health changes, the remediation ladder's steps,
// jobs, power actions and re-images, each with its reason, newest first. Fetched by type (so
// they are found even when the page's latest events are about something else) and merged with
// the page's live events.
import { useEffect, useMemo, useState } from 'react';
import { api } from '../api';
import { mergeEvents } from '../events';
import { dateTime, eventTime, relativeTime, useNow } from '../format';
import { describeHistory, HISTORY_TYPES, isHistoryEvent } from '../health';
import { useLive } from '../live';
import type { DroverEvent, Page } from '../types';

const PER_TYPE = 100;
const SHOWN = 50;

export function RemediationHistory({ deviceId, events, fresh }: { deviceId: string; events: DroverEvent[]; fresh?: ReadonlySet<number> }) {
  const { epoch } = useLive();
  const [fetched, setFetched] = useState<DroverEvent[]>([]);
  const [loading, setLoading] = useState(true);
  const [all, setAll] = useState(false);
  useEffect(() => {
    const ctl = new AbortController();
    Promise.all(
      HISTORY_TYPES.map((type) =>
        api.get<Page<DroverEvent>>(`/devices/${encodeURIComponent(deviceId)}/events`, { type, limit: PER_TYPE }, ctl.signal).then((p) => p.items),
      ),
    )
      .then((lists) => {
        setFetched(mergeEvents([], lists.flat()));
        setLoading(false);
      })
      // The page's events still feed the history; its event list reports API errors.
      .catch(() => setLoading(false));
    return () => ctl.abort();
  }, [deviceId, epoch]);

  const history = useMemo(() => mergeEvents(fetched, events.filter((e) => isHistoryEvent(e.type))), [fetched, events]);
  const shown = all ? history : history.slice(0, SHOWN);
  const now = useNow();

  return (
    <section className="card history-card" aria-labelledby="history-h" data-testid="health-history">
      <div className="history-head">
        <h2 id="history-h">Health history</h2>
        <span className="muted small">health, remediation, jobs and power · newest first · live</span>
      </div>
      {shown.length ? (
        <ol className="history">
          {shown.map((e) => {
            const h = describeHistory(e);
            return (
              <li key={e.id} className={`history-item tone-${h.tone}${fresh?.has(e.id) ? ' row-fresh' : ''}`} data-history-type={e.type} data-event-id={e.id}>
                <time className="history-time small" dateTime={e.time} title={`${dateTime(e.time)} (${relativeTime(e.time, now)})`}>
                  {eventTime(e.time, now)}
                </time>
                <div className="history-body">
                  <div className="history-title">
                    {h.title}
                    {e.actor ? <span className="history-actor muted small"> · {e.actor}</span> : null}
                  </div>
                  {h.detail ? <div className="history-detail small">{h.detail}</div> : null}
                </div>
              </li>
            );
          })}
        </ol>
      ) : (
        <p className="muted history-empty">{loading ? 'Loading…' : 'Nothing yet: health changes, remediation steps, jobs and power actions appear here.'}</p>
      )}
      {history.length > SHOWN ? (
        <button type="button" className="btn-link small" onClick={() => setAll((a) => !a)}>
          {all ? 'Show fewer' : `Show all ${history.length}`}
        </button>
      ) : null}
    </section>
  );
}
