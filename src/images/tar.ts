// A streaming POSIX pax archive writer: the ext4 root of an OS image is walked and streamed as
// tar into tar2sqfs (squashfs-tools-ng), so the root never lands on disk as a directory tree and
// ownership, device nodes and xattrs survive without root. Plain ustar headers where they suffice;
// a pax 'x' header only for what ustar cannot hold, so a 2 GB root costs little over its data.
import { Readable } from 'node:stream';

export type TarType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'chardev' | 'blockdev' | 'fifo';

export interface TarEntry {
  /** Relative; a leading '/' or './' is dropped. '/' or '.' alone is the root directory ('./'). */
  path: string;
  type: TarType;
  /** Permission bits incl. setuid/setgid/sticky; file-type bits (as in st_mode) are ignored. */
  mode: number;
  uid: number;
  gid: number;
  uname?: string;
  gname?: string;
  mtimeNs: bigint;
  /** Written as pax records when given. Squashfs keeps only mtime, so leave them out for tar2sqfs. */
  atimeNs?: bigint;
  ctimeNs?: bigint;
  /** Files only; when data is a Buffer it defaults to its length. */
  size?: number;
  /** Symlinks: stored verbatim (may be absolute). Hard links: the earlier entry's path. */
  linkTarget?: string;
  devMajor?: number;
  devMinor?: number;
  xattrs?: { name: string; value: Buffer }[];
}

export interface TarWriterOptions {
  /** Bytes queued for the consumer before add() waits for it (default 4 MiB). */
  highWaterMark?: number;
}

const BLOCK = 512;
const ZEROS = Buffer.alloc(2 * BLOCK);
const EMPTY = Buffer.alloc(0);
const TYPEFLAG: Record<TarType, number> = { file: 0x30, hardlink: 0x31, symlink: 0x32, chardev: 0x33, blockdev: 0x34, dir: 0x35, fifo: 0x36 };
const PAX_TYPEFLAG = 0x78; // 'x'
const MAX_OCTAL_7 = 0o7777777;
const MAX_OCTAL_11 = 0o77777777777;
const NS = 1_000_000_000n;

/**
 * Writes entries to `stream` in order. Await each add() before the next: it resolves once the
 * entry is queued and the consumer has drained the queue below the high-water mark, so memory
 * stays bounded whatever the archive's size. File data Buffers are pushed as they are, not
 * copied: do not modify them after passing them in.
 */
export class TarWriter {
  readonly stream: Readable;
  private failure: Error | null = null;
  private waiter: { resolve: () => void; reject: (e: Error) => void } | null = null;
  private busy = false;
  private ended = false;

  constructor(opts: TarWriterOptions = {}) {
    this.stream = new Readable({
      highWaterMark: opts.highWaterMark ?? 4 * 1024 * 1024,
      read: () => {
        const w = this.waiter;
        this.waiter = null;
        w?.resolve();
      },
      destroy: (err, cb) => {
        // A consumer that goes away (tar2sqfs exiting, a pipeline failing) must stop the producer
        // instead of leaving it waiting for a read that never comes.
        if (!this.ended) this.fail(err ?? new Error('The tar stream was closed before the archive was finished.'));
        cb(err);
      },
    });
  }

  async add(entry: TarEntry, data?: Buffer | AsyncIterable<Buffer>): Promise<void> {
    this.checkUsable();
    const { header, size } = buildHeader(entry, data);
    this.busy = true;
    try {
      await this.push(header);
      if (size === 0) {
        // An empty iterable is fine; a non-empty one is a size mismatch.
        if (data && !Buffer.isBuffer(data)) await this.pushData(entry, data, 0);
        return;
      }
      if (Buffer.isBuffer(data)) await this.push(data);
      else if (data) await this.pushData(entry, data, size);
      const pad = (BLOCK - (size % BLOCK)) % BLOCK;
      if (pad) await this.push(ZEROS.subarray(0, pad));
    } finally {
      this.busy = false;
    }
  }

  /** Ends the archive with its two zero blocks; resolves once they are queued. */
  async finish(): Promise<void> {
    this.checkUsable();
    this.ended = true;
    this.stream.push(ZEROS);
    this.stream.push(null);
  }

  destroy(err: Error): void {
    this.fail(err);
    this.stream.destroy(err);
  }

  private checkUsable(): void {
    if (this.failure) throw this.failure;
    if (this.ended) throw new Error('TarWriter: the archive is already finished.');
    if (this.busy) throw new Error('TarWriter: add() called before the previous add() or finish() resolved; await each one.');
  }

  private fail(err: Error): void {
    this.failure ??= err;
    const w = this.waiter;
    this.waiter = null;
    w?.reject(this.failure);
  }

  private push(buf: Buffer): Promise<void> | void {
    if (this.failure) throw this.failure;
    if (this.stream.push(buf)) return;
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** The header is out already, so a wrong length leaves a broken archive: the stream is destroyed. */
  private async pushData(entry: TarEntry, data: AsyncIterable<Buffer>, size: number): Promise<void> {
    let written = 0;
    try {
      for await (const chunk of data) {
        written += chunk.length;
        if (written > size) throw lengthError(entry, `more than ${size}`);
        if (chunk.length) await this.push(chunk);
      }
      if (written !== size) throw lengthError(entry, String(written));
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      if (this.failure !== e) this.destroy(e);
      throw e;
    }
  }
}

const lengthError = (entry: TarEntry, got: string) => new Error(`TarWriter: ${entry.path} was announced as ${entry.size} bytes but its data has ${got}.`);

/** The pax header (when needed) and the ustar header of one entry, as one Buffer. */
function buildHeader(e: TarEntry, data: Buffer | AsyncIterable<Buffer> | undefined): { header: Buffer; size: number } {
  const path = entryPath(e);
  let size = 0;
  if (e.type === 'file') {
    if (Buffer.isBuffer(data)) {
      size = e.size ?? data.length;
      if (data.length !== size) throw lengthError(e, String(data.length));
    } else {
      if (e.size === undefined && data) throw new Error(`TarWriter: ${e.path}: size is required when data is streamed.`);
      size = e.size ?? 0;
      if (size > 0 && !data) throw new Error(`TarWriter: ${e.path} has size ${size} but no data.`);
    }
    if (!Number.isSafeInteger(size) || size < 0) throw new Error(`TarWriter: ${e.path}: invalid size ${size}.`);
  } else if (data !== undefined || (e.size !== undefined && e.size !== 0)) {
    throw new Error(`TarWriter: ${e.path}: only files carry data (this is a ${e.type}).`);
  }
  for (const [k, v] of [['uid', e.uid], ['gid', e.gid]] as const) {
    if (!Number.isSafeInteger(v) || v < 0) throw new Error(`TarWriter: ${e.path}: invalid ${k} ${v}.`);
  }

  let link = EMPTY;
  if (e.type === 'symlink' || e.type === 'hardlink') {
    if (!e.linkTarget) throw new Error(`TarWriter: ${e.path}: a ${e.type} needs linkTarget.`);
    const target = e.type === 'hardlink' ? normalize(e.linkTarget) : e.linkTarget;
    if (!target || target.includes('\0')) throw new Error(`TarWriter: ${e.path}: invalid link target ${JSON.stringify(e.linkTarget)}.`);
    link = Buffer.from(target, 'utf8');
  }
  let devMajor = 0;
  let devMinor = 0;
  if (e.type === 'chardev' || e.type === 'blockdev') {
    devMajor = e.devMajor ?? -1;
    devMinor = e.devMinor ?? -1;
    for (const v of [devMajor, devMinor]) {
      if (!Number.isInteger(v) || v < 0 || v > MAX_OCTAL_7) throw new Error(`TarWriter: ${e.path}: device numbers must be 0..${MAX_OCTAL_7} (got ${e.devMajor}:${e.devMinor}).`);
    }
  }

  const pax: Buffer[] = [];
  const pathBytes = Buffer.from(path, 'utf8');
  const split = isAscii(path) ? splitUstar(pathBytes) : null;
  if (!split) pax.push(paxRecord('path', pathBytes));
  const linkFits = link.length <= 100 && isAscii(link);
  if (!linkFits) pax.push(paxRecord('linkpath', link));
  if (size > MAX_OCTAL_11) pax.push(paxRecord('size', String(size)));
  if (e.uid > MAX_OCTAL_7) pax.push(paxRecord('uid', String(e.uid)));
  if (e.gid > MAX_OCTAL_7) pax.push(paxRecord('gid', String(e.gid)));
  const uname = ownerName(e.uname);
  if (uname === null) pax.push(paxRecord('uname', e.uname ?? ''));
  const gname = ownerName(e.gname);
  if (gname === null) pax.push(paxRecord('gname', e.gname ?? ''));
  const [mtimeSec, mtimeFrac] = splitNs(e.mtimeNs);
  if (mtimeFrac !== 0n || mtimeSec < 0n || mtimeSec > BigInt(MAX_OCTAL_11)) pax.push(paxRecord('mtime', paxTime(e.mtimeNs)));
  if (e.atimeNs !== undefined) pax.push(paxRecord('atime', paxTime(e.atimeNs)));
  if (e.ctimeNs !== undefined) pax.push(paxRecord('ctime', paxTime(e.ctimeNs)));
  for (const x of e.xattrs ?? []) {
    // The key ends at the first '=', so a name holding one would be misread.
    if (!x.name || x.name.includes('=') || x.name.includes('\0')) throw new Error(`TarWriter: ${e.path}: invalid xattr name ${JSON.stringify(x.name)}.`);
    pax.push(paxRecord(`SCHILY.xattr.${x.name}`, x.value));
  }

  const paxLen = pax.reduce((n, r) => n + r.length, 0);
  const paxBlocks = paxLen ? BLOCK + roundUp(paxLen) : 0;
  const header = Buffer.alloc(paxBlocks + BLOCK);
  if (paxLen) {
    let off = BLOCK;
    for (const r of pax) off += r.copy(header, off);
    writeUstar(header, 0, {
      name: asciiName(`PaxHeaders/${basename(path)}`),
      prefix: EMPTY,
      mode: 0o644,
      uid: 0,
      gid: 0,
      size: paxLen,
      mtime: mtimeSec < 0n ? 0n : mtimeSec,
      type: PAX_TYPEFLAG,
      link: EMPTY,
      uname: EMPTY,
      gname: EMPTY,
      devMajor: 0,
      devMinor: 0,
    });
  }
  writeUstar(header, paxBlocks, {
    // Readers that honour the pax record ignore these; others still get something close.
    name: split ? split.name : asciiName(path),
    prefix: split ? split.prefix : EMPTY,
    mode: e.mode & 0o7777,
    uid: e.uid,
    gid: e.gid,
    size,
    mtime: mtimeSec,
    type: TYPEFLAG[e.type],
    link: linkFits ? link : asciiName(link.toString('latin1')),
    uname: uname ?? EMPTY,
    gname: gname ?? EMPTY,
    devMajor,
    devMinor,
  });
  return { header, size };
}

function normalize(p: string): string {
  return p.replace(/^(?:\.?\/+)+/, '').replace(/^\.$/, '');
}

function entryPath(e: TarEntry): string {
  if (e.path.includes('\0')) throw new Error(`TarWriter: path ${JSON.stringify(e.path)} contains NUL.`);
  let p = normalize(e.path);
  if (e.type === 'dir') {
    if (!p) return './';
    return p.endsWith('/') ? p : `${p}/`;
  }
  if (!p || p.endsWith('/')) throw new Error(`TarWriter: ${JSON.stringify(e.path)} is not a valid path for a ${e.type}.`);
  return p;
}

const isAscii = (s: string | Buffer) => (typeof s === 'string' ? !/[^\x01-\x7f]/.test(s) : s.every((b) => b > 0 && b < 0x80));

/** A ustar uname/gname field value, or null when it needs a pax record (it is NUL-terminated). */
function ownerName(n: string | undefined): Buffer | null {
  if (n === undefined || n === '') return EMPTY;
  return n.length <= 31 && isAscii(n) ? Buffer.from(n, 'latin1') : null;
}

function basename(p: string): string {
  const parts = p.split('/').filter(Boolean);
  return parts[parts.length - 1] ?? '.';
}

/** An ASCII stand-in for a field whose real value is in a pax record. */
function asciiName(s: string): Buffer {
  return Buffer.from(s.replace(/[^\x20-\x7e]/g, '_').slice(0, 100), 'latin1');
}

/** ustar holds up to 256 bytes as prefix (≤155) '/' name (≤100, not empty). */
function splitUstar(p: Buffer): { name: Buffer; prefix: Buffer } | null {
  if (p.length <= 100) return { name: p, prefix: EMPTY };
  if (p.length > 256) return null;
  for (let i = p.length - 101; i < Math.min(156, p.length - 1); i++) {
    if (p[i] === 0x2f) return { prefix: p.subarray(0, i), name: p.subarray(i + 1) };
  }
  return null;
}

/** Seconds (floored) and nanoseconds 0..999999999. */
function splitNs(ns: bigint): [bigint, bigint] {
  let sec = ns / NS;
  let frac = ns % NS;
  if (frac < 0n) {
    sec -= 1n;
    frac += NS;
  }
  return [sec, frac];
}

/** Decimal seconds with up to nine fraction digits, as pax wants ("1700000000.123456789"). */
function paxTime(ns: bigint): string {
  const neg = ns < 0n;
  const abs = neg ? -ns : ns;
  const frac = (abs % NS).toString().padStart(9, '0').replace(/0+$/, '');
  return `${neg ? '-' : ''}${abs / NS}${frac ? `.${frac}` : ''}`;
}

/** "<len> <key>=<value>\n", where len counts the whole record including its own digits. */
export function paxRecord(key: string, value: string | Buffer): Buffer {
  const k = Buffer.from(key, 'utf8');
  const v = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  const body = k.length + v.length + 3; // ' ', '=', '\n'
  let len = body + String(body).length;
  if (String(len).length > String(body).length) len = body + String(len).length;
  const r = Buffer.allocUnsafe(len);
  let off = r.write(`${len} `, 0, 'latin1');
  off += k.copy(r, off);
  r[off++] = 0x3d;
  off += v.copy(r, off);
  r[off] = 0x0a;
  return r;
}

const roundUp = (n: number) => Math.ceil(n / BLOCK) * BLOCK;

interface UstarFields {
  name: Buffer;
  prefix: Buffer;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: bigint;
  type: number;
  link: Buffer;
  uname: Buffer;
  gname: Buffer;
  devMajor: number;
  devMinor: number;
}

/** One 512-byte ustar header at `off` of a zero-filled buffer. */
function writeUstar(b: Buffer, off: number, f: UstarFields): void {
  f.name.copy(b, off, 0, 100);
  numField(b, off + 100, 8, f.mode);
  numField(b, off + 108, 8, f.uid);
  numField(b, off + 116, 8, f.gid);
  numField(b, off + 124, 12, f.size);
  numField(b, off + 136, 12, f.mtime);
  b[off + 156] = f.type;
  f.link.copy(b, off + 157, 0, 100);
  b.write('ustar\x0000', off + 257, 'latin1');
  f.uname.copy(b, off + 265, 0, 32);
  f.gname.copy(b, off + 297, 0, 32);
  numField(b, off + 329, 8, f.devMajor);
  numField(b, off + 337, 8, f.devMinor);
  f.prefix.copy(b, off + 345, 0, 155);
  // The checksum is taken with its own field as eight spaces.
  let sum = 8 * 0x20;
  for (let i = off; i < off + 148; i++) sum += b[i]!;
  for (let i = off + 156; i < off + BLOCK; i++) sum += b[i]!;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, off + 148, 'latin1');
}

/**
 * Zero-padded octal with a NUL terminator; values that do not fit (their pax record carries the
 * real one) go in GNU base-256, which GNU tar, libarchive and squashfs-tools-ng all read.
 */
function numField(b: Buffer, off: number, width: number, v: number | bigint): void {
  if (typeof v === 'number' && v >= 0 && v < 8 ** (width - 1)) {
    b.write(v.toString(8).padStart(width - 1, '0'), off, 'latin1');
    return;
  }
  let n = BigInt(v);
  if (n >= 0n && n < 8n ** BigInt(width - 1)) {
    b.write(n.toString(8).padStart(width - 1, '0'), off, 'latin1');
    return;
  }
  if (n < 0n) n += 1n << BigInt(8 * width); // two's complement: the leading 0xff marks it negative
  for (let i = width - 1; i >= 0; i--) {
    b[off + i] = Number(n & 0xffn);
    n >>= 8n;
  }
  b[off] = b[off]! | 0x80;
}

/**
 * A small archive in memory: files in path order, each parent directory once before its files,
 * all owned by root with one mtime (deterministic bytes for the same input). Files are 0644 and
 * directories 0755 unless given.
 */
export async function tarOfFiles(files: { path: string; data: Buffer; mode?: number }[], o: { mtimeNs?: bigint; dirModes?: Record<string, number> } = {}): Promise<Buffer> {
  const mtimeNs = o.mtimeNs ?? 0n;
  const tar = new TarWriter();
  const chunks: Buffer[] = [];
  const collecting = (async () => {
    for await (const c of tar.stream as AsyncIterable<Buffer>) chunks.push(c);
  })();
  const dirs = new Set<string>();
  for (const f of [...files].sort((a, b) => (a.path < b.path ? -1 : 1))) {
    const parts = f.path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (dirs.has(d)) continue;
      dirs.add(d);
      await tar.add({ path: d, type: 'dir', mode: o.dirModes?.[d] ?? 0o755, uid: 0, gid: 0, mtimeNs });
    }
    await tar.add({ path: f.path, type: 'file', mode: f.mode ?? 0o644, uid: 0, gid: 0, mtimeNs, size: f.data.length }, f.data);
  }
  await tar.finish();
  await collecting;
  return Buffer.concat(chunks);
}
