// newc archives listed by real GNU cpio and unpacked by real busybox cpio (the unpacker of the
// initramfs tools world), plus the header rules the kernel's own unpacker depends on.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { prereq, which } from '../../test/helpers/prereq.js';
import { cpioNewc, sortForCpio, type CpioEntry } from './cpio.js';

const MTIME = 1_700_000_000;
const isRoot = process.getuid?.() === 0;

/** An initramfs-like tree, deliberately unsorted; sizes and name lengths cover every padding. */
const ENTRIES: CpioEntry[] = [
  { path: 'init', type: 'file', mode: 0o755, mtime: MTIME, data: Buffer.from('#!/bin/sh\nexec /bin/sh\n') },
  { path: 'bin/busybox', type: 'file', mode: 0o755, mtime: MTIME, data: randomBytes(100_003) },
  { path: 'bin/sh', type: 'symlink', mode: 0o777, mtime: MTIME, linkTarget: 'busybox' },
  { path: '/bin', type: 'dir', mode: 0o755, mtime: MTIME },
  { path: 'lib64', type: 'symlink', mode: 0o777, mtime: MTIME, linkTarget: 'lib' },
  { path: 'lib/modules/6.6.31+rpt-rpi-v8/kernel/drivers/net/usb/smsc95xx.ko', type: 'file', mode: 0o644, mtime: MTIME, data: randomBytes(4097) },
  { path: 'lib/modules/6.6.31+rpt-rpi-v8/kernel/drivers/net/usb', type: 'dir', mode: 0o755, mtime: MTIME },
  { path: 'lib/modules/6.6.31+rpt-rpi-v8/kernel/drivers/net', type: 'dir', mode: 0o755, mtime: MTIME },
  { path: 'lib/modules/6.6.31+rpt-rpi-v8/kernel/drivers', type: 'dir', mode: 0o755, mtime: MTIME },
  { path: 'lib/modules/6.6.31+rpt-rpi-v8/kernel', type: 'dir', mode: 0o755, mtime: MTIME },
  { path: 'lib/modules/6.6.31+rpt-rpi-v8', type: 'dir', mode: 0o755, mtime: MTIME },
  { path: 'lib/modules', type: 'dir', mode: 0o755, mtime: MTIME },
  { path: 'lib', type: 'dir', mode: 0o755, mtime: MTIME },
  { path: 'etc', type: 'dir', mode: 0o755, mtime: MTIME },
  { path: 'etc/a', type: 'file', mode: 0o644, mtime: MTIME, data: Buffer.from('1') },
  { path: 'etc/ab', type: 'file', mode: 0o644, mtime: MTIME, data: Buffer.from('12') },
  { path: 'etc/abc', type: 'file', mode: 0o644, mtime: MTIME, data: Buffer.from('123') },
  { path: 'etc/abcd', type: 'file', mode: 0o600, mtime: MTIME, data: Buffer.from('1234') },
  { path: 'etc/empty', type: 'file', mode: 0o644, mtime: MTIME },
  { path: 'etc/drover-ünïcode.conf', type: 'file', mode: 0o640, uid: 1000, gid: 1000, mtime: MTIME, data: Buffer.from('x=1\n') },
  { path: 'etc-b', type: 'file', mode: 0o644, mtime: MTIME, data: Buffer.from('sorts after etc/') },
  { path: 'dev', type: 'dir', mode: 0o755, mtime: MTIME },
  { path: 'dev/console', type: 'chardev', mode: 0o600, mtime: MTIME, devMajor: 5, devMinor: 1 },
];

const SORTED = sortForCpio(ENTRIES);
const ARCHIVE = cpioNewc(SORTED);
const norm = (p: string) => p.replace(/^\/+/, '');

/** The archive's records as the kernel's unpacker reads them, checking its rules on the way. */
function walk(buf: Buffer) {
  const out: { name: string; f: number[]; data: Buffer }[] = [];
  let off = 0;
  for (;;) {
    const head = buf.subarray(off, off + 110).toString('latin1');
    assert.match(head, /^070701[0-9A-F]{104}$/, `110-byte ASCII hex header at ${off}`);
    const f = Array.from({ length: 13 }, (_, i) => parseInt(head.slice(6 + i * 8, 14 + i * 8), 16));
    const namesize = f[11]!;
    const size = f[6]!;
    assert.equal(buf[off + 110 + namesize - 1], 0, 'name NUL-terminated, namesize counts the NUL');
    const name = buf.subarray(off + 110, off + 110 + namesize - 1).toString('utf8');
    off += 110 + namesize;
    for (; off % 4; off++) assert.equal(buf[off], 0, 'zero padding after the name');
    const data = buf.subarray(off, off + size);
    off += size;
    for (; off % 4; off++) assert.equal(buf[off], 0, 'zero padding after the data');
    if (name === 'TRAILER!!!') {
      assert.equal(off, buf.length, 'nothing after the trailer');
      return out;
    }
    out.push({ name, f, data });
  }
}

describe('cpio newc writer', () => {
  it('sorts parents before children, deterministically', () => {
    const paths = SORTED.map((e) => norm(e.path));
    for (const [i, p] of paths.entries()) {
      const parent = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : null;
      if (parent) assert.ok(paths.indexOf(parent) < i, `${parent} before ${p}`);
    }
    assert.deepEqual(paths.slice(0, 3), ['bin', 'bin/busybox', 'bin/sh']);
    assert.ok(paths.indexOf('etc-b') > paths.indexOf('etc/empty'));
    assert.deepEqual(sortForCpio([...ENTRIES].reverse()).map((e) => e.path), SORTED.map((e) => e.path));
    assert.ok(cpioNewc(sortForCpio([...ENTRIES].reverse())).equals(ARCHIVE), 'same bytes whatever the input order');
  });

  it('follows the kernel unpacker rules: hex headers, NUL names, 4-byte alignment, inodes, nlink', () => {
    const recs = walk(ARCHIVE);
    assert.equal(recs.length, SORTED.length);
    for (const [i, r] of recs.entries()) {
      const e = SORTED[i]!;
      const [ino, mode, uid, gid, nlink, mtime, size, , , rmaj, rmin, , check] = r.f;
      assert.equal(r.name, norm(e.path), 'relative names, no leading /');
      assert.equal(ino, i + 1, 'inodes numbered from 1 in order');
      assert.equal(nlink, e.type === 'dir' ? 2 : 1);
      assert.equal(mode! & 0o7777, e.mode);
      assert.deepEqual([uid, gid, mtime, check], [e.uid ?? 0, e.gid ?? 0, MTIME, 0]);
      if (e.type === 'symlink') assert.equal(r.data.toString(), e.linkTarget);
      else assert.ok(r.data.equals(e.data ?? Buffer.alloc(0)));
      assert.equal(size, r.data.length);
      if (e.type === 'chardev') assert.deepEqual([mode! & 0o170000, rmaj, rmin], [0o020000, 5, 1]);
    }
  });

  it('refuses entries it cannot encode', () => {
    assert.throws(() => cpioNewc([{ path: '/', type: 'dir', mode: 0o755 }]), /not a valid path/);
    assert.throws(() => cpioNewc([{ path: 'l', type: 'symlink', mode: 0o777 }]), /needs a linkTarget/);
    assert.throws(() => cpioNewc([{ path: 'd', type: 'dir', mode: 0o755, data: Buffer.from('x') }]), /only files carry data/);
    assert.throws(() => cpioNewc([{ path: 'c', type: 'chardev', mode: 0o600 }]), /devMajor/);
    assert.throws(() => cpioNewc([{ path: 'f', type: 'file', mode: 0o644, mtime: 2 ** 32 }]), /32 bits/);
  });
});

const gnuCpio = (() => {
  if (!which('cpio')) return false;
  try {
    return execFileSync('cpio', ['--version'], { encoding: 'utf8' }).includes('GNU cpio');
  } catch {
    return false;
  }
})();

describe('cpio newc: listed by GNU cpio', prereq('GNU cpio', gnuCpio, 'cpio'), () => {
  it('lists every entry in order with modes, owners, sizes and link targets', () => {
    const names = execFileSync('cpio', ['-it', '--quiet'], { input: ARCHIVE, encoding: 'utf8' }).split('\n').filter(Boolean);
    assert.deepEqual(names, SORTED.map((e) => norm(e.path)));
    const long = execFileSync('cpio', ['-itv', '--numeric-uid-gid', '--quiet'], { input: ARCHIVE, encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
    const line = (p: string) => long.split('\n').find((l) => l.endsWith(` ${p}`) || l.includes(` ${p} -> `)) ?? assert.fail(`${p} not listed:\n${long}`);
    assert.match(line('init'), /^-rwxr-xr-x +1 0 +0 +23 Nov 14 +2023 init$/);
    assert.match(line('bin/busybox'), /^-rwxr-xr-x +1 0 +0 +100003 /);
    assert.match(line('bin/sh'), /^lrwxrwxrwx .* bin\/sh -> busybox$/);
    assert.match(line('lib64'), /^lrwxrwxrwx .* lib64 -> lib$/);
    assert.match(line('lib/modules'), /^drwxr-xr-x +2 0 +0 /);
    assert.match(line('etc/abcd'), /^-rw------- +1 0 +0 +4 /);
    assert.match(line('etc/drover-ünïcode.conf'), /^-rw-r----- +1 1000 +1000 +4 /);
    assert.match(line('dev/console'), /^crw------- +1 0 +0 +5, +1 /);
  });
});

describe('cpio newc: unpacked by busybox cpio', prereq('busybox', which('busybox') !== null, 'busybox'), () => {
  const dir = mkdtempSync(join(tmpdir(), 'drover-cpio-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  // Making device nodes needs root; elsewhere the rest is still checked.
  const entries = SORTED.filter((e) => isRoot || (e.type !== 'chardev' && e.type !== 'blockdev'));

  function check(out: string) {
    for (const e of entries) {
      const p = join(out, norm(e.path));
      const st = lstatSync(p);
      assert.equal(st.mode & 0o7777, e.mode, `${e.path} mode`);
      if (e.type === 'file') {
        assert.ok(st.isFile(), e.path);
        assert.ok(readFileSync(p).equals(e.data ?? Buffer.alloc(0)), `${e.path} contents`);
        assert.equal(st.mtimeMs, MTIME * 1000, `${e.path} mtime (-m)`);
      } else if (e.type === 'dir') assert.ok(st.isDirectory(), e.path);
      else if (e.type === 'symlink') assert.equal(readlinkSync(p), e.linkTarget);
      else if (e.type === 'chardev') assert.equal(st.rdev, 0x501); // makedev(5, 1)
      if (isRoot) assert.deepEqual([st.uid, st.gid], [e.uid ?? 0, e.gid ?? 0], `${e.path} owner`);
    }
  }

  it('extracts files, nested directories, symlinks and modes byte for byte', () => {
    const out = join(dir, 'plain');
    mkdirSync(out);
    execFileSync('busybox', ['cpio', '-idm'], { cwd: out, input: cpioNewc(entries), stdio: ['pipe', 'ignore', 'pipe'] });
    check(out);
  });

  it('extracts the gzip-compressed archive after gunzip', prereq('gunzip', which('gunzip') !== null, 'gzip'), () => {
    const out = join(dir, 'gz');
    mkdirSync(out);
    const gz = join(dir, 'initramfs.cpio.gz');
    writeFileSync(gz, gzipSync(cpioNewc(entries), { level: 9 }));
    const raw = execFileSync('gunzip', ['-c', gz], { maxBuffer: 64 * 1024 * 1024 });
    execFileSync('busybox', ['cpio', '-idm'], { cwd: out, input: raw, stdio: ['pipe', 'ignore', 'pipe'] });
    check(out);
  });
});
