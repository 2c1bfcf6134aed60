// Counts failed authentications per client address in a fixed window and blocks an address
// that exceeds the limit until its window ends. In memory: a restart forgets, which is fine
// for slowing down guessing (tokens have 256 bits; passwords go through scrypt).
export class AuthFailureLimiter {
  private readonly failures = new Map<string, { count: number; windowStart: number }>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
    private readonly maxTracked = 100_000,
  ) {}

  /** Seconds until the address may try again, or 0 when it is not blocked. */
  retryAfter(address: string): number {
    const entry = this.failures.get(address);
    if (!entry) return 0;
    const elapsed = this.now() - entry.windowStart;
    if (elapsed >= this.windowMs) {
      this.failures.delete(address);
      return 0;
    }
    return entry.count >= this.limit ? Math.ceil((this.windowMs - elapsed) / 1000) : 0;
  }

  recordFailure(address: string): void {
    const t = this.now();
    const entry = this.failures.get(address);
    if (!entry || t - entry.windowStart >= this.windowMs) {
      if (this.failures.size >= this.maxTracked) this.prune(t);
      this.failures.set(address, { count: 1, windowStart: t });
    } else {
      entry.count++;
    }
  }

  private prune(t: number): void {
    for (const [addr, e] of this.failures) if (t - e.windowStart >= this.windowMs) this.failures.delete(addr);
    // Still full: drop the oldest entries rather than grow without bound under a spray of addresses.
    for (const addr of this.failures.keys()) {
      if (this.failures.size < this.maxTracked) break;
      this.failures.delete(addr);
    }
  }
}
