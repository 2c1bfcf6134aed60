// The piggyback queue: memberlist's retransmit limit, fewest-sent-first ordering, replacement
// of older news about the same member, the byte budget, and the done callback leave() awaits.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BroadcastQueue, retransmitLimit } from './broadcast-queue.js';

const msg = (s: string) => Buffer.from(s);

describe('broadcast queue', () => {
  it('retransmit limit = mult · ceil(log10(n + 1)) (memberlist util.go)', () => {
    assert.equal(retransmitLimit(4, 0), 0);
    assert.equal(retransmitLimit(4, 1), 4);
    assert.equal(retransmitLimit(4, 9), 4);
    assert.equal(retransmitLimit(4, 10), 8);
    assert.equal(retransmitLimit(4, 99), 8);
    assert.equal(retransmitLimit(4, 100), 12);
    assert.equal(retransmitLimit(4, 1000), 16);
    assert.equal(retransmitLimit(3, 5), 3);
  });

  it('sends each message limit times, fewest-sent (then newest) first, then forgets it', () => {
    const q = new BroadcastQueue(1, () => 5); // limit 1 · ceil(log10 6) = 1
    assert.equal(q.limit, 1);
    q.queue('a', msg('aaaaaaaaaa'));
    q.queue('b', msg('bbbbbbbbbb'));
    assert.deepEqual(q.take(2, 1000).map(String), ['bbbbbbbbbb', 'aaaaaaaaaa']);
    assert.equal(q.size, 0);
    assert.deepEqual(q.take(2, 1000), []);

    const q3 = new BroadcastQueue(3, () => 5); // limit 3
    q3.queue('a', msg('aaaaaaaaaa'));
    assert.deepEqual(q3.take(2, 1000).map(String), ['aaaaaaaaaa']);
    q3.queue('b', msg('bbbbbbbbbb'));
    // b has been sent 0 times, a once: b goes first even with room for one only.
    assert.deepEqual(q3.take(2, 12).map(String), ['bbbbbbbbbb']);
    // Both sent once now: the one that reached that count last (b) goes first.
    assert.deepEqual(q3.take(2, 12).map(String), ['bbbbbbbbbb']);
    // a (sent once) before b (twice); b reaches the limit of 3 and is dropped.
    assert.deepEqual(q3.take(2, 1000).map(String), ['aaaaaaaaaa', 'bbbbbbbbbb']);
    assert.deepEqual(q3.take(2, 1000).map(String), ['aaaaaaaaaa']);
    assert.equal(q3.size, 0);
  });

  it('respects the byte budget including per-message overhead', () => {
    const q = new BroadcastQueue(4, () => 10);
    for (let i = 0; i < 10; i++) q.queue(`n${i}`, msg('x'.repeat(20)));
    const got = q.take(2, 100); // 22 bytes each → 4 fit
    assert.equal(got.length, 4);
    assert.equal(q.size, 10);
  });

  it('a newer message about the same member replaces the queued one and completes it', () => {
    const q = new BroadcastQueue(4, () => 10);
    let done = 0;
    q.queue('pi-1', msg('suspect pi-1'), () => done++);
    q.queue('pi-1', msg('alive pi-1 inc 2'));
    assert.equal(done, 1);
    assert.equal(q.size, 1);
    assert.deepEqual(q.take(2, 1000).map(String), ['alive pi-1 inc 2']);
  });

  it('calls onDone once the retransmit limit is reached', () => {
    const q = new BroadcastQueue(2, () => 3); // limit 2
    let done = 0;
    q.queue('me', msg('dead me (left)'), () => done++);
    q.take(2, 1000);
    assert.equal(done, 0);
    q.take(2, 1000);
    assert.equal(done, 1);
    q.clear();
    assert.equal(done, 1);
  });
});
