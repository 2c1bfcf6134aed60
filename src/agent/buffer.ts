// The offline buffer: every sample goes here first and stays until the controller acks it, so
// a network outage or an agent restart loses nothing (within the ring's capacity).
//
// In memory: a ring of the unacked samples as their JSON text (a string is far lighter than
// the object; 24 h at 10 s is about 2 MB). On disk: one append-only JSON-lines file in the
// state dir, so a restarted agent finds its unacked samples, its stream id and its next seq:
//
//   {"stream":"…","seq":N,"ack":A}   header, first line: the stream and where it stood
//   {"seq":…,"ts":…,"m":{…}}         a sample
//   {"ack":A}                        everything ≤ A is stored by the controller
//
// Appends are plain write(2)s without fsync (SD cards wear; the default state dir is tmpfs);
// the file is rewritten (temp + fsync + rename, so a crash leaves the old or the new file) when
// at least half of it is dead weight, and once on every open, which also drops a line a crash
// cut short. The stream id lives in the same file as the seq on purpose: a new stream must
// start whenever the seq history is lost, or the controller would ack the new samples as
// duplicates of old ones and drop them.
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { AgentLogger } from './log.js';
import type { Metrics, Sample } from './protocol.js';

export const BUFFER_FILE = 'samples.jsonl';
/** 24 h of samples at the default 10 s interval. */
export const DEFAULT_CAPACITY = 8640;
/** The controller's seq limit; a stream that reaches it is replaced by a new one. */
const MAX_SEQ = 2 ** 31 - 1;

export interface SampleBufferOptions {
  /** State directory (created 0700 if missing). */
  dir: string;
  /** Most unacked samples kept; the oldest go first when full. */
  capacity?: number;
  /** The file is not rewritten before it reaches this size. */
  compactBytes?: number;
  log?: AgentLogger;
}

interface Header {
  stream: string;
  seq: number;
  ack: number;
}

export class SampleBuffer {
  private readonly capacity: number;
  private readonly compactBytes: number;
  private readonly file: string;
  private readonly log: AgentLogger | undefined;
  // The ring: seqs[i] and lines[i] for the `count` entries starting at `head`.
  private readonly seqs: Float64Array;
  private readonly lines: (string | undefined)[];
  private head = 0;
  private count = 0;
  private fd: number | null = null;
  /** Lines in the file and its size, to judge when a rewrite pays. */
  private fileLines = 0;
  private fileBytes = 0;
  private _stream: string;
  private _lastSeq = 0;
  private _acked = 0;
  private _dropped = 0;
  private lastDropWarn = -Infinity;

  private constructor(opts: SampleBufferOptions) {
    this.capacity = Math.max(1, Math.floor(opts.capacity ?? DEFAULT_CAPACITY));
    this.compactBytes = opts.compactBytes ?? 256 * 1024;
    this.file = join(opts.dir, BUFFER_FILE);
    this.log = opts.log;
    this.seqs = new Float64Array(this.capacity);
    this.lines = new Array<string | undefined>(this.capacity);
    this._stream = newStreamId();
  }

  /** Opens (or creates) the buffer in `opts.dir`, loading what a previous run left. */
  static open(opts: SampleBufferOptions): SampleBuffer {
    mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
    const b = new SampleBuffer(opts);
    b.load();
    b.rewrite();
    return b;
  }

  /** Random id of this buffer's seq sequence (hello's `stream`). */
  get stream(): string {
    return this._stream;
  }

  /** Highest seq handed out. */
  get lastSeq(): number {
    return this._lastSeq;
  }

  /** Highest seq the controller has acked. */
  get ackedSeq(): number {
    return this._acked;
  }

  /** Unacked samples held. */
  get size(): number {
    return this.count;
  }

  /** Samples dropped unsent because the ring was full (since this process started). */
  get dropped(): number {
    return this._dropped;
  }

  /** Stores a new sample under the next seq and returns it. */
  push(ts: number, m: Metrics): Sample {
    // 680 years at 10 s, but a stream must never wrap: the controller would drop seqs it has seen.
    if (this._lastSeq >= MAX_SEQ) this.newStream('seq limit reached');
    const sample: Sample = { seq: ++this._lastSeq, ts: Math.round(ts), m };
    const line = JSON.stringify(sample);
    this.ringAdd(sample.seq, line);
    this.append(line);
    this.maybeCompact();
    return sample;
  }

  /** The controller stored everything up to `seq`: drop it here and on disk. */
  ack(seq: number): void {
    if (!Number.isSafeInteger(seq) || seq <= this._acked) return;
    if (seq > this._lastSeq) {
      // The controller knows seqs this buffer never handed out (a restored state dir, a copied
      // SD card). Continuing above them keeps new samples from being taken as duplicates.
      this.log?.warn({ ack: seq, lastSeq: this._lastSeq, stream: this._stream }, 'controller acked a seq beyond this buffer; continuing after it');
      this._lastSeq = Math.min(seq, MAX_SEQ);
    }
    this._acked = seq;
    while (this.count > 0 && this.seqs[this.head]! <= seq) this.ringShift();
    this.append(JSON.stringify({ ack: seq }));
    this.maybeCompact();
  }

  /** Unacked samples after `after` (default: the acked seq), oldest first, at most `max`. */
  pending(after = this._acked, max = 500): Sample[] {
    const out: Sample[] = [];
    for (let i = 0; i < this.count && out.length < max; i++) {
      const j = (this.head + i) % this.capacity;
      if (this.seqs[j]! > after) out.push(JSON.parse(this.lines[j]!) as Sample);
    }
    return out;
  }

  /** Whether a sample after `after` is waiting. */
  hasPending(after = this._acked): boolean {
    return this.count > 0 && this.seqs[(this.head + this.count - 1) % this.capacity]! > after;
  }

  /** Rewrites the file to just the live state (also what a graceful stop does). */
  flush(): void {
    this.rewrite();
  }

  close(): void {
    if (this.fd === null) return;
    try {
      this.rewrite();
    } finally {
      if (this.fd !== null) closeSync(this.fd);
      this.fd = null;
    }
  }

  // ── the ring ──

  private ringAdd(seq: number, line: string): void {
    if (this.count === this.capacity) {
      this.ringShift();
      this._dropped++;
      // Counted, and said at most once a minute: an agent offline for days would otherwise log every sample.
      if (performance.now() - this.lastDropWarn > 60_000) {
        this.lastDropWarn = performance.now();
        this.log?.warn({ dropped: this._dropped, capacity: this.capacity }, 'sample buffer full; dropping the oldest unsent samples');
      }
    }
    const j = (this.head + this.count) % this.capacity;
    this.seqs[j] = seq;
    this.lines[j] = line;
    this.count++;
  }

  private ringShift(): void {
    this.lines[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.count--;
  }

  // ── the file ──

  private load(): void {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log?.warn({ file: this.file, err: (err as Error).message }, 'sample buffer unreadable; starting a new stream');
      return;
    }
    const rows = text.split('\n');
    const header = parseHeader(rows[0]);
    if (!header) {
      if (text.length > 0) this.log?.warn({ file: this.file }, 'sample buffer has no valid header; starting a new stream');
      return;
    }
    this._stream = header.stream;
    this._lastSeq = header.seq;
    this._acked = Math.min(header.ack, header.seq);
    let bad = 0;
    for (let i = 1; i < rows.length; i++) {
      const row = rows[i]!;
      if (row === '') continue;
      let v: unknown;
      try {
        v = JSON.parse(row);
      } catch {
        // The last line is cut short when the agent died mid-append; anything else is damage.
        if (i !== rows.length - 1) bad++;
        continue;
      }
      if (isSample(v)) {
        // Seqs only grow; anything acked or not newer than the last one kept is a leftover.
        const newest = this.count > 0 ? this.seqs[(this.head + this.count - 1) % this.capacity]! : 0;
        if (v.seq <= this._acked || v.seq <= newest) continue;
        this._lastSeq = Math.max(this._lastSeq, v.seq);
        this.ringAdd(v.seq, row);
      } else if (isAck(v)) {
        this._acked = Math.max(this._acked, v.ack);
        while (this.count > 0 && this.seqs[this.head]! <= this._acked) this.ringShift();
      } else bad++;
    }
    this._acked = Math.min(this._acked, this._lastSeq);
    if (bad) this.log?.warn({ file: this.file, lines: bad }, 'sample buffer had damaged lines; they were skipped');
    if (this.count || this._lastSeq) this.log?.info({ unacked: this.count, lastSeq: this._lastSeq, stream: this._stream }, 'sample buffer restored');
  }

  private append(line: string): void {
    if (this.fd === null) return;
    const data = `${line}\n`;
    try {
      writeSync(this.fd, data);
      this.fileLines++;
      this.fileBytes += Buffer.byteLength(data);
    } catch (err) {
      // A full or read-only disk must not stop the agent: the ring still holds the samples.
      this.log?.warn({ file: this.file, err: (err as Error).message }, 'sample buffer append failed');
    }
  }

  /** Rewrites when the file is big and mostly acked or dropped lines, so each rewrite pays for itself. */
  private maybeCompact(): void {
    if (this.fileBytes >= this.compactBytes && this.fileLines >= 2 * (this.count + 1)) this.rewrite();
  }

  private rewrite(): void {
    const tmp = `${this.file}.tmp`;
    const parts = [JSON.stringify({ stream: this._stream, seq: this._lastSeq, ack: this._acked } satisfies Header)];
    for (let i = 0; i < this.count; i++) parts.push(this.lines[(this.head + i) % this.capacity]!);
    const data = `${parts.join('\n')}\n`;
    try {
      const fd = openSync(tmp, 'w', 0o600);
      try {
        writeSync(fd, data);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, this.file);
      if (this.fd !== null) closeSync(this.fd);
      this.fd = openSync(this.file, 'a', 0o600);
      this.fileLines = parts.length;
      this.fileBytes = Buffer.byteLength(data);
    } catch (err) {
      rmSync(tmp, { force: true });
      this.log?.warn({ file: this.file, err: (err as Error).message }, 'sample buffer rewrite failed; keeping samples in memory');
      if (this.fd === null) {
        try {
          this.fd = openSync(this.file, 'a', 0o600);
        } catch {
          /* memory only until the next rewrite succeeds */
        }
      }
    }
  }

  private newStream(why: string): void {
    this.log?.info({ old: this._stream, why }, 'starting a new sample stream');
    this._stream = newStreamId();
    this._lastSeq = 0;
    this._acked = 0;
    while (this.count > 0) this.ringShift();
    this.rewrite();
  }
}

function newStreamId(): string {
  return randomBytes(12).toString('hex');
}

function parseHeader(line: string | undefined): Header | null {
  if (!line) return null;
  try {
    const v = JSON.parse(line) as Partial<Header>;
    if (typeof v.stream === 'string' && /^[0-9a-f]{8,64}$/.test(v.stream) && isSeq(v.seq) && isSeq(v.ack)) return { stream: v.stream, seq: v.seq, ack: v.ack };
  } catch {
    /* not a header */
  }
  return null;
}

function isSeq(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= MAX_SEQ;
}

function isSample(v: unknown): v is Sample {
  if (typeof v !== 'object' || v === null) return false;
  const s = v as Partial<Sample>;
  return isSeq(s.seq) && s.seq > 0 && typeof s.ts === 'number' && typeof s.m === 'object' && s.m !== null;
}

function isAck(v: unknown): v is { ack: number } {
  return typeof v === 'object' && v !== null && isSeq((v as { ack?: unknown }).ack);
}
