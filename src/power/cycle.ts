// A power cycle for peers without their own: off, keep the power off long enough for the Pi's
// capacitors to drain (a Pi 4 can ride through a short gap and never reset), then on. Each half
// has its own time limit; the pause is not counted against either.
import type { PowerTarget } from './types.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function offPauseOn(
  target: PowerTarget,
  off: (t: PowerTarget) => Promise<void>,
  on: (t: PowerTarget) => Promise<void>,
  pauseMs: number,
): Promise<void> {
  await off(target);
  await sleep(pauseMs);
  await on(target);
}
