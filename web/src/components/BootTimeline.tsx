// The "Boot" card on the device page: the device's latest network boot as phases, from its
// events. Live: the page merges stream events into `events`, and this re-derives the timeline.
import { useEffect, useMemo, useState } from 'react';
import { api } from '../api';
import { bootTimeline, type BootStep } from '../boot';
import { mergeEvents } from '../events';
import { dateTime, formatDuration, relativeTime, useNow } from '../format';
import { useLive } from '../live';
import type { DroverEvent, Page } from '../types';

/** Boot events fetched on their own, so a boot is found even when the page's events are newer. */
const BOOT_EVENTS = 100;

export function BootTimeline({ deviceId, events, loading, fresh }: { deviceId: string; events: DroverEvent[]; loading: boolean; fresh?: ReadonlySet<number> }) {
  const { epoch } = useLive();
  const [bootEvents, setBootEvents] = useState<DroverEvent[]>([]);
  useEffect(() => {
    const ctl = new AbortController();
    api
      .get<Page<DroverEvent>>(`/devices/${encodeURIComponent(deviceId)}/events`, { type: 'boot.*', limit: BOOT_EVENTS }, ctl.signal)
      .then((page) => setBootEvents(page.items))
      // The page's own events still feed the timeline; its event list reports API errors.
      .catch(() => {});
    return () => ctl.abort();
  }, [deviceId, epoch]);

  const timeline = useMemo(() => bootTimeline(mergeEvents(bootEvents, events)), [bootEvents, events]);
  const now = useNow();
  const failed = timeline?.steps.find((s) => s.status === 'failed');
  const up = timeline?.steps.some((s) => s.phase === 'agent.up' && s.status === 'done');

  return (
    <section className="card boot-card" aria-labelledby="boot-h" data-testid="boot-timeline">
      <div className="boot-head">
        <h2 id="boot-h">Boot</h2>
        {timeline ? (
          <span className="muted small">
            latest network boot · started{' '}
            <time dateTime={timeline.start} title={dateTime(timeline.start)}>
              {relativeTime(timeline.start, now)}
            </time>
          </span>
        ) : null}
        {failed ? <span className="badge state-failed boot-outcome">Failed at {failed.label}</span> : up ? <span className="badge state-running boot-outcome">Up</span> : null}
      </div>
      {timeline ? (
        <ol className="boot-steps">
          {timeline.steps.map((s, i) => (
            <Step
              key={s.phase}
              step={s}
              start={timeline.start}
              now={now}
              next={timeline.steps[i + 1]}
              current={s.status !== 'pending' && timeline.steps[i + 1]?.status !== 'failed' && timeline.steps[i + 1]?.status !== 'done'}
              fresh={!!s.latest && !!fresh?.has(s.latest.id)}
            />
          ))}
        </ol>
      ) : (
        <p className="muted boot-empty">{loading ? 'Loading…' : 'No network boot seen yet'}</p>
      )}
    </section>
  );
}

function Step(props: { step: BootStep; start: string; now: number; next: BootStep | undefined; current: boolean; fresh: boolean }) {
  const { step, start, now, next, current, fresh } = props;
  const e = step.latest;
  const offset = e ? Date.parse(e.time) - Date.parse(start) : 0;
  const classes = ['boot-step', `boot-${step.status}`, next ? `boot-to-${next.status}` : 'boot-last', fresh ? 'boot-fresh' : ''].filter(Boolean).join(' ');
  const title = step.events.length > 1 ? `${step.phase} (${step.events.length} events)` : step.phase;
  return (
    <li className={classes} data-phase={step.phase} data-status={step.status} aria-current={current ? 'step' : undefined}>
      <div className="boot-track" aria-hidden="true">
        <span className="boot-dot">
          <Mark status={step.status} />
        </span>
      </div>
      <div className="boot-name" title={title}>
        {step.label}
        <span className="visually-hidden"> — {step.status}</span>
      </div>
      {e ? (
        <>
          <div className="boot-time small">
            <time dateTime={e.time} title={dateTime(e.time)}>
              {relativeTime(e.time, now)}
            </time>
            {offset >= 1 ? <span className="boot-offset"> · +{formatDuration(offset)}</span> : null}
          </div>
          <div className="boot-summary small" title={step.summary || undefined}>
            {step.summary || '\u00a0'}
          </div>
        </>
      ) : (
        <div className="boot-time small">{step.summary}</div>
      )}
    </li>
  );
}

function Mark({ status }: { status: BootStep['status'] }) {
  if (status === 'pending') return null;
  return (
    <svg viewBox="0 0 12 12" width="10" height="10" fill="none" stroke="currentColor" strokeWidth="2" strokeLinecap="round" strokeLinejoin="round">
      {status === 'done' ? <path d="M2.5 6.3 5 8.6l4.5-5" /> : <path d="M3.2 3.2l5.6 5.6M8.8 3.2 3.2 8.8" />}
    </svg>
  );
}
