// Discrete-event scheduler in virtual time: a binary min-heap of timers ordered by (due time,
// insertion order), run synchronously. Time only moves when the caller runs it, and jumps straight
// to the next due timer, so idle stretches cost nothing. Equal due times fire in the order they
// were scheduled, which keeps simulations deterministic for a given random seed.
//
// Callbacks must not rely on promise continuations running "in between" timers: the run loop is
// synchronous, so microtasks queued by a timer only run after run*() returns. The gossip code
// is written callback-style for this reason.
import type { Scheduler, Timer } from './scheduler.js';

class Entry implements Timer {
  cancelled = false;
  constructor(
    readonly at: number,
    readonly seq: number,
    readonly fn: () => void,
  ) {}
  cancel(): void {
    this.cancelled = true;
  }
}

export class VirtualScheduler implements Scheduler {
  private heap: Entry[] = [];
  private seq = 0;
  private time: number;
  /** Timers fired so far (for benchmark reporting). */
  fired = 0;

  constructor(startMs = 0) {
    this.time = startMs;
  }

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): Timer {
    const e = new Entry(this.time + (ms > 0 ? ms : 0), this.seq++, fn);
    this.push(e);
    return e;
  }

  /** Timers still queued (cancelled ones included until they reach the top). */
  get pending(): number {
    return this.heap.length;
  }

  /** Fires every timer due at or before `t`, then sets the clock to `t`. */
  runUntil(t: number): void {
    const heap = this.heap;
    while (heap.length > 0) {
      const top = heap[0]!;
      if (top.at > t) break;
      this.pop();
      if (top.cancelled) continue;
      this.time = top.at;
      this.fired++;
      top.fn();
    }
    if (t > this.time) this.time = t;
  }

  runFor(ms: number): void {
    this.runUntil(this.time + ms);
  }

  /**
   * Runs until `done()` holds (checked after every timer) or `limitMs` of virtual time passes.
   * Returns whether the condition was met.
   */
  runUntilCondition(done: () => boolean, limitMs: number): boolean {
    const end = this.time + limitMs;
    const heap = this.heap;
    if (done()) return true;
    while (heap.length > 0) {
      const top = heap[0]!;
      if (top.at > end) break;
      this.pop();
      if (top.cancelled) continue;
      this.time = top.at;
      this.fired++;
      top.fn();
      if (done()) return true;
    }
    this.time = Math.max(this.time, end);
    return done();
  }

  private less(a: Entry, b: Entry): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(e: Entry): void {
    const heap = this.heap;
    let i = heap.length;
    heap.push(e);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent]!;
      if (!this.less(e, p)) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = e;
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop()!;
    const n = heap.length;
    if (n === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.less(heap[r]!, heap[l]!) ? r : l;
      if (!this.less(heap[c]!, last)) break;
      heap[i] = heap[c]!;
      i = c;
    }
    heap[i] = last;
  }
}
