// The phi-accrual detector against the behaviour Akka's PhiAccrualFailureDetectorSpec pins down:
// phi is 0 before any heartbeat, rises with silence, stays low while heartbeats keep their
// rhythm, honours the minimum standard deviation and the acceptable pause, and the logistic
// approximation matches the normal distribution's tail.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PhiAccrualDetector, phiOf } from './phi.js';

describe('phi accrual', () => {
  it('phiOf: 0.3 at the mean, ~ -log10(1-Φ(y)) in the tail', () => {
    assert.ok(Math.abs(phiOf(1000, 1000, 100) - 0.301) < 0.01, 'P(later) = 1/2 at the mean');
    // y = 2: 1 - Φ(2) = 0.02275 → phi 1.643; y = 3: 0.00135 → 2.87
    assert.ok(Math.abs(phiOf(1200, 1000, 100) - 1.643) < 0.05);
    assert.ok(Math.abs(phiOf(1300, 1000, 100) - 2.87) < 0.05);
    assert.ok(phiOf(500, 1000, 100) < 0.01);
  });

  it('rises monotonically with silence and crosses 8 shortly after the usual interval', () => {
    const d = new PhiAccrualDetector({ threshold: 8, minStdDeviationMs: 100 });
    assert.equal(d.phi(0), 0);
    for (let t = 0; t <= 10_000; t += 1000) d.heartbeat(t);
    let last = -1;
    for (let t = 10_000; t <= 12_000; t += 100) {
      const p = d.phi(t);
      assert.ok(p >= last, `monotonic at ${t}`);
      last = p;
    }
    assert.equal(d.available(10_900), true);
    assert.equal(d.available(13_000), false);
  });

  it('the acceptable pause shifts the curve; a jittery history widens it', () => {
    const strict = new PhiAccrualDetector({ acceptableHeartbeatPauseMs: 0 });
    const lenient = new PhiAccrualDetector({ acceptableHeartbeatPauseMs: 3000 });
    for (let t = 0; t <= 20_000; t += 1000) {
      strict.heartbeat(t);
      lenient.heartbeat(t);
    }
    assert.ok(strict.phi(23_000) > 8);
    assert.ok(lenient.phi(23_000) < 1);
    const jittery = new PhiAccrualDetector();
    for (let i = 0, t = 0; i < 50; i++, t += i % 2 ? 500 : 1500) jittery.heartbeat(t);
    assert.ok(jittery.phi(jittery['last']! + 2000) < strict.phi(22_000), 'a wide distribution suspects later');
  });

  it('keeps at most maxSampleSize intervals', () => {
    const d = new PhiAccrualDetector({ maxSampleSize: 3 });
    for (let t = 0; t < 100_000; t += 1000) d.heartbeat(t);
    assert.equal(d.samples, 3);
  });
});
