import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { BUFFER_FILE, SampleBuffer } from './buffer.js';
import type { Metrics } from './protocol.js';

const M: Metrics = { cpu: [0.1, 0.2, 0.3, 0.4], load: [0.5, 0.4, 0.3], mem: [4_000_000_000, 3_000_000_000], disk: [32e9, 20e9], temp: 48.2, net: [100, 200], uptime: 1234 };

const dirs: string[] = [];
const open: SampleBuffer[] = [];
after(() => {
  for (const b of open) {
    try {
      b.close();
    } catch {
      /* closed by the test */
    }
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'drover-agent-buffer-'));
  dirs.push(d);
  return d;
}

function buf(dir: string, opts: { capacity?: number; compactBytes?: number } = {}): SampleBuffer {
  const b = SampleBuffer.open({ dir, ...opts });
  open.push(b);
  return b;
}

const seqs = (b: SampleBuffer, after?: number, max = 100_000) => b.pending(after, max).map((s) => s.seq);

describe('SampleBuffer', () => {
  it('numbers samples from 1 under a random stream id, and replays them oldest first in batches', () => {
    const b = buf(tempDir());
    assert.match(b.stream, /^[0-9a-f]{24}$/);
    for (let i = 0; i < 12; i++) assert.equal(b.push(1000 + i, M).seq, i + 1);
    assert.equal(b.size, 12);
    assert.deepEqual(seqs(b, undefined, 5), [1, 2, 3, 4, 5]);
    assert.deepEqual(seqs(b, 5, 5), [6, 7, 8, 9, 10]);
    assert.deepEqual(seqs(b, 10, 5), [11, 12]);
    assert.deepEqual(b.pending(12), []);
    assert.equal(b.hasPending(11), true);
    assert.equal(b.hasPending(12), false);
    assert.deepEqual(b.pending(0, 1)[0], { seq: 1, ts: 1000, m: M });
  });

  it('ack drops everything up to the seq (cumulative), and ignores old acks', () => {
    const b = buf(tempDir());
    for (let i = 0; i < 10; i++) b.push(i, M);
    b.ack(4);
    assert.deepEqual(seqs(b), [5, 6, 7, 8, 9, 10]);
    b.ack(2);
    assert.equal(b.ackedSeq, 4);
    b.ack(10);
    assert.equal(b.size, 0);
    assert.equal(b.push(0, M).seq, 11);
  });

  it('a restart keeps the unacked samples in order, the stream and the seq', () => {
    const dir = tempDir();
    const a = buf(dir);
    for (let i = 0; i < 8; i++) a.push(i, M);
    a.ack(3);
    const stream = a.stream;
    // No close(): a crash. Appends are on disk as they happen.
    const b = buf(dir);
    assert.equal(b.stream, stream);
    assert.deepEqual(seqs(b), [4, 5, 6, 7, 8]);
    assert.equal(b.ackedSeq, 3);
    assert.equal(b.push(99, M).seq, 9, 'seq keeps increasing across restarts');
    a.close();
  });

  it('keeps the seq across restarts even when everything was acked and compacted', () => {
    const dir = tempDir();
    const a = buf(dir);
    for (let i = 0; i < 5; i++) a.push(i, M);
    a.ack(5);
    a.close();
    const b = buf(dir);
    assert.equal(b.size, 0);
    assert.equal(b.push(0, M).seq, 6);
  });

  it('tolerates a last line cut short by a crash mid-append, and keeps appending cleanly', () => {
    const dir = tempDir();
    const a = buf(dir);
    for (let i = 0; i < 3; i++) a.push(i, M);
    a.close();
    appendFileSync(join(dir, BUFFER_FILE), '{"seq":4,"ts":3,"m":{"cpu":[0.1');
    const b = buf(dir);
    assert.deepEqual(seqs(b), [1, 2, 3]);
    assert.equal(b.push(5, M).seq, 4);
    const c = buf(dir);
    assert.deepEqual(seqs(c), [1, 2, 3, 4]);
    assert.deepEqual(c.pending(3)[0]!.m, M);
  });

  it('skips a damaged line in the middle and starts a new stream when the header is garbage', () => {
    const dir = tempDir();
    const a = buf(dir);
    for (let i = 0; i < 2; i++) a.push(i, M);
    a.close();
    const file = join(dir, BUFFER_FILE);
    const lines = readFileSync(file, 'utf8').split('\n');
    writeFileSync(file, [lines[0], lines[1], 'garbage{', lines[2], ''].join('\n'));
    const b = buf(dir);
    assert.deepEqual(seqs(b), [1, 2]);
    b.close();

    writeFileSync(file, 'not a header\n{"seq":1,"ts":1,"m":{}}\n');
    const c = buf(dir);
    assert.notEqual(c.stream, a.stream);
    assert.equal(c.size, 0);
    assert.equal(c.push(0, M).seq, 1, 'a new stream starts at 1');
  });

  it('drops the oldest when the ring is full, and counts them', () => {
    const dir = tempDir();
    const b = buf(dir, { capacity: 5 });
    for (let i = 0; i < 12; i++) b.push(i, M);
    assert.equal(b.size, 5);
    assert.equal(b.dropped, 7);
    assert.deepEqual(seqs(b), [8, 9, 10, 11, 12]);
    b.close();
    // The file holds more than the ring; a reopen keeps the newest `capacity`.
    const c = buf(dir, { capacity: 5 });
    assert.deepEqual(seqs(c), [8, 9, 10, 11, 12]);
  });

  it('compacts the file by atomic rewrite once it is mostly acked lines', () => {
    const dir = tempDir();
    const file = join(dir, BUFFER_FILE);
    const b = buf(dir, { compactBytes: 4096 });
    let max = 0;
    for (let i = 0; i < 200; i++) {
      b.ack(b.push(i, M).seq); // steady state: every sample acked at once
      max = Math.max(max, statSync(file).size);
    }
    assert.ok(max < 4096 + 1024, `file stayed small (max ${max} bytes)`);
    b.push(0, M);
    const text = readFileSync(file, 'utf8');
    assert.ok(text.split('\n').length < 40);
    // Still loads to the same state.
    const c = buf(dir);
    assert.deepEqual(seqs(c), [201]);
    assert.equal(c.ackedSeq, 200);
  });

  it('moves past a seq the controller acked beyond its own (restored state), so new samples are not duplicates', () => {
    const b = buf(tempDir());
    b.push(0, M);
    b.ack(500);
    assert.equal(b.size, 0);
    assert.equal(b.push(0, M).seq, 501);
  });
});
