// The "Health" card on the device page: alive/suspect/dead with its reason, the detector's phi,
// the agent, and the remediation ladder's current step. The page keeps `health` current from
// the stream's `health` messages; phi moves between them, so it is refreshed now and then.
import { useEffect, type ReactNode } from 'react';
import { api } from '../api';
import { STEP_LABEL } from '../health';
import type { HealthView } from '../types';
import { HealthBadge, Phi } from './HealthBadge';
import { RelativeTime } from './RelativeTime';

const PHI_REFRESH_MS = 10_000;

export function HealthSummary({ deviceId, health, onRefresh }: { deviceId: string; health: HealthView | undefined; onRefresh: (h: HealthView) => void }) {
  useEffect(() => {
    const ctl = new AbortController();
    const timer = setInterval(() => {
      if (document.visibilityState !== 'visible') return;
      api
        .get<HealthView>(`/devices/${encodeURIComponent(deviceId)}/health`, undefined, ctl.signal)
        .then(onRefresh)
        .catch(() => {}); // the next refresh or a stream message will do
    }, PHI_REFRESH_MS);
    return () => {
      clearInterval(timer);
      ctl.abort();
    };
  }, [deviceId, onRefresh]);

  const h = health;
  const r = h?.remediation;
  return (
    <section className="card health-card" aria-labelledby="health-h" data-testid="health" data-health={h?.health ?? 'unknown'}>
      <div className="health-head">
        <h2 id="health-h">Health</h2>
        <HealthBadge health={h?.health ?? 'unknown'} />
      </div>
      <p className="health-reason">{h?.reason ?? 'No agent has connected yet.'}</p>
      <dl className="details">
        <Row k="Suspicion (φ)">
          <Phi health={h} />
        </Row>
        <Row k="Since">
          <RelativeTime iso={h?.since} empty="—" />
        </Row>
        <Row k="Last heartbeat">
          <RelativeTime iso={h?.lastHeartbeat} />
        </Row>
        <Row k="Agent">
          {h?.agent.connected ? (
            <span data-agent="connected">connected{h.agent.version ? <span className="muted"> · v{h.agent.version}</span> : null}</span>
          ) : (
            <span className="muted" data-agent="offline">
              not connected
            </span>
          )}
        </Row>
        <Row k="Booted">
          <RelativeTime iso={h?.agent.bootedAt} empty="—" />
        </Row>
        <Row k="Remediation">
          {r?.step ? (
            <span className="remediation-now">
              {STEP_LABEL[r.step] ?? r.step} running
              {r.stepStartedAt ? (
                <>
                  {' '}
                  · started <RelativeTime iso={r.stepStartedAt} />
                </>
              ) : null}
              {r.reason ? <span className="muted small"> · {r.reason}</span> : null}
            </span>
          ) : r?.failed ? (
            <span className="remediation-failed">marked failed: waits for a person</span>
          ) : (
            <span className="muted">none running</span>
          )}
          {r && r.stepsLastHour > 0 ? <span className="muted small"> · {r.stepsLastHour} step{r.stepsLastHour === 1 ? '' : 's'} in the last hour</span> : null}
        </Row>
      </dl>
    </section>
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
