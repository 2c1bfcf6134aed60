// Lifeguard's Local Health Multiplier (memberlist awareness.go). A member that misses acks it
// should have got, misses nacks from the peers it asked to help, or has to refute suspicions of
// itself is probably the slow one (overloaded CPU, a full socket buffer); it raises its score and
// probes more slowly and patiently instead of accusing healthy peers. Successful probes lower it.

export class Awareness {
  private value = 0;

  /** `max` is the multiplier ceiling (memberlist AwarenessMaxMultiplier, 8): score stays in [0, max). */
  constructor(private readonly max: number) {}

  get score(): number {
    return this.value;
  }

  applyDelta(delta: number): void {
    const v = this.value + delta;
    this.value = v < 0 ? 0 : v > this.max - 1 ? Math.max(0, this.max - 1) : v;
  }

  /** Timeout scaled by (score + 1). */
  scale(ms: number): number {
    return ms * (this.value + 1);
  }
}
