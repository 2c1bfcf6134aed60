// Lifeguard's dynamic suspicion timeout against memberlist's own test table
// (suspicion_test.go TestSuspicion_remainingSuspicionTime) and its timer behaviour in virtual
// time, plus the Local Health Multiplier's bounds.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Awareness } from './awareness.js';
import { Suspicion, suspicionTimeout, suspicionTimeoutAfter } from './suspicion.js';
import { VirtualScheduler } from './virtual-scheduler.js';

describe('suspicion timeout', () => {
  it('min = mult · max(1, log10 N) · probe interval; 12 s / 72 s at N = 1,000 with memberlist defaults', () => {
    assert.equal(suspicionTimeout(4, 1000, 1000), 12_000);
    assert.equal(6 * suspicionTimeout(4, 1000, 1000), 72_000);
    assert.equal(suspicionTimeout(4, 5, 1000), 4000, 'below 10 members the scale is 1');
    assert.equal(suspicionTimeout(4, 0, 1000), 4000);
    assert.equal(suspicionTimeout(4, 100, 1000), 8000);
    assert.equal(suspicionTimeout(4, 50, 1000), 6795);
  });

  it('shrinks logarithmically with confirmations (memberlist remainingSuspicionTime table)', () => {
    // (n, k, elapsed, min, max) → remaining = total − elapsed
    const table: [number, number, number, number, number, number][] = [
      [0, 3, 0, 2000, 30_000, 30_000],
      [1, 3, 2000, 2000, 30_000, 14_000],
      [2, 3, 3000, 2000, 30_000, 4810],
      [3, 3, 4000, 2000, 30_000, -2000],
      [4, 3, 5000, 2000, 30_000, -3000],
      [5, 3, 10_000, 2000, 30_000, -8000],
    ];
    for (const [n, k, elapsed, min, max, remaining] of table) assert.equal(suspicionTimeoutAfter(n, k, min, max) - elapsed, remaining, `n=${n}`);
    assert.equal(suspicionTimeoutAfter(0, 0, 2000, 30_000), 2000, 'k = 0 → min');
  });

  it('fires at max without confirmations, earlier with each, and at min once k arrived', () => {
    const fire = (confirmAt: number[]) => {
      const s = new VirtualScheduler();
      let firedAt = -1;
      let confirmations = -1;
      const susp = new Suspicion(s, 'accuser', 3, 2000, 30_000, (n) => {
        firedAt = s.now();
        confirmations = n;
      });
      for (const [i, t] of confirmAt.entries()) {
        s.runUntil(t);
        assert.equal(susp.confirm(`c${i}`), true);
        assert.equal(susp.confirm(`c${i}`), false, 'duplicates do not count');
      }
      assert.equal(susp.confirm('accuser'), false, 'the first accuser does not count');
      s.runFor(60_000);
      return { firedAt, confirmations };
    };
    assert.deepEqual(fire([]), { firedAt: 30_000, confirmations: 0 });
    assert.deepEqual(fire([1000]), { firedAt: 16_000, confirmations: 1 });
    assert.deepEqual(fire([1000, 2000]), { firedAt: 7810, confirmations: 2 });
    assert.deepEqual(fire([1000, 2000, 3000]), { firedAt: 3000, confirmations: 3 }, 'past min already: fires right away');
    assert.deepEqual(fire([100, 200, 300]), { firedAt: 2000, confirmations: 3 });
  });

  it('stops counting at k and never fires once cancelled', () => {
    const s = new VirtualScheduler();
    let fired = 0;
    const susp = new Suspicion(s, 'a', 1, 1000, 6000, () => fired++);
    assert.equal(susp.confirm('b'), true);
    assert.equal(susp.confirm('c'), false);
    assert.equal(susp.timeoutMs, 1000);
    susp.cancel();
    s.runFor(10_000);
    assert.equal(fired, 0);
  });
});

describe('local health multiplier', () => {
  it('stays within [0, max−1] and scales timeouts by score + 1', () => {
    const a = new Awareness(8);
    a.applyDelta(-1);
    assert.equal(a.score, 0);
    assert.equal(a.scale(500), 500);
    a.applyDelta(3);
    assert.equal(a.scale(1000), 4000);
    a.applyDelta(100);
    assert.equal(a.score, 7);
    assert.equal(a.scale(1000), 8000);
  });
});
