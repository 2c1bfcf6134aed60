// The clock and timers the gossip member runs on. Production uses Node's timers; simulations
// use VirtualScheduler (virtual-scheduler.ts), so the same SWIM code can live through hours of
// protocol time in seconds of CPU. Everything time-dependent in the member goes through this
// interface: never Date.now(), never setTimeout directly.

export interface Timer {
  /** Idempotent; a cancelled timer never fires. */
  cancel(): void;
}

export interface Scheduler {
  /** Milliseconds on a monotonic clock (the origin is arbitrary). */
  now(): number;
  /** Runs `fn` once after `ms` (0 = as soon as possible, never synchronously). */
  setTimeout(fn: () => void, ms: number): Timer;
}

class RealTimer implements Timer {
  constructor(private handle: NodeJS.Timeout | null) {}
  cancel(): void {
    if (this.handle) clearTimeout(this.handle);
    this.handle = null;
  }
}

/** Wall-clock scheduler: performance.now() and Node timers. */
export class RealScheduler implements Scheduler {
  now(): number {
    return performance.now();
  }

  setTimeout(fn: () => void, ms: number): Timer {
    return new RealTimer(setTimeout(fn, Math.max(0, ms)));
  }
}
