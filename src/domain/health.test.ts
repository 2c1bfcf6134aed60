// Health rules: policy parsing (every bad field named), maintenance windows (incl. across
// midnight), classification from phi and the group's view, and when a ladder may start.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DroverError } from './errors.js';
import { DEFAULT_HEALTH_POLICY, classify, inMaintenance, mayStartLadder, parseHealthPolicy, stepsInLastHour } from './health.js';

describe('health policy', () => {
  it('defaults, overrides and refusals naming the field', () => {
    assert.deepEqual(parseHealthPolicy(undefined), DEFAULT_HEALTH_POLICY);
    const p = parseHealthPolicy({ suspectPhi: 5, ladder: ['power-cycle', 'fail'], maintenance: ['Sun 02:00-04:00'] });
    assert.equal(p.suspectPhi, 5);
    assert.deepEqual(p.ladder, ['power-cycle', 'fail']);
    for (const [bad, field] of [
      [{ suspectPhi: -1 }, 'suspectPhi'],
      [{ ladder: ['dance'] }, 'ladder'],
      [{ maintenance: ['someday'] }, 'someday'],
      [{ colour: 'red' }, 'colour'],
      [{ remediate: 'yes' }, 'remediate'],
    ] as const) {
      assert.throws(() => parseHealthPolicy(bad), (e: unknown) => e instanceof DroverError && e.code === 'DROVER_VALIDATION' && e.message.includes(field));
    }
  });

  it('maintenance windows, also across midnight (UTC)', () => {
    const sun3 = new Date('2026-11-22T03:00:00Z'); // a Sunday
    assert.equal(inMaintenance(['Sun 02:00-04:00'], sun3), true);
    assert.equal(inMaintenance(['Sat 02:00-04:00'], sun3), false);
    assert.equal(inMaintenance(['Sat 23:00-04:00'], sun3), true);
    assert.equal(inMaintenance(['daily 02:59-03:01'], sun3), true);
    assert.equal(inMaintenance(['mon,tue 02:00-04:00'], sun3), false);
  });
});

describe('classify', () => {
  const base = { phi: 0, suspectSince: null, now: 100_000, gossipDead: false, policy: DEFAULT_HEALTH_POLICY, hasHeartbeats: true };
  it('alive below the threshold, suspect above, dead after deadAfterSeconds, dead at once when the group says so', () => {
    assert.equal(classify({ ...base, hasHeartbeats: false }), 'unknown');
    assert.equal(classify(base), 'alive');
    assert.equal(classify({ ...base, phi: 9, suspectSince: 90_000 }), 'suspect');
    assert.equal(classify({ ...base, phi: 9, suspectSince: 100_000 - 30_000 }), 'dead');
    assert.equal(classify({ ...base, gossipDead: true }), 'dead');
  });
});

describe('mayStartLadder', () => {
  const now = new Date('2026-11-21T12:00:00Z');
  const ago = (s: number) => new Date(now.getTime() - s * 1000).toISOString();
  it('respects grace after boot, maintenance, a running ladder, failed and back-off', () => {
    const p = DEFAULT_HEALTH_POLICY;
    assert.deepEqual(mayStartLadder({}, p, now, ago(3600)), { ok: true });
    assert.equal(mayStartLadder({}, p, now, ago(10)).ok, false);
    assert.equal(mayStartLadder({}, { ...p, maintenance: ['daily 11:00-13:00'] }, now, null).ok, false);
    assert.equal(mayStartLadder({ step: 0 }, p, now, null).ok, false);
    assert.equal(mayStartLadder({ failed: true }, p, now, null).ok, false);
    assert.equal(mayStartLadder({}, { ...p, remediate: false }, now, null).ok, false);
    // one ladder ended 30 s ago: back-off 60 s; two in the hour: 120 s
    assert.equal(mayStartLadder({ ended: [ago(30)] }, p, now, null).ok, false);
    assert.equal(mayStartLadder({ ended: [ago(90)] }, p, now, null).ok, true);
    assert.equal(mayStartLadder({ ended: [ago(1000), ago(90)] }, p, now, null).ok, false);
    assert.equal(stepsInLastHour({ history: [ago(4000), ago(100), ago(10)] }, now), 2);
  });
});
