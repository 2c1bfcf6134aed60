import { dateTime, eventTime, relativeTime, summarizeData, useNow } from '../format';
import { Link } from './Link';
import { paths } from '../router';
import type { DroverEvent } from '../types';

function typeClass(type: string): string {
  if (/\.(failed|rejected|retired|error)$/.test(type) || type.includes('.fail')) return 'ev-bad';
  if (/\.(accepted|created|running|login)$/.test(type)) return 'ev-good';
  return 'ev-neutral';
}

/** Events as a table: time, type, (device), actor, data. New rows flash briefly. */
export function EventTable({
  events,
  showDevice,
  fresh,
  deviceName,
}: {
  events: DroverEvent[];
  showDevice: boolean;
  fresh?: ReadonlySet<number>;
  deviceName?: (id: string) => string | undefined;
}) {
  const now = useNow();
  return (
    <div className="table-wrap">
      <table className="table events-table">
        <thead>
          <tr>
            <th className="col-time">Time</th>
            <th>Type</th>
            {showDevice ? <th>Device</th> : null}
            <th className="hide-sm">Actor</th>
            <th>Details</th>
          </tr>
        </thead>
        <tbody>
          {events.map((e) => (
            <tr key={e.id} data-event-type={e.type} data-event-id={e.id} className={fresh?.has(e.id) ? 'row-fresh' : undefined}>
              <td className="col-time nowrap">
                <time dateTime={e.time} title={dateTime(e.time)} className="ev-time">
                  <span>{eventTime(e.time, now)}</span>
                  <span className="muted small">{relativeTime(e.time, now)}</span>
                </time>
              </td>
              <td>
                <span className={`ev-type ${typeClass(e.type)}`}>{e.type}</span>
              </td>
              {showDevice ? (
                <td className="nowrap">
                  {e.deviceId ? <Link to={paths.device(e.deviceId)}>{deviceName?.(e.deviceId) ?? e.deviceId}</Link> : <span className="muted">—</span>}
                </td>
              ) : null}
              <td className="hide-sm mono small">{e.actor ?? <span className="muted">system</span>}</td>
              <td className="mono small ev-data">{summarizeData(e.data)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
