// Lifeguard's dynamic suspicion timeout (memberlist suspicion.go). A suspicion starts at `max`
// and shrinks logarithmically toward `min` as independent members confirm it: a member suspected
// by one peer with a sick network card gets a long time to refute, one that many peers cannot
// reach is declared dead quickly. With k = 0 expected confirmations the timer is simply `min`
// (plain SWIM, or a group too small to produce confirmations).
import type { Scheduler, Timer } from './scheduler.js';

/** memberlist's suspicionTimeout: mult · max(1, log10(max(1, n))) · probe interval. */
export function suspicionTimeout(suspicionMult: number, n: number, probeIntervalMs: number): number {
  const nodeScale = Math.max(1, Math.log10(Math.max(1, n)));
  return Math.floor(suspicionMult * nodeScale * probeIntervalMs);
}

/**
 * Total timeout after `n` of `k` expected confirmations:
 * max − (max − min)·log(n+1)/log(k+1), floored at min (whole milliseconds, as memberlist).
 */
export function suspicionTimeoutAfter(n: number, k: number, minMs: number, maxMs: number): number {
  if (k < 1) return minMs;
  const frac = Math.log(n + 1) / Math.log(k + 1);
  const raw = Math.floor(maxMs - frac * (maxMs - minMs));
  return raw < minMs ? minMs : raw;
}

export class Suspicion {
  private n = 0;
  private readonly start: number;
  private timer: Timer;
  private readonly confirmedBy = new Set<string>();
  private fired = false;

  /**
   * `from` (the first accuser) never counts as a confirmation: our own suspicion can come back
   * to us through gossip.
   */
  constructor(
    private readonly sched: Scheduler,
    from: string,
    private readonly k: number,
    private readonly minMs: number,
    private readonly maxMs: number,
    private readonly onTimeout: (confirmations: number) => void,
  ) {
    this.confirmedBy.add(from);
    this.start = sched.now();
    this.timer = sched.setTimeout(() => this.fire(), k < 1 ? minMs : maxMs);
  }

  get confirmations(): number {
    return this.n;
  }

  /** The whole timeout as it stands now (from the start of the suspicion). */
  get timeoutMs(): number {
    return suspicionTimeoutAfter(this.n, this.k, this.minMs, this.maxMs);
  }

  /**
   * Counts an independent accuser; true when it was new information (the caller re-gossips
   * it so other members can count it too), false for duplicates or once k is reached.
   */
  confirm(from: string): boolean {
    if (this.fired || this.n >= this.k) return false;
    if (this.confirmedBy.has(from)) return false;
    this.confirmedBy.add(from);
    this.n++;
    const remaining = this.timeoutMs - (this.sched.now() - this.start);
    this.timer.cancel();
    this.timer = this.sched.setTimeout(() => this.fire(), remaining > 0 ? remaining : 0);
    return true;
  }

  cancel(): void {
    this.fired = true;
    this.timer.cancel();
  }

  private fire(): void {
    if (this.fired) return;
    this.fired = true;
    this.onTimeout(this.n);
  }
}
