import { formatPhi, HEALTH_TEXT } from '../health';
import type { Health, HealthView } from '../types';

/** alive / suspect / dead / unknown, coloured like the device states. */
export function HealthBadge({ health }: { health: Health | string }) {
  return (
    <span className={`badge health-${health}`} data-health={health} title={HEALTH_TEXT[health as Health] ?? undefined}>
      {health}
    </span>
  );
}

/** phi of the heartbeat detector, with what it means as a tooltip. */
export function Phi({ health }: { health: HealthView | undefined }) {
  const phi = health?.phi ?? null;
  const title = phi === null ? 'No heartbeats yet' : `Suspicion (phi accrual) of the heartbeat detector; suspect from the group policy's threshold (8 by default)${health?.reason ? ` — ${health.reason}` : ''}`;
  return (
    <span className={`phi mono${health?.health === 'suspect' || health?.health === 'dead' ? ' phi-high' : ''}`} data-phi={phi ?? ''} title={title}>
      {formatPhi(phi)}
    </span>
  );
}
