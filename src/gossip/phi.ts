// The phi-accrual failure detector (Hayashibara et al. 2004) as Akka and Cassandra run it: phi
// is -log10 of the probability that a heartbeat still arrives after the silence so far, given
// the mean and standard deviation of recent inter-arrival times. phi = 8 means a 1e-8 chance
// of being wrong when calling the peer down. Akka's logistic approximation of the normal CDF.

export interface PhiOptions {
  /** phi at which `available` turns false (Akka/Cassandra: 8). */
  threshold?: number;
  /** Inter-arrival samples kept (Akka: 1000). */
  maxSampleSize?: number;
  /** Floor on the standard deviation so a metronome-regular peer is not called down for a few ms of lateness (Akka: 100 ms). */
  minStdDeviationMs?: number;
  /** Silence tolerated on top of the mean before phi rises (Akka cluster: 3 s; 0 = none). */
  acceptableHeartbeatPauseMs?: number;
  /** Assumed interval before the second heartbeat (Akka: 1 s). */
  firstHeartbeatEstimateMs?: number;
}

export class PhiAccrualDetector {
  readonly threshold: number;
  private readonly max: number;
  private readonly minStd: number;
  private readonly pause: number;
  private readonly first: number;
  // Grown on demand up to `max`, then used as a ring: a gossip member keeps one detector per
  // peer, and a 1,000-member group would otherwise pin 8 KB per peer per member up front.
  private readonly intervals: number[] = [];
  private count = 0;
  private head = 0;
  private sum = 0;
  private sumSq = 0;
  private last: number | null = null;

  constructor(o: PhiOptions = {}) {
    this.threshold = o.threshold ?? 8;
    this.max = o.maxSampleSize ?? 1000;
    this.minStd = o.minStdDeviationMs ?? 100;
    this.pause = o.acceptableHeartbeatPauseMs ?? 0;
    this.first = o.firstHeartbeatEstimateMs ?? 1000;
  }

  /** Records a heartbeat arrival (ms, monotonic or wall clock, but one kind only). */
  heartbeat(at: number): void {
    if (this.last === null) {
      // Akka seeds the history with the first estimate ± a quarter, so phi is defined from the start.
      const std = this.first / 4;
      this.add(this.first - std);
      this.add(this.first + std);
    } else if (at > this.last) {
      this.add(at - this.last);
    }
    this.last = at;
  }

  private add(interval: number): void {
    if (this.count === this.max) {
      const old = this.intervals[this.head]!;
      this.sum -= old;
      this.sumSq -= old * old;
      this.intervals[this.head] = interval;
      this.head = (this.head + 1) % this.max;
    } else {
      this.intervals.push(interval);
      this.count++;
    }
    this.sum += interval;
    this.sumSq += interval * interval;
  }

  get samples(): number {
    return this.count;
  }

  /** Suspicion level now; 0 before the first heartbeat. */
  phi(at: number): number {
    if (this.last === null || this.count === 0) return 0;
    const mean = this.sum / this.count + this.pause;
    const variance = Math.max(0, this.sumSq / this.count - (this.sum / this.count) ** 2);
    const std = Math.max(Math.sqrt(variance), this.minStd);
    return phiOf(at - this.last, mean, std);
  }

  available(at: number): boolean {
    return this.phi(at) < this.threshold;
  }
}

/** Akka's PhiAccrualFailureDetector.phi: logistic approximation, accurate to 1e-3 in the tail. */
export function phiOf(timeDiff: number, mean: number, std: number): number {
  const y = (timeDiff - mean) / std;
  const e = Math.exp(-y * (1.5976 + 0.070566 * y * y));
  if (timeDiff > mean) return -Math.log10(e / (1 + e));
  return -Math.log10(1 - 1 / (1 + e));
}
