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

// Akka's PhiAccrualFailureDetectorSpec, value for value (its spec uses minStdDeviation 10 ms).
describe('phi accrual: Akka spec values', () => {
  it('realistic phi values for mean 1000 ms, std 100 ms', () => {
    const expected: [number, number][] = [
      [0, 0.0],
      [500, 0.1],
      [1000, 0.3],
      [1200, 1.6],
      [1400, 4.7],
      [1600, 10.8],
      [1700, 15.3],
    ];
    for (const [diff, phi] of expected) assert.ok(Math.abs(phiOf(diff, 1000, 100) - phi) <= 0.1, `phi(${diff}) = ${phiOf(diff, 1000, 100)}, want ${phi} ± 0.1`);
  });

  it('phi from the first-heartbeat guess when only one heartbeat arrived', () => {
    const d = new PhiAccrualDetector({ minStdDeviationMs: 10, firstHeartbeatEstimateMs: 1000 });
    d.heartbeat(0);
    assert.ok(Math.abs(d.phi(1000) - 0.3) <= 0.2);
    assert.ok(Math.abs(d.phi(2000) - 4.5) <= 0.3);
    assert.ok(d.phi(3000) > 15);
  });

  it('marks a node dead after missed heartbeats and available again once they resume', () => {
    const d = new PhiAccrualDetector({ threshold: 3, minStdDeviationMs: 10 });
    d.heartbeat(0);
    d.heartbeat(1000);
    d.heartbeat(1100);
    assert.equal(d.available(1200), true);
    assert.equal(d.available(8200), false);
    d.heartbeat(8200);
    d.heartbeat(9200);
    d.heartbeat(10_200);
    assert.equal(d.available(10_300), true);
  });

  it('uses only maxSampleSize intervals: same phi once the old ones slid out', () => {
    const d = new PhiAccrualDetector({ maxSampleSize: 3, minStdDeviationMs: 10 });
    for (const t of [0, 100, 200, 300]) d.heartbeat(t);
    const phi1 = d.phi(400);
    for (const t of [1000, 1500, 2000, 2500]) d.heartbeat(t);
    const phi2 = d.phi(3000);
    assert.ok(Math.abs(phi1 - phi2) < 0.001, `${phi1} vs ${phi2}`);
  });
});
