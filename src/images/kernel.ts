// What a Pi kernel file is: its architecture, how it is compressed, and the release it reports
// (`uname -r`), which names the /lib/modules directory an initramfs must take modules from.
// Layouts recognised: an arm64 Image (raw, as Raspberry Pi OS's kernel8.img and Debian's
// bookworm vmlinuz, or wrapped whole in gzip/xz/…), an arm32 zImage (a self-extractor whose
// payload is searched for), and an EFI zboot image (newer distributions' arm64 vmlinuz).
// The release is read from the banner "Linux version 6.1.0-50-arm64 (…)" in the decompressed
// kernel; gzip is undone with node:zlib, other formats by their command-line tools if present.
import { spawnSync } from 'node:child_process';
import { constants as zc, inflateRawSync } from 'node:zlib';

export interface KernelInfo {
  /** The release, e.g. "6.1.0-50-arm64" or "6.6.51+rpt-rpi-v8"; null when no banner was found. */
  version: string | null;
  arch: 'arm64' | 'armhf' | 'unknown';
  /** For a zImage or EFI zboot image, that of the payload inside. */
  compression: 'none' | 'gzip' | 'xz' | 'lzo' | 'lz4' | 'zstd' | 'unknown';
}

type Packed = Exclude<KernelInfo['compression'], 'none' | 'unknown'>;

/** Decompressed kernels are tens of MiB; anything far larger is not a kernel and not worth the memory. */
const MAX_OUTPUT = 128 * 1024 * 1024;
/** Payload candidates tried in a zImage: stray magic bytes in the decompressor code are rare. */
const MAX_CANDIDATES = 8;
/** Without a banner, only this much output makes a candidate count as the kernel (stray magic inflates to a few bytes). */
const PLAUSIBLE_KERNEL = 1024 * 1024;

const ARM64_MAGIC = 0x644d5241; // "ARM\x64" at 0x38, little-endian
const ZIMAGE_MAGIC = 0x016f2818; // at 0x24

const MAGICS: [Packed, Buffer][] = [
  ['gzip', Buffer.from([0x1f, 0x8b, 0x08])],
  ['xz', Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])],
  ['zstd', Buffer.from([0x28, 0xb5, 0x2f, 0xfd])],
  // The kernel's lz4 is the legacy frame format (lz4 -l).
  ['lz4', Buffer.from([0x02, 0x21, 0x4c, 0x18])],
  ['lzo', Buffer.from([0x89, 0x4c, 0x5a, 0x4f, 0x00, 0x0d, 0x0a, 0x1a, 0x0a])],
];

export function kernelInfo(buf: Buffer): KernelInfo {
  if (isArm64Image(buf)) return { version: bannerVersion(buf), arch: 'arm64', compression: 'none' };
  if (isZImage(buf)) return { arch: 'armhf', ...zImagePayload(buf) };
  const zboot = efiZboot(buf);
  if (zboot) return zboot;
  const outer = MAGICS.find(([, m]) => startsWith(buf, 0, m))?.[0];
  if (outer) {
    const inner = decompress(outer, buf);
    return { version: inner && bannerVersion(inner), arch: inner ? innerArch(inner) : 'unknown', compression: outer };
  }
  const version = bannerVersion(buf);
  return { version, arch: 'unknown', compression: version ? 'none' : 'unknown' };
}

const isArm64Image = (b: Buffer) => b.length >= 0x40 && b.readUInt32LE(0x38) === ARM64_MAGIC;
const isZImage = (b: Buffer) => b.length >= 0x30 && b.readUInt32LE(0x24) === ZIMAGE_MAGIC;
const innerArch = (b: Buffer): KernelInfo['arch'] => (isArm64Image(b) ? 'arm64' : isZImage(b) ? 'armhf' : 'unknown');
const startsWith = (b: Buffer, at: number, m: Buffer) => b.length >= at + m.length && b.subarray(at, at + m.length).equals(m);

/** The compressed kernel sits somewhere after the decompressor code; try each magic found, earliest first. */
function zImagePayload(buf: Buffer): Pick<KernelInfo, 'version' | 'compression'> {
  const candidates: { kind: Packed; at: number }[] = [];
  for (const [kind, m] of MAGICS) {
    let found = 0;
    for (let at = buf.indexOf(m, 0x30); at !== -1 && found < MAX_CANDIDATES; at = buf.indexOf(m, at + 1)) {
      // gzip's flag byte has three reserved bits that must be clear: cheap filter for strays.
      if (kind === 'gzip' && (buf[at + 3] ?? 0xff) & 0xe0) continue;
      candidates.push({ kind, at });
      found++;
    }
  }
  candidates.sort((a, b) => a.at - b.at);
  let fallback: Packed | null = null;
  for (const c of candidates.slice(0, MAX_CANDIDATES)) {
    const out = decompress(c.kind, buf.subarray(c.at));
    if (!out || out.length === 0) continue;
    const version = bannerVersion(out);
    if (version) return { version, compression: c.kind };
    if (out.length >= PLAUSIBLE_KERNEL) fallback ??= c.kind;
  }
  return { version: null, compression: fallback ?? 'unknown' };
}

/**
 * EFI zboot (drivers/firmware/efi/libstub/zboot-header.S): "MZ", "zimg", payload offset and
 * size, then the compression name, e.g. "gzip" or "zstd22".
 */
function efiZboot(buf: Buffer): KernelInfo | null {
  if (buf.length < 0x40 || buf.readUInt16LE(0) !== 0x5a4d || buf.subarray(4, 8).toString('latin1') !== 'zimg') return null;
  const off = buf.readUInt32LE(8);
  const size = buf.readUInt32LE(12);
  const name = buf.subarray(0x18, 0x38).toString('latin1').replace(/\0.*$/s, '');
  const kind: Packed | null = name.startsWith('gzip') ? 'gzip' : name.startsWith('xz') ? 'xz' : name.startsWith('zstd') ? 'zstd' : name.startsWith('lz4') ? 'lz4' : name.startsWith('lzo') ? 'lzo' : null;
  const inner = kind && off + size <= buf.length ? decompress(kind, buf.subarray(off, off + size)) : null;
  return { version: inner && bannerVersion(inner), arch: inner ? innerArch(inner) : peArch(buf), compression: kind ?? 'unknown' };
}

function peArch(buf: Buffer): KernelInfo['arch'] {
  const pe = buf.readUInt32LE(0x3c);
  if (pe + 6 > buf.length || buf.readUInt32LE(pe) !== 0x00004550) return 'unknown';
  const machine = buf.readUInt16LE(pe + 4);
  return machine === 0xaa64 ? 'arm64' : machine === 0x01c2 || machine === 0x01c4 ? 'armhf' : 'unknown';
}

/** The first "Linux version X" whose X looks like a release (format strings and prose do not). */
function bannerVersion(b: Buffer): string | null {
  const needle = Buffer.from('Linux version ', 'latin1');
  let seen = 0;
  for (let at = b.indexOf(needle); at !== -1 && seen < 64; at = b.indexOf(needle, at + 1), seen++) {
    const tail = b.subarray(at + needle.length, at + needle.length + 128).toString('latin1');
    const m = /^(\d+\.\d+[0-9A-Za-z.+~_-]*)[\s(\0]/.exec(tail);
    if (m) return m[1]!;
  }
  return null;
}

/**
 * The decompressed bytes (possibly a prefix, when the stream is truncated or followed by data
 * the tool refuses), or null. Bounded by MAX_OUTPUT.
 */
function decompress(kind: Packed, data: Buffer): Buffer | null {
  if (kind === 'gzip') return gunzip(data);
  const [cmd, ...args] = {
    xz: ['xz', '-dcq', '--single-stream'],
    zstd: ['zstd', '-dcq'],
    lz4: ['lz4', '-dcq'],
    lzo: ['lzop', '-dcq'],
  }[kind];
  const r = spawnSync(cmd!, args, { input: data, maxBuffer: MAX_OUTPUT, stdio: ['pipe', 'pipe', 'ignore'] });
  // A non-zero exit is normal here: the kernel build appends the size after the stream, and a
  // zImage payload is followed by other data. What matters is what came out.
  return r.stdout && r.stdout.length > 0 ? r.stdout : null;
}

/**
 * gzip by hand around a raw inflate: node's gunzip treats bytes after the stream as another
 * member and fails on them, while a zImage payload is always followed by other data.
 */
function gunzip(data: Buffer): Buffer | null {
  if (data.length < 18 || data[0] !== 0x1f || data[1] !== 0x8b || data[2] !== 8) return null;
  const flags = data[3]!;
  let p = 10;
  if (flags & 0x04) p += 2 + (data.length >= 12 ? data.readUInt16LE(10) : 0); // FEXTRA
  for (const bit of [0x08, 0x10]) {
    // FNAME, FCOMMENT: NUL-terminated.
    if (!(flags & bit)) continue;
    const nul = data.indexOf(0, p);
    if (nul === -1) return null;
    p = nul + 1;
  }
  if (flags & 0x02) p += 2; // FHCRC
  if (p >= data.length) return null;
  try {
    // Sync flush at the end returns what a truncated stream yields instead of failing.
    return inflateRawSync(data.subarray(p), { finishFlush: zc.Z_SYNC_FLUSH, maxOutputLength: MAX_OUTPUT });
  } catch {
    return null;
  }
}
