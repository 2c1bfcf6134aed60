// ELF and kernel inspection against real files: the host's own binaries (cross-checked with
// binutils' readelf where present), an arm64 module and kernel from Debian's linux-image-arm64,
// the VideoCore firmware ELF from raspi-firmware, plus built-up Images, zImages and ELFs for the
// layouts no fixture has, and damaged input that must be refused, not misread.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, describe, it } from 'node:test';
import { DroverError } from '../domain/errors.js';
import { prereq, which } from '../../test/helpers/prereq.js';
import { readElf } from './elf.js';
import { kernelInfo } from './kernel.js';

const root = new URL('../../', import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), 'drover-elf-kernel-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const cache = process.env.DROVER_FIXTURE_CACHE ?? join(homedir(), '.cache', 'drover-fixtures');
const debDir = join(cache, 'debs-arm64');
const debs = existsSync(debDir) ? readdirSync(debDir) : [];
const kernelDeb = debs.find((f) => /^linux-image-\d.*_arm64\.deb$/.test(f));
const busyboxDeb = debs.find((f) => /^busybox-static_.*_arm64\.deb$/.test(f));
const firmwareDeb = debs.find((f) => /^raspi-firmware_.*\.deb$/.test(f));
const hasDpkg = which('dpkg-deb') !== null;

/** The boot tree from Debian packages; built (and cached) by the fixture script when missing. */
function debianBootTree(): string | null {
  const cached = join(cache, 'boot-tree');
  if (existsSync(join(cached, '.complete'))) return cached;
  if (!hasDpkg || !which('apt-get')) return null;
  const out = join(tmp, 'boot');
  const r = spawnSync('bash', [join(root, 'test/fixtures/build-boot-tree.sh'), out], { encoding: 'utf8', timeout: 600_000 });
  return r.status === 0 ? out : null;
}
const bootTree = debianBootTree();

/** Files matching `pattern` from a .deb, extracted under tmp. */
function fromDeb(deb: string, pattern: string): string[] {
  const dest = mkdtempSync(join(tmp, 'deb-'));
  execFileSync('sh', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" --wildcards "$3"', 'sh', join(debDir, deb), dest, pattern]);
  const found: string[] = [];
  const walk = (d: string) => {
    for (const n of readdirSync(d, { withFileTypes: true })) (n.isDirectory() ? walk(join(d, n.name)) : found.push(join(d, n.name)));
  };
  walk(dest);
  return found;
}

const corrupt = (e: unknown) => e instanceof DroverError && e.code === 'DROVER_IMAGE_CORRUPT';

// --- built-up kernels ----------------------------------------------------------------------

const BANNER_V8 = 'Linux version 6.6.51+rpt-rpi-v8 (serge@raspberrypi.com) (aarch64-linux-gnu-gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT Debian 1:6.6.51-1+rpt3 (2024-10-08)\n';

/** An arm64 Image: the 64-byte header with its magic, code-like filler, a decoy, the banner. */
function arm64Image(banner = BANNER_V8): Buffer {
  const head = Buffer.alloc(64);
  head.writeUInt32LE(0x14000000, 0); // b . (the header starts with a branch)
  head.writeUInt32LE(0x644d5241, 0x38);
  return Buffer.concat([head, Buffer.alloc(200_000, 0xd5), Buffer.from('\0Linux version %s\0'), Buffer.alloc(50_000, 0x1f), Buffer.from(banner), Buffer.alloc(100_000)]);
}

/** An arm32 zImage: header, decompressor with a stray gzip-like magic, payload, size, appended DTB. */
function zImage(payload: Buffer): Buffer {
  const head = Buffer.alloc(0x34);
  head.writeUInt32LE(0x016f2818, 0x24);
  head.writeUInt32LE(0x04030201, 0x30);
  const stub = Buffer.concat([Buffer.alloc(4000, 0xe1), Buffer.from([0x1f, 0x8b, 0x08, 0x00, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]), Buffer.alloc(3000, 0xe3)]);
  const size = Buffer.alloc(4);
  size.writeUInt32LE(123456);
  return Buffer.concat([head, stub, payload, size, Buffer.from([0xd0, 0x0d, 0xfe, 0xed]), Buffer.alloc(1000, 7)]);
}

const armBody = (release: string) => Buffer.concat([Buffer.alloc(300_000, 0xea), Buffer.from(`Linux version ${release} (dom@buildbot) (arm-linux-gnueabihf-gcc-8) #1 SMP Mon Jan 1 00:00:00 GMT 2024\n`), Buffer.alloc(10_000)]);
const xz = which('xz') !== null;
const xzc = (b: Buffer) => execFileSync('xz', ['-c', '-0', '--check=crc32'], { input: b, maxBuffer: 256 * 1024 * 1024 });

describe('kernelInfo', () => {
  it('reads a raw arm64 Image like Raspberry Pi OS\'s kernel8.img, and the same gzipped', () => {
    const raw = arm64Image();
    assert.deepEqual(kernelInfo(raw), { version: '6.6.51+rpt-rpi-v8', arch: 'arm64', compression: 'none' });
    assert.deepEqual(kernelInfo(gzipSync(raw)), { version: '6.6.51+rpt-rpi-v8', arch: 'arm64', compression: 'gzip' });
  });

  it('reads an xz-wrapped Image with xz(1)', prereq('xz', xz, 'xz-utils'), () => {
    assert.deepEqual(kernelInfo(xzc(arm64Image())), { version: '6.6.51+rpt-rpi-v8', arch: 'arm64', compression: 'xz' });
  });

  it('finds the gzip payload of an arm32 zImage past a stray magic and ignores what follows it', () => {
    const img = zImage(gzipSync(armBody('5.10.103-v7l+')));
    assert.deepEqual(kernelInfo(img), { version: '5.10.103-v7l+', arch: 'armhf', compression: 'gzip' });
  });

  it('finds the xz payload of an arm32 zImage', prereq('xz', xz, 'xz-utils'), () => {
    assert.deepEqual(kernelInfo(zImage(xzc(armBody('6.1.21-v7+')))), { version: '6.1.21-v7+', arch: 'armhf', compression: 'xz' });
  });

  it('reads an EFI zboot image (MZ "zimg" header naming a gzip payload)', () => {
    const payload = gzipSync(arm64Image());
    const head = Buffer.alloc(0x200);
    head.write('MZ', 0, 'latin1');
    head.write('zimg', 4, 'latin1');
    head.writeUInt32LE(0x200, 8);
    head.writeUInt32LE(payload.length, 12);
    head.write('gzip\0', 0x18, 'latin1');
    assert.deepEqual(kernelInfo(Buffer.concat([head, payload, Buffer.alloc(4096)])), { version: '6.6.51+rpt-rpi-v8', arch: 'arm64', compression: 'gzip' });
  });

  it('says what it cannot know: garbage, an empty file, a zImage without payload, a broken gzip', () => {
    const unknown = { version: null, arch: 'unknown', compression: 'unknown' };
    assert.deepEqual(kernelInfo(Buffer.alloc(1_000_000, 'not a kernel ')), unknown);
    assert.deepEqual(kernelInfo(Buffer.alloc(0)), unknown);
    assert.deepEqual(kernelInfo(Buffer.from('Linux version unknown, see the Linux version 2 docs')), unknown);
    assert.deepEqual(kernelInfo(zImage(Buffer.alloc(5000, 0x55))), { version: null, arch: 'armhf', compression: 'unknown' });
    const gz = gzipSync(arm64Image());
    gz.fill(0xff, 20, 200);
    assert.deepEqual(kernelInfo(gz), { version: null, arch: 'unknown', compression: 'gzip' });
    // A truncated gzip still yields what precedes the cut.
    const early = gzipSync(Buffer.concat([arm64Image().subarray(0, 64), Buffer.from(BANNER_V8), Buffer.alloc(2_000_000, 1)]));
    assert.equal(kernelInfo(early.subarray(0, Math.floor(early.length / 2))).version, '6.6.51+rpt-rpi-v8');
  });

  const kernel = bootTree ? join(bootTree, 'kernel8.img') : null;
  it('reads Debian\'s arm64 kernel (linux-image-arm64), raw and gzipped', prereq('the Debian arm64 kernel fixture (test/fixtures/build-boot-tree.sh)', kernel !== null && existsSync(kernel), 'apt (and access to the Debian archive)'), () => {
    const buf = readFileSync(kernel!);
    const info = kernelInfo(buf);
    const expected = kernelDeb ? /^linux-image-(.+?)_/.exec(kernelDeb)![1]! : null;
    if (expected) assert.equal(info.version, expected);
    else assert.match(info.version ?? '', /^\d+\.\d+\.\d+-\d+-arm64$/);
    assert.equal(info.arch, 'arm64');
    // bookworm ships it raw; a gzipped vmlinuz (as in other releases) is the other case.
    assert.equal(info.compression, buf[0] === 0x1f && buf[1] === 0x8b ? 'gzip' : 'none');
    if (info.compression === 'none') assert.deepEqual(kernelInfo(gzipSync(buf, { level: 1 })), { ...info, compression: 'gzip' });
  });
});

// --- ELF -----------------------------------------------------------------------------------

interface Spec {
  is64: boolean;
  le: boolean;
  machine: number;
  type?: number;
  interp?: string;
  needed?: string[];
}

/** A minimal ELF: one PT_LOAD covering the file, PT_INTERP, PT_DYNAMIC with DT_NEEDED → DT_STRTAB. */
function buildElf(s: Spec): Buffer {
  const eh = s.is64 ? 64 : 52;
  const ph = s.is64 ? 56 : 32;
  const dynEnt = s.is64 ? 16 : 8;
  const base = 0x400000;
  const phnum = 3;
  const interpOff = eh + phnum * ph;
  const interp = Buffer.from(`${s.interp ?? ''}\0`);
  const strOff = interpOff + interp.length;
  const strtab = Buffer.from(`\0${(s.needed ?? []).map((n) => `${n}\0`).join('')}`);
  const dynOff = strOff + strtab.length + ((8 - ((strOff + strtab.length) % 8)) % 8);
  const dyn: [number, number][] = [];
  let nameAt = 1;
  for (const n of s.needed ?? []) {
    dyn.push([1, nameAt]);
    nameAt += n.length + 1;
  }
  dyn.push([5, base + strOff], [10, strtab.length], [0, 0]);
  const size = dynOff + dyn.length * dynEnt;
  const b = Buffer.alloc(size);
  const u16 = (o: number, v: number) => (s.le ? b.writeUInt16LE(v, o) : b.writeUInt16BE(v, o));
  const u32 = (o: number, v: number) => (s.le ? b.writeUInt32LE(v, o) : b.writeUInt32BE(v, o));
  const word = (o: number, v: number) => (s.is64 ? (s.le ? b.writeBigUInt64LE(BigInt(v), o) : b.writeBigUInt64BE(BigInt(v), o)) : u32(o, v));
  b.write('\x7fELF', 0, 'latin1');
  b[4] = s.is64 ? 2 : 1;
  b[5] = s.le ? 1 : 2;
  b[6] = 1;
  u16(16, s.type ?? 3);
  u16(18, s.machine);
  u32(20, 1);
  word(s.is64 ? 32 : 28, eh); // e_phoff
  u16(s.is64 ? 52 : 40, eh);
  u16(s.is64 ? 54 : 42, ph);
  u16(s.is64 ? 56 : 44, phnum);
  const phdr = (i: number, type: number, off: number, filesz: number) => {
    const p = eh + i * ph;
    u32(p, type);
    if (s.is64) {
      word(p + 8, off);
      word(p + 16, base + off);
      word(p + 32, filesz);
      word(p + 40, filesz);
    } else {
      u32(p + 4, off);
      u32(p + 8, base + off);
      u32(p + 16, filesz);
      u32(p + 20, filesz);
    }
  };
  phdr(0, 1, 0, size);
  phdr(1, s.interp ? 3 : 6 /* PT_PHDR: harmless */, interpOff, interp.length);
  phdr(2, 2, dynOff, dyn.length * dynEnt);
  interp.copy(b, interpOff);
  strtab.copy(b, strOff);
  dyn.forEach(([tag, val], i) => {
    word(dynOff + i * dynEnt, tag);
    word(dynOff + i * dynEnt + (s.is64 ? 8 : 4), val);
  });
  return b;
}

/** What binutils says: interpreter and DT_NEEDED names. */
function readelfSays(file: string): { interpreter: string | null; needed: string[] } {
  const out = execFileSync('readelf', ['-W', '-l', '-d', file], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' }, maxBuffer: 64 * 1024 * 1024 });
  return {
    interpreter: /Requesting program interpreter: (.*)\]/.exec(out)?.[1] ?? null,
    needed: [...out.matchAll(/\(NEEDED\)\s+Shared library: \[(.*)\]/g)].map((m) => m[1]!),
  };
}

const hostArch = process.arch === 'x64' ? 'x86_64' : process.arch === 'arm64' ? 'arm64' : null;
const hostLoader = { x86_64: '/lib64/ld-linux-x86-64.so.2', arm64: '/lib/ld-linux-aarch64.so.1' };

describe('readElf', () => {
  it('reads /bin/ls: the host architecture, PIE, its loader and libc', hostArch ? { skip: false } : { skip: `host architecture ${process.arch} has no expectations here` }, () => {
    const info = readElf(readFileSync('/bin/ls'));
    assert.equal(info.arch, hostArch);
    assert.equal(info.class, 64);
    assert.equal(info.littleEndian, true);
    assert.equal(info.machine, hostArch === 'x86_64' ? 62 : 183);
    assert.equal(info.type, 'dyn');
    assert.equal(info.interpreter, hostLoader[hostArch!]);
    assert.ok(info.needed.includes('libc.so.6'), info.needed.join(' '));
    assert.equal(info.isStatic, false);
  });

  it('agrees with readelf on the host\'s executables and libraries', prereq('readelf', which('readelf') !== null, 'binutils'), () => {
    const files: string[] = [];
    for (const d of ['/usr/bin', '/usr/sbin', '/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu']) {
      if (!existsSync(d)) continue;
      let n = 0;
      for (const name of readdirSync(d).sort()) {
        if (n >= 40) break;
        const f = join(d, name);
        try {
          const st = statSync(f);
          if (!st.isFile() || st.size > 16 * 1024 * 1024 || st.size < 64) continue;
          if (readFileSync(f).subarray(0, 4).toString('latin1') !== '\x7fELF') continue;
        } catch {
          continue;
        }
        files.push(f);
        n++;
      }
    }
    assert.ok(files.length >= 20, `only ${files.length} host ELF files found`);
    let withNeeded = 0;
    for (const f of files) {
      const info = readElf(readFileSync(f));
      assert.deepEqual({ interpreter: info.interpreter, needed: info.needed }, readelfSays(f), f);
      if (info.needed.length) withNeeded++;
    }
    assert.ok(withNeeded > 0);
  });

  it('reads an arm64 kernel module from Debian\'s linux-image-arm64', prereq('the cached linux-image arm64 .deb (test/fixtures/build-boot-tree.sh) and dpkg-deb', kernelDeb !== undefined && hasDpkg, 'dpkg and apt (and access to the Debian archive)'), () => {
    const [ko] = fromDeb(kernelDeb!, '*virtio_net.ko');
    assert.ok(ko, 'virtio_net.ko not in the package');
    assert.deepEqual(readElf(readFileSync(ko)), { class: 64, littleEndian: true, machine: 183, arch: 'arm64', type: 'rel', interpreter: null, needed: [], isStatic: true });
  });

  it('reads the Pi firmware start.elf: a static 32-bit VideoCore executable', prereq('the Debian boot tree fixture (test/fixtures/build-boot-tree.sh)', bootTree !== null || (firmwareDeb !== undefined && hasDpkg), 'apt (and access to the Debian archive)'), () => {
    const file = bootTree ? join(bootTree, 'start.elf') : fromDeb(firmwareDeb!, '*/start.elf')[0]!;
    assert.deepEqual(readElf(readFileSync(file)), { class: 32, littleEndian: true, machine: 137, arch: 'unknown', type: 'exec', interpreter: null, needed: [], isStatic: true });
  });

  // busybox-static is not downloaded by the fixture script; used when something else cached it.
  it('reads a static arm64 busybox', busyboxDeb && hasDpkg ? { skip: false } : { skip: 'no busybox-static arm64 .deb in the fixture cache' }, () => {
    const [bb] = fromDeb(busyboxDeb!, '*bin/busybox');
    const info = readElf(readFileSync(bb!));
    assert.equal(info.arch, 'arm64');
    assert.equal(info.isStatic, true);
    assert.equal(info.interpreter, null);
    assert.ok(info.type === 'exec' || info.type === 'dyn', info.type);
  });

  it('reads 32-bit and big-endian layouts (built up: no such binaries at hand)', () => {
    const armhf = buildElf({ is64: false, le: true, machine: 40, interp: '/lib/ld-linux-armhf.so.3', needed: ['libc.so.6', 'libm.so.6'] });
    assert.deepEqual(readElf(armhf), { class: 32, littleEndian: true, machine: 40, arch: 'armhf', type: 'dyn', interpreter: '/lib/ld-linux-armhf.so.3', needed: ['libc.so.6', 'libm.so.6'], isStatic: false });
    const be = buildElf({ is64: true, le: false, machine: 21 /* PPC64 */, type: 2, needed: ['libz.so.1'] });
    assert.deepEqual(readElf(be), { class: 64, littleEndian: false, machine: 21, arch: 'unknown', type: 'exec', interpreter: null, needed: ['libz.so.1'], isStatic: false });
    const riscv = buildElf({ is64: true, le: true, machine: 243, interp: '/lib/ld-linux-riscv64-lp64d.so.1', needed: ['libc.so.6'] });
    assert.equal(readElf(riscv).arch, 'riscv64');
    // static-pie: a dynamic section, but nothing to load.
    const staticPie = buildElf({ is64: true, le: true, machine: 183 });
    assert.equal(readElf(staticPie).isStatic, true);
    // The builder agrees with binutils, so the cases above test the reader, not the builder.
    if (which('readelf')) {
      const f = join(tmp, 'armhf.elf');
      writeFileSync(f, armhf);
      assert.deepEqual(readelfSays(f), { interpreter: '/lib/ld-linux-armhf.so.3', needed: ['libc.so.6', 'libm.so.6'] });
    }
  });

  it('refuses non-ELF, truncated and inconsistent files with DROVER_IMAGE_CORRUPT', () => {
    const ls = readFileSync('/bin/ls');
    const good = buildElf({ is64: true, le: true, machine: 183, interp: '/lib/ld-linux-aarch64.so.1', needed: ['libc.so.6'] });
    const patched = (f: (b: Buffer) => void) => {
      const b = Buffer.from(good);
      f(b);
      return b;
    };
    const strOff = good.indexOf('libc.so.6') - 1;
    const dynOff = good.length - 4 * 16;
    for (const [what, b] of [
      ['empty', Buffer.alloc(0)],
      ['text', Buffer.from('#!/bin/sh\necho hello\n')],
      ['magic only', Buffer.from('\x7fELF', 'latin1')],
      ['bad class', patched((b) => (b[4] = 3))],
      ['bad data encoding', patched((b) => (b[5] = 0))],
      ['header cut', ls.subarray(0, 40)],
      ['program headers cut', ls.subarray(0, 100)],
      ['segments cut', ls.subarray(0, 4096)],
      ['tiny phentsize', patched((b) => b.writeUInt16LE(8, 54))],
      ['phoff past the end', patched((b) => b.writeBigUInt64LE(0xffffffffn, 32))],
      ['phoff beyond 2^53', patched((b) => b.writeBigUInt64LE(0xffffffffffffff00n, 32))],
      ['interpreter unterminated', patched((b) => b.fill(0x41, good.indexOf('/lib/ld'), strOff))],
      ['needed name past the string table', patched((b) => b.writeBigUInt64LE(1000n, dynOff + 8))],
      ['string table unterminated', patched((b) => b.fill(0x41, strOff + 1, dynOff))],
      ['string table outside every PT_LOAD', patched((b) => b.writeBigUInt64LE(0x10n, dynOff + 16 + 8))],
      ['no string table', patched((b) => b.writeBigUInt64LE(0x7777n, dynOff + 16))],
    ] as [string, Buffer][]) {
      assert.throws(() => readElf(b), (e: unknown) => corrupt(e), what);
    }
  });

  it('never reads out of range or loops on damaged headers (fuzzed /bin/ls)', () => {
    const ls = readFileSync('/bin/ls');
    let seed = 0x2545f491;
    const rnd = (n: number) => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    // The ELF header and program headers live in the first KiB.
    let refused = 0;
    for (let i = 0; i < 3000; i++) {
      const b = Buffer.from(ls);
      for (let k = 1 + rnd(4); k > 0; k--) b[rnd(1024)] = rnd(256);
      try {
        const r = readElf(b);
        assert.ok(Array.isArray(r.needed));
      } catch (e) {
        assert.ok(corrupt(e), `mutation ${i}: ${String(e)}`);
        refused++;
      }
    }
    assert.ok(refused > 0);
  });
});
