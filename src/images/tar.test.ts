// The pax writer checked against the readers that matter: real GNU tar (listing and extraction)
// and real tar2sqfs, whose squashfs is read back with rdsquashfs and sqfs2tar.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, describe, it } from 'node:test';
import { prereq, which } from '../../test/helpers/prereq.js';
import { paxRecord, TarWriter, type TarEntry } from './tar.js';

const MiB = 1024 * 1024;
const T = 1_700_000_000_123_456_789n; // 2023-11-14 22:13:20.123456789 UTC
const T_WHOLE = 1_700_000_000n * 1_000_000_000n;
// struct vfs_cap_data, revision 2: magic_etc 0x02000001 (effective), permitted[0] = CAP_NET_RAW
const CAP_NET_RAW = Buffer.from('0100000200200000000000000000000000000000', 'hex');
// NUL, newline, '=' and a high byte: the record must be found by its length, not by parsing text.
const USER_XATTR = Buffer.from([0x00, 0x0a, 0x3d, 0xff, 0x68, 0x69]);
const BIG = randomBytes(5 * MiB);
const LONG = `d${'a'.repeat(60)}/${'b'.repeat(60)}/file.txt`; // 131 bytes: fits ustar prefix/name
const LONGER = `${Array.from({ length: 6 }, (_, i) => String(i).repeat(50)).join('/')}/end.txt`; // 314 bytes: pax path
const UNICODE = 'home/pi/Grüße-日本語.txt';

type Item = [TarEntry, (Buffer | AsyncIterable<Buffer>)?];
const base = { uid: 0, gid: 0, mtimeNs: T };

async function* chunks(b: Buffer, size: number): AsyncIterable<Buffer> {
  for (let off = 0; off < b.length; off += size) yield b.subarray(off, off + size);
}

/** A small root filesystem with everything a Raspberry Pi OS root has that tar must carry. */
function fixture(): Item[] {
  return [
    [{ ...base, path: '/', type: 'dir', mode: 0o755 }],
    [{ ...base, path: 'usr/bin', type: 'dir', mode: 0o755 }],
    [{ ...base, path: 'usr/bin/ping', type: 'file', mode: 0o755, mtimeNs: T_WHOLE, xattrs: [{ name: 'security.capability', value: CAP_NET_RAW }, { name: 'user.drover', value: USER_XATTR }] }, Buffer.from('#!ping\n')],
    [{ ...base, path: 'usr/bin/sudo', type: 'file', mode: 0o4755 }, Buffer.from('#!sudo\n')],
    [{ ...base, path: 'usr/bin/sudoedit', type: 'hardlink', mode: 0o4755, linkTarget: 'usr/bin/sudo' }],
    [{ ...base, path: 'usr/bin/vi', type: 'symlink', mode: 0o777, linkTarget: '/usr/bin/vim.basic' }],
    [{ ...base, path: 'home/pi', type: 'dir', mode: 0o750, uid: 1000, gid: 1000 }],
    [{ ...base, path: 'home/pi/hello.txt', type: 'file', mode: 0o644, uid: 1000, gid: 1000 }, Buffer.from('hello\n')],
    [{ ...base, path: UNICODE, type: 'file', mode: 0o600, uid: 1000, gid: 1000 }, Buffer.from('unicode\n')],
    [{ ...base, path: 'srv/big.bin', type: 'file', mode: 0o640, uid: 70000, gid: 70000, size: BIG.length }, chunks(BIG, MiB)],
    [{ ...base, path: 'srv/empty', type: 'file', mode: 0o644 }, Buffer.alloc(0)],
    [{ ...base, path: 'dev/console', type: 'chardev', mode: 0o600, gid: 5, devMajor: 5, devMinor: 1 }],
    [{ ...base, path: 'dev/sda', type: 'blockdev', mode: 0o660, gid: 6, devMajor: 8, devMinor: 0 }],
    [{ ...base, path: 'run/initctl', type: 'fifo', mode: 0o600 }],
    [{ ...base, path: LONG, type: 'file', mode: 0o644 }, Buffer.from('long\n')],
    [{ ...base, path: LONGER, type: 'file', mode: 0o644 }, Buffer.from('longer\n')],
    [{ ...base, path: 'lib/longlink', type: 'symlink', mode: 0o777, linkTarget: `/${LONGER}` }],
  ];
}

async function writeAll(w: TarWriter, items: Item[]) {
  for (const [e, d] of items) await w.add(e, d);
  await w.finish();
}

async function toBuffer(items: Item[]): Promise<Buffer> {
  const w = new TarWriter();
  const parts: Buffer[] = [];
  w.stream.on('data', (c: Buffer) => parts.push(c));
  const ended = new Promise((res, rej) => w.stream.on('end', res).on('error', rej));
  await writeAll(w, items);
  await ended;
  return Buffer.concat(parts);
}

interface Parsed {
  path: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: string;
  linkpath: string;
  pax: Map<string, Buffer>;
  data: Buffer;
  rawHeader: Buffer;
}

const octal = (b: Buffer) => parseInt(b.toString('latin1').replace(/[\0 ]+$/, '') || '0', 8);
const cstr = (b: Buffer) => {
  const z = b.indexOf(0);
  return (z < 0 ? b : b.subarray(0, z)).toString('utf8');
};

/** An independent reader: pax records found by their length prefix, checksums checked. */
function parseTar(buf: Buffer): Parsed[] {
  const out: Parsed[] = [];
  let pax = new Map<string, Buffer>();
  for (let off = 0; off + 512 <= buf.length; ) {
    const h = buf.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
    assert.equal(octal(h.subarray(148, 156)), sum, `header checksum at ${off}`);
    const size = octal(h.subarray(124, 136));
    const data = buf.subarray(off + 512, off + 512 + size);
    const type = String.fromCharCode(h[156]!);
    off += 512 + Math.ceil(size / 512) * 512;
    if (type === 'x') {
      for (let p = 0; p < data.length; ) {
        const sp = data.indexOf(0x20, p);
        const len = Number(data.subarray(p, sp).toString('latin1'));
        const rec = data.subarray(p, p + len);
        assert.equal(rec[len - 1], 0x0a, 'pax record ends with a newline exactly where its length says');
        const eq = rec.indexOf(0x3d);
        pax.set(rec.subarray(sp - p + 1, eq).toString('utf8'), rec.subarray(eq + 1, len - 1));
        p += len;
      }
      continue;
    }
    // sqfs2tar uses GNU long-name records ('L' path, 'K' link target) rather than pax for these.
    if (type === 'L' || type === 'K') {
      pax.set(type === 'L' ? 'path' : 'linkpath', Buffer.from(cstr(data)));
      continue;
    }
    if (type === 'g') continue;
    const prefix = cstr(h.subarray(345, 500));
    const name = cstr(h.subarray(0, 100));
    const s = (k: string) => pax.get(k)?.toString('utf8');
    out.push({
      path: s('path') ?? (prefix ? `${prefix}/${name}` : name),
      type,
      mode: octal(h.subarray(100, 108)),
      uid: Number(s('uid') ?? octal(h.subarray(108, 116))),
      gid: Number(s('gid') ?? octal(h.subarray(116, 124))),
      size,
      mtime: s('mtime') ?? String(octal(h.subarray(136, 148))),
      linkpath: s('linkpath') ?? cstr(h.subarray(157, 257)),
      pax,
      data,
      rawHeader: h,
    });
    pax = new Map();
  }
  return out;
}

const xattrsOf = (p: Parsed) => Object.fromEntries([...p.pax].filter(([k]) => k.startsWith('SCHILY.xattr.')).map(([k, v]) => [k.slice(13), v.toString('hex')]));
const EXPECTED_XATTRS = { 'security.capability': CAP_NET_RAW.toString('hex'), 'user.drover': USER_XATTR.toString('hex') };

describe('tar writer: format', () => {
  it('computes pax record lengths including their own digits, across digit boundaries', () => {
    for (let n = 0; n < 1100; n++) {
      const r = paxRecord('k', Buffer.alloc(n, 0x31));
      const sp = r.indexOf(0x20);
      assert.equal(Number(r.subarray(0, sp).toString('latin1')), r.length, `value of ${n} bytes`);
      assert.equal(r[r.length - 1], 0x0a);
    }
  });

  it('writes ustar headers with checksum, magic and version, and pax only where needed', async () => {
    const tar = await toBuffer(fixture());
    const entries = parseTar(tar);
    assert.deepEqual(tar.subarray(-1024), Buffer.alloc(1024), 'two zero blocks at the end');
    assert.equal(tar.length % 512, 0);
    for (const e of entries) {
      assert.equal(e.rawHeader.subarray(257, 263).toString('latin1'), 'ustar\0', e.path);
      assert.equal(e.rawHeader.subarray(263, 265).toString('latin1'), '00', e.path);
    }
    const by = new Map(entries.map((e) => [e.path, e]));
    assert.equal(by.get('./')?.type, '5', 'the root directory is ./');
    assert.equal(by.get('usr/bin/')?.type, '5', 'directories end with /');
    // Whole-second mtime, short ASCII path: no pax header at all.
    assert.deepEqual([...by.get('srv/empty')!.pax.keys()], ['mtime']);
    assert.deepEqual(xattrsOf(by.get('usr/bin/ping')!), EXPECTED_XATTRS);
    assert.equal(by.get('usr/bin/ping')!.pax.has('mtime'), false);
    assert.equal(by.get('usr/bin/sudo')!.mtime, '1700000000.123456789');
    assert.equal(by.get(LONG)!.pax.has('path'), false, 'a 131-byte path fits the ustar prefix/name split');
    assert.equal(by.get(LONGER)!.pax.get('path')?.toString(), LONGER);
    assert.equal(by.get(UNICODE)!.pax.get('path')?.toString('utf8'), UNICODE);
    assert.equal(by.get('lib/longlink')!.linkpath, `/${LONGER}`);
    const hl = by.get('usr/bin/sudoedit')!;
    assert.deepEqual([hl.type, hl.linkpath, hl.size], ['1', 'usr/bin/sudo', 0]);
    assert.deepEqual(by.get('srv/big.bin')!.data, BIG);
    assert.equal(by.get('srv/big.bin')!.uid, 70000);
    const dev = by.get('dev/console')!.rawHeader;
    assert.deepEqual([dev[156], octal(dev.subarray(329, 337)), octal(dev.subarray(337, 345))], [0x33, 5, 1]);
  });

  it('puts ids past 7 octal digits and negative or sub-second times in pax records', async () => {
    const [e] = parseTar(await toBuffer([[{ path: 'f', type: 'file', mode: 0o644, uid: 3_000_000, gid: 4_000_000, uname: 'a-very-long-user-name-over-31-bytes', mtimeNs: -1_500_000_000n }, Buffer.from('x')]]));
    assert.equal(e!.pax.get('uid')?.toString(), '3000000');
    assert.equal(e!.pax.get('gid')?.toString(), '4000000');
    assert.equal(e!.pax.get('uname')?.toString(), 'a-very-long-user-name-over-31-bytes');
    assert.equal(e!.mtime, '-1.5');
  });

  it('announces files over 8 GiB with a pax size record', async () => {
    const w = new TarWriter();
    w.stream.on('error', () => {});
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    async function* never(): AsyncIterable<Buffer> {
      await gate;
      throw new Error('stop here');
    }
    const size = 9 * 1024 * MiB;
    const adding = w.add({ path: 'huge', type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeNs: T_WHOLE, size }, never());
    await new Promise((r) => setImmediate(r));
    const head = w.stream.read() as Buffer;
    release();
    await assert.rejects(adding, /stop here/);
    assert.equal(head.length, 1536, 'pax header block, its records, the ustar header');
    assert.ok(head.subarray(512, 1024).includes('19 size=9663676416\n'));
    const field = head.subarray(1024 + 124, 1024 + 136);
    assert.equal(field[0]! & 0x80, 0x80, 'the ustar size field is base-256');
    assert.equal(BigInt(`0x${Buffer.from([field[0]! & 0x7f, ...field.subarray(1)]).toString('hex')}`), BigInt(size));
  });

  it('refuses data whose length is not the announced size', async () => {
    const w = new TarWriter();
    const parts: Buffer[] = [];
    w.stream.on('data', (c: Buffer) => parts.push(c));
    const entry: TarEntry = { path: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeNs: T_WHOLE, size: 4 };
    // A Buffer is checked before anything is written, so the archive stays usable.
    await assert.rejects(w.add(entry, Buffer.from('abc')), /announced as 4 bytes but its data has 3/);
    await assert.rejects(w.add({ ...entry, type: 'dir' }, Buffer.from('abcd')), /only files carry data/);
    await w.add(entry, Buffer.from('abcd'));
    await w.finish();
    await new Promise((r) => w.stream.on('end', r));
    assert.deepEqual(parseTar(Buffer.concat(parts)).map((e) => e.data.toString()), ['abcd']);

    // Streamed data is only known to be wrong once the header is out: the stream is destroyed.
    for (const data of [chunks(Buffer.from('abc'), 2), chunks(Buffer.from('abcde'), 2)]) {
      const w2 = new TarWriter();
      const errored = new Promise<Error>((r) => w2.stream.on('error', r));
      w2.stream.resume();
      await assert.rejects(w2.add(entry, data), /announced as 4 bytes/);
      assert.match((await errored).message, /announced as 4 bytes/);
      await assert.rejects(w2.add(entry, Buffer.from('abcd')), /announced as 4 bytes/);
    }
  });

  it('refuses overlapping add() calls instead of interleaving entries', async () => {
    const w = new TarWriter({ highWaterMark: 1024 });
    const first = w.add({ path: 'a', type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeNs: T_WHOLE }, Buffer.alloc(4096));
    await assert.rejects(w.add({ path: 'b', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtimeNs: T_WHOLE }), /await each one/);
    w.stream.resume();
    await first;
  });

  it('stops a producer whose consumer went away', async () => {
    const w = new TarWriter({ highWaterMark: 1024 });
    w.stream.on('error', () => {});
    const pending = w.add({ path: 'a', type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeNs: T_WHOLE, size: 8192 }, chunks(Buffer.alloc(8192), 2048));
    w.stream.destroy(new Error('consumer died'));
    await assert.rejects(pending, /consumer died/);
  });

  it('keeps memory bounded with a slow consumer (200 MiB streamed)', async () => {
    const hwm = 1 * MiB;
    const w = new TarWriter({ highWaterMark: hwm });
    let maxQueued = 0;
    let bytes = 0;
    let n = 0;
    global.gc?.();
    const rss0 = process.memoryUsage().rss;
    let maxRss = rss0;
    const sink = new Writable({
      highWaterMark: 64 * 1024,
      write(chunk: Buffer, _enc, cb) {
        bytes += chunk.length;
        maxQueued = Math.max(maxQueued, w.stream.readableLength);
        if (++n % 16 === 0) {
          maxRss = Math.max(maxRss, process.memoryUsage().rss);
          setTimeout(cb, 1);
        } else setImmediate(cb);
      },
    });
    const done = pipeline(w.stream, sink);
    const total = 200 * MiB;
    async function* fresh() {
      // New memory each time: a writer that ignored backpressure would hold all 200 MiB.
      for (let i = 0; i < total / MiB; i++) yield Buffer.alloc(MiB, i & 0xff);
    }
    await w.add({ path: 'big', type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeNs: T_WHOLE, size: total }, fresh());
    await w.finish();
    await done;
    assert.equal(bytes, 512 + total + 1024);
    assert.ok(maxQueued <= hwm + MiB, `at most the high-water mark plus one chunk queued (saw ${maxQueued})`);
    const growth = (maxRss - rss0) / MiB;
    assert.ok(growth < 120, `RSS grew by ${growth.toFixed(0)} MiB while streaming 200 MiB`);
  });
});

const isGnuTar = (() => {
  if (!which('tar')) return false;
  try {
    return execFileSync('tar', ['--version'], { encoding: 'utf8' }).includes('GNU tar');
  } catch {
    return false;
  }
})();

describe('tar writer: read by GNU tar', prereq('GNU tar', isGnuTar, 'tar'), () => {
  const dir = mkdtempSync(join(tmpdir(), 'drover-tar-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'root.tar');
  // Made on first use, so it does not overlap the memory test above.
  let writing: Promise<void> | undefined;
  const written = () =>
    (writing ??= (async () => {
      const w = new TarWriter();
      const done = pipeline(w.stream, createWriteStream(file));
      await writeAll(w, fixture());
      await done;
    })());

  it('lists owners, modes, links, devices and nanosecond mtimes', async () => {
    await written();
    const list = execFileSync('tar', ['--numeric-owner', '--full-time', '-tvf', file], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
    // mode owner size date time name[ -> target | link to target]
    const line = (path: string) =>
      list.split('\n').find((l) => {
        const name = /^\S+ \S+ +\S+ \S+ \S+ +(.*)$/.exec(l)?.[1] ?? '';
        return name === path || name.startsWith(`${path} -> `) || name.startsWith(`${path} link to `);
      }) ?? assert.fail(`${path} not listed:\n${list}`);
    assert.match(line('./'), /^drwxr-xr-x 0\/0 +0 2023-11-14 22:13:20\.123456789 \.\/$/);
    assert.match(line('usr/bin/ping'), /^-rwxr-xr-x 0\/0 +7 2023-11-14 22:13:20 +usr\/bin\/ping$/);
    assert.match(line('usr/bin/sudo'), /^-rwsr-xr-x 0\/0 +7 2023-11-14 22:13:20\.123456789 usr\/bin\/sudo$/);
    assert.match(line('usr/bin/sudoedit'), /^hrwsr-xr-x .* usr\/bin\/sudoedit link to usr\/bin\/sudo$/);
    assert.match(line('usr/bin/vi'), /^lrwxrwxrwx .* usr\/bin\/vi -> \/usr\/bin\/vim\.basic$/);
    assert.match(line('home/pi/'), /^drwxr-x--- 1000\/1000 /);
    assert.match(line(UNICODE), /^-rw------- 1000\/1000 +8 /);
    assert.match(line('srv/big.bin'), /^-rw-r----- 70000\/70000 +5242880 /);
    assert.match(line('dev/console'), /^crw------- 0\/5 +5,1 /);
    assert.match(line('dev/sda'), /^brw-rw---- 0\/6 +8,0 /);
    assert.match(line('run/initctl'), /^prw------- 0\/0 /);
    line(LONG);
    line(LONGER);
    assert.match(line('lib/longlink'), new RegExp(` -> /${LONGER}$`));
  });

  const root = process.getuid?.() === 0;
  it('extracts everything, xattrs included', { skip: root ? false : 'extracting owners, devices and security.capability needs root' }, async () => {
    await written();
    const out = join(dir, 'x');
    mkdirSync(out);
    execFileSync('tar', ['--xattrs', "--xattrs-include=*", '--numeric-owner', '-xpf', file, '-C', out]);
    const st = (p: string) => lstatSync(join(out, p), { bigint: true });
    assert.equal(st('usr/bin/sudo').mtimeNs, T);
    assert.equal(st('usr/bin/ping').mtimeNs, T_WHOLE);
    assert.equal(st('usr/bin/sudo').mode & 0o7777n, 0o4755n);
    assert.equal(st('usr/bin/sudoedit').ino, st('usr/bin/sudo').ino);
    assert.equal(st('usr/bin/sudo').nlink, 2n);
    assert.equal(readlinkSync(join(out, 'usr/bin/vi')), '/usr/bin/vim.basic');
    assert.equal(readlinkSync(join(out, 'lib/longlink')), `/${LONGER}`);
    assert.deepEqual([st('home/pi').uid, st('home/pi').gid, st('home/pi').mode & 0o7777n], [1000n, 1000n, 0o750n]);
    assert.deepEqual([st('srv/big.bin').uid, st('srv/big.bin').gid], [70000n, 70000n]);
    assert.ok(readFileSync(join(out, 'srv/big.bin')).equals(BIG));
    assert.equal(readFileSync(join(out, UNICODE), 'utf8'), 'unicode\n');
    assert.equal(readFileSync(join(out, LONGER), 'utf8'), 'longer\n');
    assert.equal(readFileSync(join(out, LONG), 'utf8'), 'long\n');
    const con = st('dev/console');
    assert.ok(con.isCharacterDevice());
    assert.equal(con.rdev, 0x501n); // makedev(5, 1)
    assert.ok(st('dev/sda').isBlockDevice());
    assert.ok(st('run/initctl').isFIFO());
    // Node cannot read xattrs: GNU tar archives the extracted file again and reports them.
    const again = execFileSync('tar', ['--xattrs', '--xattrs-include=*', '--format=posix', '-C', out, '-cf', '-', 'usr/bin/ping']);
    assert.deepEqual(xattrsOf(parseTar(again)[0]!), EXPECTED_XATTRS);
  });
});

const sqfsTools = which('tar2sqfs') !== null && which('rdsquashfs') !== null && which('sqfs2tar') !== null;

describe('tar writer: packed by tar2sqfs', prereq('tar2sqfs, rdsquashfs and sqfs2tar', sqfsTools, 'squashfs-tools-ng'), () => {
  const dir = mkdtempSync(join(tmpdir(), 'drover-sqfs-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const img = join(dir, 'root.sqfs');

  // Streamed straight into tar2sqfs's stdin, as the image ingest does. Times and xattrs are kept
  // by default (-k and -x would drop them); -s makes an unreadable record fatal, not skipped.
  let packing: Promise<void> | undefined;
  const packed = () =>
    (packing ??= (async () => {
      const child = spawn('tar2sqfs', ['-q', '-f', '-s', '-c', 'gzip', img], { stdio: ['pipe', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((res) => child.on('close', res));
      const w = new TarWriter();
      await Promise.all([pipeline(w.stream, child.stdin), writeAll(w, fixture())]);
      assert.equal(await exited, 0, `tar2sqfs failed: ${stderr}`);
    })());

  const rd = (...args: string[]) => execFileSync('rdsquashfs', [...args, img], { maxBuffer: 64 * MiB });
  const stat = (p: string) => Object.fromEntries(rd('-s', p).toString('utf8').split('\n').filter((l) => l.includes(': ')).map((l) => [l.slice(0, l.indexOf(': ')), l.slice(l.indexOf(': ') + 2)]));

  it('keeps owners, modes, mtimes and file contents', async () => {
    await packed();
    const sudo = stat('/usr/bin/sudo');
    assert.equal(sudo.Access, '04755');
    assert.equal(sudo['Last modified'], 'Tue, 14 Nov 2023 22:13:20 +0000 (1700000000)', 'squashfs keeps whole seconds');
    assert.equal(stat('/').Access, '0755', 'the ./ entry became the root inode');
    assert.match(stat('/')['Last modified'] ?? '', /\(1700000000\)$/);
    const pi = stat('/home/pi');
    assert.deepEqual([pi.Access, pi.UID, pi.GID].map((s) => s?.split(' ')[0]), ['0750', '1000', '1000']);
    const big = stat('/srv/big.bin');
    assert.deepEqual([big.UID, big.GID].map((s) => s?.split(' ')[0]), ['70000', '70000']);
    assert.ok(rd('-c', '/srv/big.bin').equals(BIG), '5 MiB file byte-identical');
    assert.equal(rd('-c', `/${UNICODE}`).toString(), 'unicode\n');
    assert.equal(rd('-c', `/${LONGER}`).toString(), 'longer\n');
    assert.equal(rd('-c', `/${LONG}`).toString(), 'long\n');
    assert.equal(rd('-c', '/srv/empty').length, 0);
  });

  it('keeps hard links, symlinks, devices and fifos', async () => {
    await packed();
    const a = stat('/usr/bin/sudo');
    const b = stat('/usr/bin/sudoedit');
    assert.equal(a['Inode number'], b['Inode number'], 'one inode for both names');
    assert.equal(a['Hard link count'], '2');
    assert.equal(stat('/usr/bin/vi')['Link target'], '/usr/bin/vim.basic');
    assert.equal(stat('/lib/longlink')['Link target'], `/${LONGER}`);
    const con = stat('/dev/console');
    assert.deepEqual([con['Inode type'], con['Device number']?.split(' ')[0], con.Access], ['character device', '5:1', '0600']);
    assert.equal(stat('/dev/sda')['Inode type'], 'block device');
    assert.equal(stat('/run/initctl')['Inode type'], 'named pipe');
  });

  it('keeps security.capability and user xattrs byte for byte', async () => {
    await packed();
    assert.match(rd('-x', '/usr/bin/ping').toString('latin1'), new RegExp(`security\\.capability=0x${CAP_NET_RAW.toString('hex')}`));
    // rdsquashfs prints values as C strings; sqfs2tar hands back the raw bytes.
    const back = parseTar(execFileSync('sqfs2tar', [img], { maxBuffer: 64 * MiB }));
    const by = new Map(back.map((e) => [e.path, e]));
    assert.deepEqual(xattrsOf(by.get('usr/bin/ping')!), EXPECTED_XATTRS);
    assert.deepEqual(by.get('srv/big.bin')?.data, BIG);
    assert.ok(by.has(UNICODE) && by.has(LONGER), 'long and non-ASCII names come back');
  });
});
