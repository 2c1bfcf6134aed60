import type { DeviceState } from '../types';

export function StateBadge({ state }: { state: DeviceState | string }) {
  return (
    <span className={`badge state-${state}`} data-state={state}>
      {state}
    </span>
  );
}
