// The ext2/3/4 reader against filesystems made by the real mke2fs from a staging tree, then edited
// with debugfs (device nodes, 32-bit owners, xattrs, ACLs, timestamps, fragmentation, uninit
// extents) so that everything runs unprivileged. Each filesystem is read back whole and compared
// with the staging tree, with what debugfs itself lists, and byte for byte by sha256.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync, closeSync, copyFileSync, linkSync, lstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync,
  readlinkSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync, writeSync,
} from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { prereq, which } from '../../test/helpers/prereq.js';
import { Ext4, type Ext4Entry, type Ext4Type } from './ext4.js';
import type { ReadAt } from './partitions.js';

const tools = which('mke2fs') !== null && which('debugfs') !== null && which('e2fsck') !== null;
const KiB = 1024;
const MiB = 1024 * KiB;

const fds: number[] = [];
function reader(path: string): ReadAt {
  const fd = openSync(path, 'r');
  fds.push(fd);
  return async (offset, length) => {
    const b = Buffer.allocUnsafe(length);
    const n = readSync(fd, b, 0, length, offset);
    return b.subarray(0, n);
  };
}

async function openFs(img: string, size = statSync(img).size): Promise<Ext4> {
  return Ext4.open(reader(img), 0, size);
}

/** Runs debugfs commands (one session); returns stdout. */
function debugfs(img: string, cmds: string[], write = false): string {
  return execFileSync('debugfs', [...(write ? ['-w'] : []), '-f', '-', img], { input: cmds.join('\n') + '\n', encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 64 * MiB });
}

/** Depth of a file's extent tree as debugfs reports it (-1: no extent tree). */
function extentDepth(img: string, path: string): number {
  const m = /^\s*\d+\/\s*(\d+)\s/m.exec(debugfs(img, [`ex ${path}`]));
  return m ? Number(m[1]) : -1;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function readAll(fs: Ext4, e: Ext4Entry | number, chunkSize?: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of fs.readFile(e, chunkSize ? { chunkSize } : {})) parts.push(b);
  return Buffer.concat(parts);
}

async function walkAll(fs: Ext4): Promise<Ext4Entry[]> {
  const out: Ext4Entry[] = [];
  for await (const e of fs.walk()) out.push(e);
  return out;
}

interface Expected {
  type: Ext4Type;
  mode: number;
  uid: number;
  gid: number;
  size?: number;
  nlink?: number;
  mtimeNs?: bigint;
  target?: string;
  sha?: string;
  rdev?: [number, number];
  xattrs?: Record<string, string>;
}

// A VFS-format POSIX ACL (what setfacl writes): user::rw- user:1000:rw- group::r-- mask::rw- other::r--
const ACL = Buffer.from('02000000' + '01000600ffffffff' + '02000600e8030000' + '04000400ffffffff' + '10000600ffffffff' + '20000400ffffffff', 'hex');
// security.capability, VFS_CAP_REVISION_2 with the effective bit: cap_net_raw+ep.
const CAP = Buffer.from('01000002' + '00200000' + '00000000' + '00000000' + '00000000', 'hex');
const BIGX = Buffer.from('x'.repeat(600));
// 2^31 s (past 2038: needs the epoch bits) and 123456789 ns.
const MTIME_EXTRA = ((123456789 << 2) | 1) >>> 0;
const SLOW_TARGET = 'sub/./deep/./er/../../deep/er/./././././././././././././file.txt';

describe('ext2/3/4 reader', prereq('mke2fs, debugfs and e2fsck', tools, 'e2fsprogs'), () => {
  const dir = mkdtempSync(join(tmpdir(), 'drover-ext4-'));
  const st = join(dir, 'staging');
  const written = join(dir, 'written.bin');
  let sock: Server | undefined;
  const expected = new Map<string, Expected>();

  before(async () => {
    mkdirSync(st);
    const put = (p: string, data: Buffer | string, mode?: number) => {
      writeFileSync(join(st, p), data);
      if (mode !== undefined) chmodSync(join(st, p), mode);
    };
    put('empty', '');
    put('hello.txt', 'hello, ext4\n');
    linkSync(join(st, 'hello.txt'), join(st, 'hard-link.txt'));
    put('block-4k', randomBytes(4 * KiB));
    put('rand-300k', randomBytes(300 * KiB));
    // Data and holes alternating: many extents (tree depth >= 1), and sparse regions.
    const holey = join(st, 'holey-6m');
    writeFileSync(holey, '');
    truncateSync(holey, 6 * MiB);
    let fd = openSync(holey, 'r+');
    for (let off = 0; off < 6 * MiB; off += 128 * KiB) writeSync(fd, randomBytes(64 * KiB), 0, 64 * KiB, off);
    closeSync(fd);
    // 1 KiB granularity: on a 1 KiB-block filesystem this is 512 extents, a tree of depth 2.
    const frag = join(st, 'frag-1m');
    writeFileSync(frag, '');
    truncateSync(frag, MiB);
    fd = openSync(frag, 'r+');
    for (let off = 0; off < MiB; off += 2 * KiB) writeSync(fd, randomBytes(KiB), 0, KiB, off);
    closeSync(fd);
    // Past 64 MiB a block-mapped file on 1 KiB blocks needs the triple indirect block.
    const sparse = join(st, 'sparse-70m');
    writeFileSync(sparse, 'start\n');
    truncateSync(sparse, 70 * MiB - 8);
    fd = openSync(sparse, 'r+');
    writeSync(fd, Buffer.from('the end\n'), 0, 8, 70 * MiB - 8);
    closeSync(fd);
    put('setuid', '#!/bin/sh\necho hi\n', 0o4755);
    put('setgid', '#!/bin/sh\n', 0o2711);
    mkdirSync(join(st, 'sticky'));
    chmodSync(join(st, 'sticky'), 0o1777);
    put('sticky/inside', 'x');
    mkdirSync(join(st, 'sub/deep/er'), { recursive: true });
    put('sub/deep/er/file.txt', 'deep file\n');
    put('ünïcødé name.txt', 'unicode\n');
    symlinkSync('hello.txt', join(st, 'fast'));
    symlinkSync(SLOW_TARGET, join(st, 'slow'));
    symlinkSync('/sub/deep', join(st, 'abs'));
    symlinkSync('loop2', join(st, 'loop1'));
    symlinkSync('loop1', join(st, 'loop2'));
    symlinkSync('nowhere', join(st, 'dangling'));
    execFileSync('mkfifo', [join(st, 'fifo')]);
    // mke2fs copies sockets; Node removes its socket file on close, so it stays open until after.
    sock = createServer();
    await new Promise<void>((res) => sock!.listen(join(st, 'sock'), res));
    mkdirSync(join(st, 'many'));
    for (let i = 0; i < 3000; i++) put(`many/n${String(i).padStart(4, '0')}`, i % 500 === 0 ? `file ${i}\n` : '');
    // Every other one is removed after mke2fs, leaving gaps that debugfs `write` then fills:
    // a physically fragmented file.
    mkdirSync(join(st, 'gaps'));
    for (let i = 0; i < 64; i++) put(`gaps/g${String(i).padStart(2, '0')}`, randomBytes(16 * KiB));
    writeFileSync(written, randomBytes(5 * MiB));
    writeFileSync(join(dir, 'cap.bin'), CAP);
    writeFileSync(join(dir, 'acl.bin'), ACL);
    writeFileSync(join(dir, 'bigx.bin'), BIGX);

    // What the filesystem must hold: the staging tree plus the debugfs edits made in makeFs.
    const scan = (rel: string) => {
      const abs = rel ? join(st, rel) : st;
      const s = lstatSync(abs, { bigint: true });
      const type: Ext4Type = s.isFile() ? 'file' : s.isDirectory() ? 'dir' : s.isSymbolicLink() ? 'symlink' : s.isFIFO() ? 'fifo' : s.isSocket() ? 'socket' : 'chardev';
      const e: Expected = { type, mode: Number(s.mode) & 0o7777, uid: Number(s.uid), gid: Number(s.gid) };
      // mke2fs -d keeps whole seconds only.
      if (type !== 'dir') e.mtimeNs = (s.mtimeNs / 1_000_000_000n) * 1_000_000_000n;
      if (type === 'file') {
        e.size = Number(s.size);
        e.nlink = Number(s.nlink);
        e.sha = sha(readFileSync(abs));
      }
      if (type === 'symlink') {
        e.target = readlinkSync(abs);
        e.size = Buffer.byteLength(e.target);
      }
      expected.set(rel, e);
      if (type === 'dir') for (const n of readdirSync(abs)) scan(rel ? `${rel}/${n}` : n);
    };
    scan('');
    for (let i = 1; i < 64; i += 2) expected.delete(`gaps/g${String(i).padStart(2, '0')}`);
    const w = readFileSync(written);
    expected.set('written-5m', { type: 'file', mode: 0o644, uid: 0, gid: 0, size: w.length, nlink: 1, sha: sha(w) });
    expected.set('cdev', { type: 'chardev', mode: 0o620, uid: 0, gid: 0, rdev: [4, 64] });
    expected.set('bdev', { type: 'blockdev', mode: 0o660, uid: 0, gid: 0, rdev: [259, 300] });
    const hello = expected.get('hello.txt')!;
    Object.assign(hello, { uid: 1000, gid: 1000, xattrs: { 'user.comment': Buffer.from('hi').toString('hex') } });
    Object.assign(expected.get('hard-link.txt')!, { uid: 1000, gid: 1000, xattrs: hello.xattrs });
    Object.assign(expected.get('setuid')!, { uid: 70000, gid: 70001, xattrs: { 'security.capability': CAP.toString('hex'), 'user.big': BIGX.toString('hex') } });
    Object.assign(expected.get('sticky')!, { xattrs: { 'system.posix_acl_access': ACL.toString('hex') } });
  });

  after(() => {
    sock?.close();
    for (const fd of fds.splice(0)) closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  });

  /** mke2fs -d, the debugfs edits, then e2fsck -fyD (which also builds the htree of many/). */
  function makeFs(name: string, mkfsArgs: string[], blockSize: number): string {
    const img = join(dir, `${name}.img`);
    execFileSync('mke2fs', ['-q', '-F', ...mkfsArgs, '-b', String(blockSize), '-d', st, img, '48M'], { stdio: 'pipe' });
    const holeStart = (64 * KiB) / blockSize;
    debugfs(img, [
      ...Array.from({ length: 32 }, (_, i) => `rm gaps/g${String(i * 2 + 1).padStart(2, '0')}`),
      `write ${written} written-5m`,
      'sif written-5m mode 0100644', 'sif written-5m uid 0', 'sif written-5m gid 0',
      'mknod cdev c 4 64', 'sif cdev mode 020620',
      'mknod bdev b 259 300', 'sif bdev mode 060660',
      'sif hello.txt uid 1000', 'sif hello.txt gid 1000',
      'sif setuid uid 70000', 'sif setuid gid 70001',
      `ea_set -f ${join(dir, 'cap.bin')} setuid security.capability`,
      `ea_set -f ${join(dir, 'bigx.bin')} setuid user.big`,
      'ea_set hello.txt user.comment hi',
      `ea_set -f ${join(dir, 'acl.bin')} sticky system.posix_acl_access`,
      'sif empty mtime 0x80000000', `sif empty mtime_extra ${MTIME_EXTRA}`,
      // Unwritten blocks inside a hole: still zeros when read.
      `fallocate holey-6m ${holeStart} ${holeStart + 7}`,
    ], true);
    const fsck = spawnSync('e2fsck', ['-fyD', img], { encoding: 'utf8' });
    assert.ok(fsck.status === 0 || fsck.status === 1, `e2fsck -fyD ${name}: ${fsck.stdout}${fsck.stderr}`);
    return img;
  }

  /** Everything the reader yields against the expectation, against debugfs' listing, and file contents. */
  async function checkTree(img: string, inodeSize: number) {
    const fs = await openFs(img);
    // Contents are read during the walk, as a tar writer does (this is where read-ahead kicks in).
    const entries: Ext4Entry[] = [];
    const hashes = new Map<string, string>();
    for await (const e of fs.walk()) {
      entries.push(e);
      if (e.type === 'file' && e.path !== 'rand-300k') hashes.set(e.path, sha(await readAll(fs, e)));
    }
    const byPath = new Map(entries.map((e) => [e.path, e]));
    assert.equal(byPath.size, entries.length, 'no path twice');
    assert.deepEqual(entries.map((e) => e.path).slice(0, 1), ['']);
    // Each directory comes before its children and siblings are in bytewise order.
    const seen = new Set<string>();
    for (const e of entries) {
      const parent = e.path.includes('/') ? e.path.slice(0, e.path.lastIndexOf('/')) : '';
      if (e.path !== '') assert.ok(seen.has(parent), `${e.path} after its directory`);
      seen.add(e.path);
    }
    const names = entries.filter((e) => e.path.startsWith('many/')).map((e) => Buffer.from(e.path));
    assert.deepEqual(names, [...names].sort(Buffer.compare));

    const lf = byPath.get('lost+found');
    assert.equal(lf?.type, 'dir');
    assert.deepEqual([...byPath.keys()].filter((p) => p !== 'lost+found').sort(), [...expected.keys()].sort());
    for (const [path, x] of expected) {
      const e = byPath.get(path)!;
      const got: Expected = { type: e.type, mode: e.mode, uid: e.uid, gid: e.gid };
      if (x.size !== undefined) got.size = e.size;
      if (x.nlink !== undefined) got.nlink = e.nlink;
      if (x.mtimeNs !== undefined && path !== 'empty') got.mtimeNs = e.mtimeNs;
      if (x.target !== undefined) got.target = e.target;
      if (x.rdev) got.rdev = [e.rdevMajor!, e.rdevMinor!];
      if (x.sha) got.sha = hashes.get(path) ?? sha(await readAll(fs, e));
      const xa = Object.fromEntries(e.xattrs.filter((a) => a.name !== 'security.selinux').map((a) => [a.name, a.value.toString('hex')]));
      if (x.xattrs || Object.keys(xa).length) got.xattrs = xa;
      const want = { ...x };
      if (path === 'empty') delete want.mtimeNs;
      assert.deepEqual(got, want, path);
    }
    assert.equal(byPath.get('hello.txt')!.ino, byPath.get('hard-link.txt')!.ino);
    assert.equal(byPath.get('hello.txt')!.nlink, 2);
    assert.deepEqual(byPath.get('setuid')!.xattrs.map((a) => a.name), ['security.capability', 'user.big']);
    // Large inodes carry the epoch bits and nanoseconds; 128-byte ones only a signed 32-bit second.
    assert.equal(byPath.get('empty')!.mtimeNs, inodeSize > 128 ? 2147483648_123456789n : -2147483648_000000000n);

    // debugfs' own view: inode number, full mode, 32-bit owner and size of every entry.
    const dirs = entries.filter((e) => e.type === 'dir');
    const out = debugfs(img, dirs.map((d) => `ls -p "/${d.path}"`));
    const typeBits: Record<Ext4Type, number> = { file: 0o100000, dir: 0o40000, symlink: 0o120000, chardev: 0o20000, blockdev: 0o60000, fifo: 0o10000, socket: 0o140000 };
    let listed = 0;
    let cwd = '';
    for (const line of out.split('\n')) {
      const cmd = /^debugfs: ls -p "\/(.*)"$/.exec(line);
      if (cmd) cwd = cmd[1]!;
      const f = line.split('/');
      if (f.length !== 8 || f[0] !== '') continue;
      const [, ino, mode, uid, gid, name, size] = f as [string, string, string, string, string, string, string];
      if (name === '.' || name === '..' || ino === '0') continue;
      listed++;
      const path = cwd ? `${cwd}/${name}` : name;
      const e = byPath.get(path);
      assert.ok(e, `debugfs lists ${path} which the reader does not`);
      assert.equal(e.ino, Number(ino), `inode of ${path}`);
      assert.equal(Number.parseInt(mode, 8), typeBits[e.type] | e.mode, `mode of ${path}`);
      assert.deepEqual([Number(uid), Number(gid)], [e.uid, e.gid], `owner of ${path}`);
      if (size !== '' && e.type !== 'dir') assert.equal(Number(size), e.size, `size of ${path}`);
    }
    assert.equal(listed, entries.length - 1);

    // The htree was really built, so reading it linearly was really tested.
    assert.match(debugfs(img, ['stat many']), /Flags: 0x[0-9a-f]*1[0-9a-f]{3}\b/);
    return { fs, entries, byPath };
  }

  const variants: { name: string; args: string[]; bs: number; inodeSize: number; check?: (img: string, entries: Ext4Entry[]) => void }[] = [
    {
      name: 'ext4 (4 KiB blocks, 64bit, metadata_csum, flex_bg)', args: ['-t', 'ext4'], bs: 4096, inodeSize: 256,
      check: (img) => {
        assert.ok(extentDepth(img, 'holey-6m') >= 1, 'holey-6m has an extent tree of depth >= 1');
        assert.ok(extentDepth(img, 'written-5m') >= 1, 'written-5m is fragmented');
        assert.match(debugfs(img, ['ex holey-6m']), /Uninit/);
        assert.match(debugfs(img, ['stat setuid']), /File ACL: [1-9]/, 'user.big went to the external xattr block');
      },
    },
    { name: 'ext4 without 64bit and metadata_csum', args: ['-t', 'ext4', '-O', '^64bit,^metadata_csum'], bs: 4096, inodeSize: 256 },
    {
      name: 'ext4 with 1 KiB blocks (extent tree of depth 2)', args: ['-t', 'ext4'], bs: 1024, inodeSize: 256,
      check: (img) => assert.equal(extentDepth(img, 'frag-1m'), 2),
    },
    {
      // 64 descriptors per 1 KiB block with 1024-block groups: groups 16 and up are described by
      // blocks inside meta groups, and few inodes per group put files there.
      name: 'ext4 with meta_bg', args: ['-t', 'ext4', '-g', '1024', '-N', '4096', '-O', 'meta_bg,^resize_inode'], bs: 1024, inodeSize: 256,
      check: (img, entries) => {
        const stats = debugfs(img, ['stats']);
        assert.match(stats, /Group 16: block bitmap at/);
        const ipg = Number(/Inodes per group:\s+(\d+)/.exec(stats)?.[1]);
        assert.ok(entries.some((e) => e.ino > 20 * ipg), 'some inodes are in groups described by meta_bg blocks');
      },
    },
    {
      name: 'ext4 without extents (block maps up to triple indirect)', args: ['-t', 'ext4', '-O', '^extent,^64bit'], bs: 1024, inodeSize: 256,
      check: (img) => {
        assert.match(debugfs(img, ['stat rand-300k']), /\(DIND\)/);
        assert.match(debugfs(img, ['stat sparse-70m']), /\(TIND\)/);
      },
    },
    { name: 'ext3', args: ['-t', 'ext3'], bs: 1024, inodeSize: 256, check: (img) => assert.match(debugfs(img, ['stat rand-300k']), /\(DIND\)/) },
    { name: 'ext2 with 128-byte inodes', args: ['-t', 'ext2', '-I', '128'], bs: 4096, inodeSize: 128 },
    { name: 'ext4 with bigalloc', args: ['-t', 'ext4', '-O', 'bigalloc', '-C', '16384', '-N', '8192'], bs: 4096, inodeSize: 256 },
  ];

  for (const v of variants) {
    it(`reads ${v.name}: the whole tree, metadata and contents`, async () => {
      const img = makeFs(v.name.replace(/\W+/g, '-'), v.args, v.bs);
      const { fs, entries } = await checkTree(img, v.inodeSize);
      v.check?.(img, entries);
      assert.equal(fs.blockSize, v.bs);
    });
  }

  describe('on one ext4 filesystem', () => {
    let img = '';
    let fs: Ext4;
    before(async () => {
      img = makeFs('main', ['-t', 'ext4', '-L', 'rootfs'], 4096);
      fs = await openFs(img);
    });

    it('reports label, uuid and features', () => {
      assert.equal(fs.label, 'rootfs');
      assert.match(debugfs(img, ['stats']), new RegExp(`Filesystem UUID:\\s+${fs.uuid}`));
      assert.ok(fs.features.incompat.includes('extent') && fs.features.incompat.includes('64bit'));
      assert.ok(fs.features.roCompat.includes('metadata_csum'));
      assert.ok(fs.features.compat.includes('dir_index'));
      assert.deepEqual(fs.warnings, []);
    });

    it('looks paths up, following symlinks only on the way', async () => {
      assert.equal((await fs.lookup(''))?.type, 'dir');
      assert.equal((await fs.lookup('/'))?.ino, 2);
      const fast = await fs.lookup('fast');
      assert.deepEqual([fast?.type, fast?.target, fast?.size], ['symlink', 'hello.txt', 9]);
      const slow = await fs.lookup('slow');
      assert.deepEqual([slow?.type, slow?.target], ['symlink', SLOW_TARGET]);
      assert.ok(SLOW_TARGET.length > 60);
      assert.equal((await fs.lookup('abs/er/file.txt'))?.path, 'sub/deep/er/file.txt');
      assert.equal((await fs.lookup('/sub/deep/er/../er/./file.txt'))?.path, 'sub/deep/er/file.txt');
      assert.equal((await fs.lookup('abs'))?.type, 'symlink');
      assert.equal((await fs.lookup('ünïcødé name.txt'))?.size, 8);
      assert.equal(await fs.lookup('nope'), null);
      assert.equal(await fs.lookup('hello.txt/x'), null);
      assert.equal(await fs.lookup('dangling/x'), null);
      assert.equal((await fs.lookup('loop1'))?.target, 'loop2');
      await assert.rejects(fs.lookup('loop1/x'), { code: 'DROVER_IMAGE_INVALID', message: /symbolic links/ });
    });

    it('reads whole files through symlinks, with a size limit', async () => {
      assert.equal((await fs.readFileAll('fast')).toString(), 'hello, ext4\n');
      assert.equal((await fs.readFileAll('slow')).toString(), 'deep file\n');
      assert.equal((await fs.readFileAll('/abs/er/file.txt')).toString(), 'deep file\n');
      assert.equal(sha(await fs.readFileAll('written-5m')), sha(readFileSync(written)));
      assert.equal((await fs.readFileAll('empty')).length, 0);
      await assert.rejects(fs.readFileAll('holey-6m', MiB), { code: 'DROVER_IMAGE_INVALID', message: /more than/ });
      await assert.rejects(fs.readFileAll('dangling'), { code: 'DROVER_IMAGE_INVALID' });
      await assert.rejects(fs.readFileAll('sub'), { code: 'DROVER_IMAGE_INVALID', message: /not a regular file/ });
    });

    it('lists directories', async () => {
      assert.deepEqual(await fs.readdir('abs'), ['er']);
      assert.deepEqual(await fs.readdir('sticky'), ['inside']);
      assert.equal((await fs.readdir('many')).length, 3000);
      assert.ok((await fs.readdir('/')).includes('lost+found'));
      await assert.rejects(fs.readdir('hello.txt'), { code: 'DROVER_IMAGE_INVALID' });
    });

    it('streams a sparse file in bounded chunks: exactly its size, holes as zeros', async () => {
      const e = (await fs.lookup('sparse-70m'))!;
      let total = 0;
      let max = 0;
      const h = createHash('sha256');
      for await (const b of fs.readFile(e, { chunkSize: 3000 })) {
        total += b.length;
        max = Math.max(max, b.length);
        h.update(b);
      }
      assert.equal(total, 70 * MiB);
      assert.ok(max <= 3000);
      assert.equal(h.digest('hex'), sha(readFileSync(join(st, 'sparse-70m'))));
      const holey = (await fs.lookup('holey-6m'))!;
      assert.equal(sha(await readAll(fs, holey.ino, 5000)), sha(readFileSync(join(st, 'holey-6m'))));
      await assert.rejects(readAll(fs, (await fs.lookup('sub'))!), TypeError);
    });

    it('reads a value kept in an xattr inode (ea_inode)', async () => {
      const eaImg = join(dir, 'ea-inode.img');
      const value = randomBytes(4096);
      writeFileSync(join(dir, 'ea-value.bin'), value);
      execFileSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '4096', '-O', 'ea_inode', eaImg, '16M'], { stdio: 'ignore' });
      debugfs(eaImg, ['write /dev/null f', `ea_set -f ${join(dir, 'ea-value.bin')} f user.big`], true);
      const e = (await (await openFs(eaImg)).lookup('f'))!;
      assert.deepEqual(e.xattrs.map((a) => [a.name, sha(a.value)]), [['user.big', sha(value)]]);
    });

    function damaged(name: string, cmds: string[]): string {
      const copy = join(dir, `${name}.img`);
      copyFileSync(img, copy);
      if (cmds.length) debugfs(copy, cmds, true);
      return copy;
    }

    /** Byte offset of a path's inode in the image, from debugfs' imap. */
    function inodeOffset(image: string, path: string): number {
      const m = /located at block (\d+), offset (0x[0-9a-f]+)/.exec(debugfs(image, [`imap ${path}`]));
      assert.ok(m);
      return Number(m[1]) * 4096 + Number(m[2]);
    }

    function patch(image: string, at: number, bytes: Buffer) {
      const fd = openSync(image, 'r+');
      writeSync(fd, bytes, 0, bytes.length, at);
      closeSync(fd);
    }

    async function readEverything(f: Ext4) {
      for await (const e of f.walk()) if (e.type === 'file') for await (const _ of f.readFile(e)) void _;
    }

    it('refuses a truncated image, whether or not the size given says so', async () => {
      const t = damaged('truncated', []);
      truncateSync(t, 12 * MiB);
      await assert.rejects(openFs(t), { code: 'DROVER_IMAGE_CORRUPT', message: /truncated/ });
      // The partition table claims the full size but the file is short: found while reading.
      const f = await openFs(t, 48 * MiB);
      await assert.rejects(readEverything(f), { code: 'DROVER_IMAGE_CORRUPT', message: /truncated/ });
    });

    it('refuses a bad extent header and an extent past the end, naming inode and path', async () => {
      const a = damaged('bad-magic', []);
      patch(a, inodeOffset(a, 'rand-300k') + 0x28, Buffer.from([0x0b, 0xad]));
      const fa = await openFs(a);
      const ea = (await fa.lookup('rand-300k'))!;
      await assert.rejects(readAll(fa, ea), { code: 'DROVER_IMAGE_CORRUPT', message: new RegExp(`inode ${ea.ino} \\(/rand-300k\\).*magic`) });

      const b = damaged('past-end', []);
      patch(b, inodeOffset(b, 'block-4k') + 0x28 + 12 + 8, Buffer.from([0xff, 0xff, 0xff, 0x7f]));
      const fb = await openFs(b);
      await assert.rejects(readAll(fb, (await fb.lookup('block-4k'))!), { code: 'DROVER_IMAGE_CORRUPT', message: /block-4k.*past the end/ });
    });

    it('refuses directory loops and entries with bad inode numbers', async () => {
      await assert.rejects(walkAll(await openFs(damaged('loop', ['ln / sub/loop']))), { code: 'DROVER_IMAGE_CORRUPT', message: /sub\/loop.*loop/ });
      await assert.rejects(walkAll(await openFs(damaged('reserved', ['ln <5> sub/bad']))), { code: 'DROVER_IMAGE_CORRUPT', message: /sub\/bad has a bad inode number \(5\)/ });
      await assert.rejects(walkAll(await openFs(damaged('unused', ['ln <6000> sub/ghost']))), { code: 'DROVER_IMAGE_CORRUPT', message: /sub\/ghost/ });
    });

    it('reads a filesystem whose journal needs recovery, with a warning', async () => {
      const f = await openFs(damaged('recover', ['feature needs_recovery']));
      assert.match(f.warnings.join(' '), /journal needs recovery/);
      assert.equal((await f.readFileAll('hello.txt')).toString(), 'hello, ext4\n');
    });
  });

  it('refuses what is not ext (a FAT filesystem) and features it cannot read', async (t) => {
    if (which('mkfs.vfat')) {
      const fat = join(dir, 'fat.img');
      writeFileSync(fat, '');
      truncateSync(fat, 8 * MiB);
      execFileSync('mkfs.vfat', ['-F', '32', fat], { stdio: 'ignore' });
      await assert.rejects(openFs(fat), { code: 'DROVER_IMAGE_NO_ROOT', message: /not an ext2\/3\/4 filesystem/ });
    } else {
      t.diagnostic('mkfs.vfat missing (dosfstools): FAT case not run');
    }
    const zero = join(dir, 'zero.img');
    writeFileSync(zero, Buffer.alloc(64 * KiB));
    await assert.rejects(openFs(zero), { code: 'DROVER_IMAGE_NO_ROOT' });
    for (const feature of ['inline_data', 'encrypt', 'casefold']) {
      const img = join(dir, `${feature}.img`);
      execFileSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-O', feature, img, '8M'], { stdio: 'ignore' });
      await assert.rejects(openFs(img), { code: 'DROVER_IMAGE_UNSUPPORTED', message: new RegExp(`"${feature}"`) });
    }
  });
});
