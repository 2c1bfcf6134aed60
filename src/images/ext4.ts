// A read-only ext2/3/4 reader in plain TypeScript, so the root filesystem of an OS image can be
// streamed into a tar without loop mounts, FUSE or root. Everything goes through a ReadAt on the
// image, at the partition's byte offset; nothing is written.
//
// The reader trusts nothing on disk: every block number, length and count is checked against the
// filesystem's geometry before it is used, so a damaged or truncated image ends in a
// DROVER_IMAGE_CORRUPT naming the inode and path instead of a crash, a hang or garbage output.
// Checksums (metadata_csum) are not verified; the structural checks catch what matters here.
import { isUtf8 } from 'node:buffer';
import { DroverError } from '../domain/errors.js';
import type { ReadAt } from './partitions.js';

export type Ext4Type = 'file' | 'dir' | 'symlink' | 'chardev' | 'blockdev' | 'fifo' | 'socket';

export interface Ext4Xattr {
  /** Full name with its namespace: 'security.capability', 'user.x', 'system.posix_acl_access'. */
  name: string;
  /** POSIX ACLs are converted to the Linux VFS xattr format (version 2), as getxattr(2) returns them. */
  value: Buffer;
}

export interface Ext4Entry {
  /** Relative, '/'-separated, no leading slash; '' for the root directory. */
  path: string;
  /**
   * The path's raw bytes, present only when a component is not valid UTF-8 (`path` then holds
   * U+FFFD in its place); whoever writes names out (a tar) should use these bytes.
   */
  pathBytes?: Buffer;
  ino: number;
  type: Ext4Type;
  /** Permission bits including setuid, setgid and sticky (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** i_size: the content length of files and symlinks. */
  size: number;
  nlink: number;
  mtimeNs: bigint;
  atimeNs: bigint;
  ctimeNs: bigint;
  target?: string;
  /** Raw target bytes, present only when the target is not valid UTF-8. */
  targetBytes?: Buffer;
  rdevMajor?: number;
  rdevMinor?: number;
  /** In-inode and external-block attributes together, sorted by name; 'system.data' is left out. */
  xattrs: Ext4Xattr[];
}

export interface Ext4Features {
  compat: string[];
  incompat: string[];
  roCompat: string[];
}

const corrupt = (msg: string) => new DroverError('DROVER_IMAGE_CORRUPT', msg);
const unsupported = (msg: string) => new DroverError('DROVER_IMAGE_UNSUPPORTED', msg);
const invalid = (msg: string) => new DroverError('DROVER_IMAGE_INVALID', msg);

const SUPERBLOCK_OFFSET = 1024;
const EXT4_MAGIC = 0xef53;
const ROOT_INO = 2;
const MiB = 1024 * 1024;
const TWO32 = 2 ** 32;
const MAX_SYMLINKS = 40;
const SLASH = Buffer.from('/');
// Deeper extent trees cannot address a 2^32-block file; anything beyond is damage.
const MAX_EXTENT_DEPTH = 5;

const COMPAT: Record<number, string> = {
  0x1: 'dir_prealloc', 0x2: 'imagic_inodes', 0x4: 'has_journal', 0x8: 'ext_attr', 0x10: 'resize_inode', 0x20: 'dir_index',
  0x40: 'lazy_bg', 0x80: 'exclude_inode', 0x100: 'exclude_bitmap', 0x200: 'sparse_super2', 0x400: 'fast_commit',
  0x800: 'stable_inodes', 0x1000: 'orphan_file',
};
const INCOMPAT: Record<number, string> = {
  0x1: 'compression', 0x2: 'filetype', 0x4: 'needs_recovery', 0x8: 'journal_dev', 0x10: 'meta_bg', 0x40: 'extent',
  0x80: '64bit', 0x100: 'mmp', 0x200: 'flex_bg', 0x400: 'ea_inode', 0x1000: 'dirdata', 0x2000: 'metadata_csum_seed',
  0x4000: 'large_dir', 0x8000: 'inline_data', 0x10000: 'encrypt', 0x20000: 'casefold',
};
const RO_COMPAT: Record<number, string> = {
  0x1: 'sparse_super', 0x2: 'large_file', 0x4: 'btree_dir', 0x8: 'huge_file', 0x10: 'uninit_bg', 0x20: 'dir_nlink',
  0x40: 'extra_isize', 0x80: 'snapshot', 0x100: 'quota', 0x200: 'bigalloc', 0x400: 'metadata_csum', 0x800: 'replica',
  0x1000: 'read-only', 0x2000: 'project', 0x4000: 'shared_blocks', 0x8000: 'verity', 0x10000: 'orphan_present',
};
// Incompat features whose on-disk format this reader understands. needs_recovery is accepted with
// a warning: the journal is not replayed, so a filesystem that was not unmounted cleanly is read
// as its main area stands (what `debugfs` shows too).
const INCOMPAT_OK = 0x2 | 0x4 | 0x10 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x2000 | 0x4000;
const IN_FILETYPE = 0x2, IN_RECOVER = 0x4, IN_META_BG = 0x10, IN_64BIT = 0x80;
const CO_SPARSE_SUPER2 = 0x200;
const RO_SPARSE_SUPER = 0x1, RO_HUGE_FILE = 0x8, RO_GDT_CSUM = 0x10, RO_BIGALLOC = 0x200, RO_METADATA_CSUM = 0x400;

const BG_INODE_UNINIT = 0x1;

const FL_ENCRYPT = 0x800;
const FL_HUGE_FILE = 0x40000;
const FL_EXTENTS = 0x80000;
const FL_EA_INODE = 0x200000;
const FL_INLINE_DATA = 0x10000000;

const EXTENT_MAGIC = 0xf30a;
const XATTR_MAGIC = 0xea020000;
const XATTR_PREFIX: Record<number, string> = {
  1: 'user.', 2: 'system.posix_acl_access', 3: 'system.posix_acl_default', 4: 'trusted.', 6: 'security.', 7: 'system.',
  8: 'system.richacl',
};

const TYPES: Record<number, Ext4Type> = {
  0x8000: 'file', 0x4000: 'dir', 0xa000: 'symlink', 0x2000: 'chardev', 0x6000: 'blockdev', 0x1000: 'fifo', 0xc000: 'socket',
};

// Caches are bounded so a 30 GB filesystem costs no more memory than a 2 GB one.
const INODE_CHUNK = 64 * 1024;
const INODE_CHUNKS_CACHED = 256;
const XATTR_BLOCKS_CACHED = 64;
const DIRS_CACHED = 32;
// walk() reads small files ahead of the consumer so that the source's per-read latency (a thread
// pool round trip for fs/promises) overlaps instead of adding up over 100,000 files.
const AHEAD_FILES = 16;
const AHEAD_FILE_MAX = MiB;
const AHEAD_BYTES_MAX = 8 * MiB;
const noop = () => undefined;

interface Group {
  inodeTable: number;
  flags: number;
  itableUnused: number;
}

/** An inode as read from its table; `raw` is a private copy of its on-disk bytes. */
interface Inode {
  ino: number;
  raw: Buffer;
  mode: number;
  flags: number;
  size: number;
  links: number;
  fileAcl: number;
  /** Allocated space in 512-byte units, whatever the encoding on disk. */
  blocks512: number;
  extraIsize: number;
}

/** A piece of a file: `len` blocks from logical `lblk` stored at physical `pblk`. */
interface Run {
  lblk: number;
  pblk: number;
  len: number;
  /** Allocated but never written (fallocate): reads as zeros. */
  uninit: boolean;
}

interface DirChild {
  name: Buffer;
  ino: number;
  /** The dirent's file type hint (1 regular file, 2 directory; 0 unknown or no filetype feature). */
  hint: number;
}

/** A stretch of file content: `len` bytes at filesystem offset `at`, or zeros when `at` is -1. */
interface Piece {
  at: number;
  len: number;
}

function featureNames(bits: number, table: Record<number, string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < 32; i++) {
    const bit = 2 ** i;
    if ((bits >>> i) & 1) out.push(table[bit] ?? `unknown_0x${bit.toString(16)}`);
  }
  return out;
}

function uuidString(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** Whether group `g` carries a superblock backup (and so shifts a meta_bg descriptor block by one). */
function groupHasSuper(g: number, sparseSuper: boolean, sparseSuper2: [number, number] | null): boolean {
  if (g === 0) return true;
  if (sparseSuper2) return g === sparseSuper2[0] || g === sparseSuper2[1];
  if (g === 1 || !sparseSuper) return true;
  if (g % 2 === 0) return false;
  for (const base of [3, 5, 7]) {
    let p = base;
    while (p < g) p *= base;
    if (p === g) return true;
  }
  return false;
}

/** ext4 stores a time as a signed 32-bit second count plus (optionally) 2 epoch bits and 30 bits of nanoseconds. */
function timeNs(raw: Buffer, off: number, extraOff: number, extraIsize: number): bigint {
  let sec = BigInt(raw.readInt32LE(off));
  let ns = 0n;
  if (extraOff + 4 - 128 <= extraIsize) {
    const x = raw.readUInt32LE(extraOff);
    sec += BigInt(x & 3) << 32n;
    ns = BigInt(x >>> 2);
  }
  return sec * 1_000_000_000n + ns;
}

/** On-disk ext4 ACL (version 1, short entries for the _OBJ/MASK/OTHER tags) to the VFS xattr format. */
function aclToVfs(v: Buffer, where: string): Buffer {
  if (v.length < 4 || v.readUInt32LE(0) !== 1) throw corrupt(`The POSIX ACL of ${where} has an unknown version.`);
  const entries: [number, number, number][] = [];
  let p = 4;
  while (p < v.length) {
    if (p + 4 > v.length) throw corrupt(`The POSIX ACL of ${where} is cut short.`);
    const tag = v.readUInt16LE(p);
    const perm = v.readUInt16LE(p + 2);
    if (tag === 0x2 || tag === 0x8) {
      if (p + 8 > v.length) throw corrupt(`The POSIX ACL of ${where} is cut short.`);
      entries.push([tag, perm, v.readUInt32LE(p + 4)]);
      p += 8;
    } else if (tag === 0x1 || tag === 0x4 || tag === 0x10 || tag === 0x20) {
      entries.push([tag, perm, 0xffffffff]);
      p += 4;
    } else {
      throw corrupt(`The POSIX ACL of ${where} has an unknown entry tag 0x${tag.toString(16)}.`);
    }
  }
  const out = Buffer.alloc(4 + entries.length * 8);
  out.writeUInt32LE(2, 0);
  entries.forEach(([tag, perm, id], i) => {
    out.writeUInt16LE(tag, 4 + i * 8);
    out.writeUInt16LE(perm, 6 + i * 8);
    out.writeUInt32LE(id, 8 + i * 8);
  });
  return out;
}

function splitPath(path: string): string[] {
  return path.split('/').filter((c) => c !== '' && c !== '.');
}

/** Small insertion-ordered LRU. */
class Lru<K, V> {
  private readonly map = new Map<K, V>();
  constructor(private readonly cap: number) {}
  get(k: K): V | undefined {
    const v = this.map.get(k);
    if (v !== undefined) {
      this.map.delete(k);
      this.map.set(k, v);
    }
    return v;
  }
  set(k: K, v: V) {
    this.map.delete(k);
    this.map.set(k, v);
    if (this.map.size > this.cap) this.map.delete(this.map.keys().next().value as K);
  }
  delete(k: K) {
    this.map.delete(k);
  }
}

export class Ext4 {
  readonly blockSize: number;
  readonly label: string;
  readonly uuid: string;
  readonly features: Ext4Features;
  readonly blocksCount: number;
  readonly inodesCount: number;
  /** Things worth telling the user that do not stop reading (journal not replayed, error flag set). */
  readonly warnings: string[];

  private readonly inodeSize: number;
  private readonly inodesPerGroup: number;
  private readonly firstIno: number;
  private readonly hasFiletype: boolean;
  private readonly hugeFile: boolean;
  private readonly is64: boolean;
  private readonly groupDescCsum: boolean;
  private readonly clusterSize: number;
  private readonly inodeTableBytes: number;
  private readonly inodeCache = new Lru<number, Promise<Buffer>>(INODE_CHUNKS_CACHED);
  private readonly xattrBlockCache = new Lru<number, Promise<Buffer>>(XATTR_BLOCKS_CACHED);
  private readonly dirCache = new Lru<number, DirChild[]>(DIRS_CACHED);
  private readonly ahead = new Map<number, { bytes: number; data: Promise<Buffer | null> }>();
  private aheadBytes = 0;

  private constructor(
    private readonly read: ReadAt,
    private readonly offset: number,
    sb: Buffer,
    private readonly groups: Group[],
    geometry: { blockSize: number; blocksCount: number; features: Ext4Features; warnings: string[] },
  ) {
    this.blockSize = geometry.blockSize;
    this.blocksCount = geometry.blocksCount;
    this.features = geometry.features;
    this.warnings = geometry.warnings;
    const nul = sb.indexOf(0, 0x78);
    this.label = sb.subarray(0x78, nul >= 0 && nul < 0x88 ? nul : 0x88).toString('utf8');
    this.uuid = uuidString(sb.subarray(0x68, 0x78));
    this.inodesCount = sb.readUInt32LE(0x00);
    this.inodesPerGroup = sb.readUInt32LE(0x28);
    const rev = sb.readUInt32LE(0x4c);
    this.inodeSize = rev === 0 ? 128 : sb.readUInt16LE(0x58);
    this.firstIno = rev === 0 ? 11 : sb.readUInt32LE(0x54);
    const incompat = sb.readUInt32LE(0x60);
    const roCompat = sb.readUInt32LE(0x64);
    this.hasFiletype = (incompat & IN_FILETYPE) !== 0;
    this.is64 = (incompat & IN_64BIT) !== 0;
    this.hugeFile = (roCompat & RO_HUGE_FILE) !== 0;
    this.groupDescCsum = (roCompat & (RO_GDT_CSUM | RO_METADATA_CSUM)) !== 0;
    this.clusterSize = (roCompat & RO_BIGALLOC) !== 0 ? 1024 << sb.readUInt32LE(0x1c) : this.blockSize;
    this.inodeTableBytes = this.inodesPerGroup * this.inodeSize;
  }

  /**
   * Opens the filesystem that starts `offset` bytes into the source and spans `size` bytes.
   * Refuses what is not ext2/3/4 (DROVER_IMAGE_NO_ROOT), features it cannot read
   * (DROVER_IMAGE_UNSUPPORTED) and impossible or truncated geometry (DROVER_IMAGE_CORRUPT).
   */
  static async open(read: ReadAt, offset: number, size: number): Promise<Ext4> {
    const sb = await read(offset + SUPERBLOCK_OFFSET, 1024);
    if (sb.length < 1024 || sb.readUInt16LE(0x38) !== EXT4_MAGIC) {
      throw new DroverError('DROVER_IMAGE_NO_ROOT', 'The root partition is not an ext2/3/4 filesystem (no ext superblock magic at byte 1024).');
    }
    const rev = sb.readUInt32LE(0x4c);
    if (rev > 1) throw unsupported(`The root filesystem has ext revision ${rev}; Drover reads revisions 0 and 1.`);
    const compat = rev === 0 ? 0 : sb.readUInt32LE(0x5c);
    const incompat = rev === 0 ? 0 : sb.readUInt32LE(0x60);
    const roCompat = rev === 0 ? 0 : sb.readUInt32LE(0x64);
    const features = { compat: featureNames(compat, COMPAT), incompat: featureNames(incompat, INCOMPAT), roCompat: featureNames(roCompat, RO_COMPAT) };
    const bad = featureNames(incompat & ~INCOMPAT_OK, INCOMPAT);
    if (bad.length) {
      throw unsupported(`The root filesystem uses the ext4 feature${bad.length > 1 ? 's' : ''} ${bad.map((f) => `"${f}"`).join(', ')}, which Drover cannot read; rebuild the root filesystem without ${bad.length > 1 ? 'them' : 'it'}.`);
    }
    const warnings: string[] = [];
    if (incompat & IN_RECOVER) warnings.push('The root filesystem\'s journal needs recovery (it was not cleanly unmounted); it is read without replaying the journal, so its most recent changes may be missing.');
    if (sb.readUInt16LE(0x3a) & 2) warnings.push('The root filesystem is marked as having errors; run e2fsck on it.');

    const logBlock = sb.readUInt32LE(0x18);
    if (logBlock > 6) throw corrupt(`The ext superblock gives an impossible block size (2^${10 + logBlock}).`);
    const blockSize = 1024 << logBlock;
    const is64 = (incompat & IN_64BIT) !== 0;
    const blocksCount = sb.readUInt32LE(0x04) + (is64 ? sb.readUInt32LE(0x150) * TWO32 : 0);
    const firstDataBlock = sb.readUInt32LE(0x14);
    const blocksPerGroup = sb.readUInt32LE(0x20);
    const inodesPerGroup = sb.readUInt32LE(0x28);
    const inodesCount = sb.readUInt32LE(0x00);
    const inodeSize = rev === 0 ? 128 : sb.readUInt16LE(0x58);
    if (blocksCount === 0 || blocksPerGroup === 0 || inodesPerGroup === 0 || firstDataBlock >= blocksCount) {
      throw corrupt('The ext superblock gives an impossible geometry (zero blocks, blocks per group or inodes per group).');
    }
    if (inodeSize < 128 || inodeSize > blockSize || (inodeSize & (inodeSize - 1)) !== 0) throw corrupt(`The ext superblock gives an impossible inode size (${inodeSize}).`);
    if (blocksCount * blockSize > size) {
      throw corrupt(`The ext filesystem is ${blocksCount * blockSize} bytes but its partition holds only ${size}: the image is truncated.`);
    }
    const groupCount = Math.ceil((blocksCount - firstDataBlock) / blocksPerGroup);
    if (inodesCount > groupCount * inodesPerGroup || inodesCount < ROOT_INO) throw corrupt(`The ext superblock's inode count (${inodesCount}) does not fit its ${groupCount} groups.`);

    const descSize = is64 ? sb.readUInt16LE(0xfe) : 32;
    if (descSize < 32 || descSize > blockSize || (descSize & (descSize - 1)) !== 0 || (is64 && descSize < 64)) {
      throw corrupt(`The ext superblock gives an impossible group descriptor size (${descSize}).`);
    }
    const descPerBlock = blockSize / descSize;
    const descBlocks = Math.ceil(groupCount / descPerBlock);
    // bigalloc with 1 KiB blocks keeps block 0 out of the first cluster's group descriptors.
    const clusterRatio = (roCompat & RO_BIGALLOC) !== 0 ? 1 << (sb.readUInt32LE(0x1c) - logBlock) : 1;
    const zeroAdjust = blockSize === 1024 && clusterRatio > 1 ? 1 : 0;
    const metaBg = (incompat & IN_META_BG) !== 0;
    const firstMetaBg = sb.readUInt32LE(0x104);
    const sparse2: [number, number] | null = compat & CO_SPARSE_SUPER2 ? [sb.readUInt32LE(0x24c), sb.readUInt32LE(0x250)] : null;
    const descLocation = (i: number): number => {
      if (!metaBg || i < firstMetaBg) return firstDataBlock + 1 + i + (i === 0 ? zeroAdjust : 0);
      const g = i * descPerBlock;
      return firstDataBlock + g * blocksPerGroup + (groupHasSuper(g, (roCompat & RO_SPARSE_SUPER) !== 0, sparse2) ? 1 : 0) + (i === 0 ? zeroAdjust : 0);
    };

    const readRaw = async (block: number, count: number): Promise<Buffer> => {
      if (block + count > blocksCount) throw corrupt(`A group descriptor block (${block}) lies past the end of the ext filesystem (${blocksCount} blocks).`);
      const b = await read(offset + block * blockSize, count * blockSize);
      if (b.length < count * blockSize) throw corrupt('The image ends inside the ext group descriptors: it is truncated.');
      return b;
    };
    const groups: Group[] = [];
    // Contiguous descriptor blocks (everything but meta_bg) are fetched in one read.
    let i = 0;
    while (i < descBlocks) {
      let n = 1;
      while (i + n < descBlocks && descLocation(i + n) === descLocation(i) + n) n++;
      const buf = await readRaw(descLocation(i), n);
      for (let g = i * descPerBlock; g < Math.min(groupCount, (i + n) * descPerBlock); g++) {
        const d = (g - i * descPerBlock) * descSize;
        const big = descSize >= 64;
        groups.push({
          inodeTable: buf.readUInt32LE(d + 0x8) + (big ? buf.readUInt32LE(d + 0x28) * TWO32 : 0),
          flags: buf.readUInt16LE(d + 0x12),
          itableUnused: buf.readUInt16LE(d + 0x1c) + (big ? buf.readUInt16LE(d + 0x32) * 65536 : 0),
        });
      }
      i += n;
    }
    return new Ext4(read, offset, sb, groups, { blockSize, blocksCount, features, warnings });
  }

  // ---- public API -------------------------------------------------------------------------

  /**
   * The whole tree, depth first: each directory before its children, children in bytewise name
   * order, '.' and '..' left out. Hard links appear once per name, with the same `ino`. Small
   * files about to be yielded are read ahead, so readFile() on each entry as it comes is cheap.
   */
  async *walk(): AsyncGenerator<Ext4Entry> {
    const root = await this.inode(ROOT_INO, '');
    if (TYPES[root.mode & 0xf000] !== 'dir') throw corrupt('The ext root inode (2) is not a directory.');
    yield await this.entry('', undefined, root);
    const seenDirs = new Set<number>([ROOT_INO]);
    interface Frame { path: string; raw: Buffer | undefined; children: DirChild[]; next: number; ahead: number }
    const stack: Frame[] = [{ path: '', raw: undefined, children: await this.children(root, ''), next: 0, ahead: 0 }];
    while (stack.length) {
      const f = stack[stack.length - 1]!;
      const c = f.children[f.next++];
      if (!c) {
        stack.pop();
        continue;
      }
      // Only up to the next directory: its subtree comes first and must not find memory pinned.
      f.ahead = Math.max(f.ahead, f.next);
      while (f.ahead < Math.min(f.children.length, f.next + AHEAD_FILES) && c.hint === 1 && f.children[f.ahead]!.hint === 1) this.prefetch(f.children[f.ahead++]!.ino);
      const utf8 = isUtf8(c.name);
      const name = c.name.toString('utf8');
      const path = f.path ? `${f.path}/${name}` : name;
      let raw: Buffer | undefined;
      if (f.raw || !utf8) {
        const parent = f.raw ?? Buffer.from(f.path);
        raw = parent.length ? Buffer.concat([parent, SLASH, c.name]) : Buffer.from(c.name);
      }
      const inode = await this.inode(c.ino, path);
      const e = await this.entry(path, raw, inode);
      if (e.type === 'dir') {
        if (seenDirs.has(c.ino)) throw corrupt(`The ext directory /${path} is inode ${c.ino}, which is already reachable elsewhere in the tree: a directory loop or a hard-linked directory.`);
        seenDirs.add(c.ino);
        yield e;
        stack.push({ path, raw, children: await this.children(inode, path), next: 0, ahead: 0 });
      } else {
        if (c.hint === 1 && e.type === 'file') this.prefetch(c.ino);
        yield e;
        // Not read by the consumer: drop it.
        this.takeAhead(c.ino);
      }
    }
  }

  /**
   * The entry at `path`, or null if there is none. Symlinks are followed in the directories on the
   * way (at most 40), not in the last component; the entry's `path` is the resolved one.
   */
  async lookup(path: string): Promise<Ext4Entry | null> {
    const r = await this.resolve(path, false);
    return r ? this.entry(r.path, undefined, r.inode) : null;
  }

  /** Names in the directory at `path` (symlinks followed), sorted bytewise, without '.' and '..'. */
  async readdir(path: string): Promise<string[]> {
    const r = await this.resolve(path, true);
    if (!r) throw invalid(`The root filesystem has no directory /${splitPath(path).join('/')}.`);
    if (TYPES[r.inode.mode & 0xf000] !== 'dir') throw invalid(`/${r.path} in the root filesystem is not a directory.`);
    return (await this.listing(r.inode, r.path)).map((c) => c.name.toString('utf8'));
  }

  /**
   * Contents of a regular file in order, exactly `size` bytes; holes and unwritten extents come
   * out as zeros. Physically contiguous blocks are read together, up to `chunkSize` per read.
   */
  async *readFile(entry: Ext4Entry | number, opts: { chunkSize?: number } = {}): AsyncGenerator<Buffer> {
    const chunk = opts.chunkSize ?? MiB;
    if (!Number.isInteger(chunk) || chunk < 1) throw new RangeError(`chunkSize must be a positive integer, not ${chunk}`);
    const ino = typeof entry === 'number' ? entry : entry.ino;
    const path = typeof entry === 'number' ? undefined : entry.path;
    const inode = await this.inode(ino, path);
    if (TYPES[inode.mode & 0xf000] !== 'file') throw new TypeError(`readFile: ${this.where(ino, path)} is not a regular file`);
    const early = await this.takeAhead(ino);
    if (early && early.length === inode.size) {
      for (let o = 0; o < early.length; o += chunk) yield early.subarray(o, Math.min(o + chunk, early.length));
      return;
    }
    yield* this.data(inode, path, chunk);
  }

  /** The whole content of the file at `path`, following symlinks; refuses files over `maxBytes`. */
  async readFileAll(path: string, maxBytes = 64 * MiB): Promise<Buffer> {
    const r = await this.resolve(path, true);
    if (!r) throw invalid(`The root filesystem has no file /${splitPath(path).join('/')}.`);
    if (TYPES[r.inode.mode & 0xf000] !== 'file') throw invalid(`/${r.path} in the root filesystem is not a regular file.`);
    if (r.inode.size > maxBytes) throw invalid(`/${r.path} in the root filesystem is ${r.inode.size} bytes, more than the ${maxBytes} allowed.`);
    const parts: Buffer[] = [];
    for await (const b of this.data(r.inode, r.path, MiB)) parts.push(b);
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, r.inode.size);
  }

  // ---- inodes -----------------------------------------------------------------------------

  private where(ino: number, path: string | undefined): string {
    return path === undefined ? `inode ${ino}` : `inode ${ino} (/${path})`;
  }

  private async inode(ino: number, path: string | undefined): Promise<Inode> {
    if (!Number.isInteger(ino) || ino < 1 || ino > this.inodesCount) {
      throw corrupt(`The ext filesystem refers to inode ${ino}${path !== undefined ? ` at /${path}` : ''}, outside its ${this.inodesCount} inodes.`);
    }
    const group = Math.floor((ino - 1) / this.inodesPerGroup);
    const index = (ino - 1) % this.inodesPerGroup;
    const g = this.groups[group];
    if (!g) throw corrupt(`The ext filesystem has no group descriptor for ${this.where(ino, path)}.`);
    if (this.groupDescCsum && ((g.flags & BG_INODE_UNINIT) !== 0 || index >= this.inodesPerGroup - g.itableUnused)) {
      throw corrupt(`The ext filesystem refers to ${this.where(ino, path)}, which lies in the never-used part of its inode table.`);
    }
    const rel = index * this.inodeSize;
    const chunkNo = Math.floor(rel / INODE_CHUNK);
    const key = group * Math.ceil(this.inodeTableBytes / INODE_CHUNK) + chunkNo;
    let p = this.inodeCache.get(key);
    if (!p) {
      const start = chunkNo * INODE_CHUNK;
      const len = Math.min(INODE_CHUNK, this.inodeTableBytes - start);
      const tableBlocks = Math.ceil(this.inodeTableBytes / this.blockSize);
      if (g.inodeTable < 1 || g.inodeTable + tableBlocks > this.blocksCount) {
        throw corrupt(`The inode table of ext block group ${group} (block ${g.inodeTable}) lies outside the filesystem; cannot read ${this.where(ino, path)}.`);
      }
      p = this.bytes(g.inodeTable * this.blockSize + start, len, () => `the inode table holding ${this.where(ino, path)}`);
      this.inodeCache.set(key, p);
      // A failed read must not stay cached as the answer for its neighbours.
      p.catch(() => this.inodeCache.delete(key));
    }
    const chunk = await p;
    const off = rel - chunkNo * INODE_CHUNK;
    const raw = Buffer.allocUnsafe(this.inodeSize);
    chunk.copy(raw, 0, off, off + this.inodeSize);
    const mode = raw.readUInt16LE(0x00);
    const flags = raw.readUInt32LE(0x20);
    const size = raw.readUInt32LE(0x04) + raw.readUInt32LE(0x6c) * TWO32;
    if (size > Number.MAX_SAFE_INTEGER) throw corrupt(`The ext ${this.where(ino, path)} claims an impossible size.`);
    let blocks512 = raw.readUInt32LE(0x1c) + (this.hugeFile ? raw.readUInt16LE(0x74) * TWO32 : 0);
    if (this.hugeFile && flags & FL_HUGE_FILE) blocks512 *= this.blockSize / 512;
    const extraIsize = this.inodeSize > 128 ? raw.readUInt16LE(0x80) : 0;
    if (128 + extraIsize > this.inodeSize || extraIsize % 4 !== 0) throw corrupt(`The ext ${this.where(ino, path)} has an impossible extra size (${extraIsize}).`);
    return {
      ino,
      raw,
      mode,
      flags,
      size,
      links: raw.readUInt16LE(0x1a),
      fileAcl: raw.readUInt32LE(0x68) + (this.is64 ? raw.readUInt16LE(0x76) * TWO32 : 0),
      blocks512,
      extraIsize,
    };
  }

  private async entry(path: string, pathBytes: Buffer | undefined, inode: Inode): Promise<Ext4Entry> {
    const { raw, ino } = inode;
    const type = TYPES[inode.mode & 0xf000];
    if (!type) {
      throw corrupt(inode.mode === 0
        ? `The ext directory entry /${path} points to inode ${ino}, which is not in use.`
        : `The ext ${this.where(ino, path)} has an unknown file type (mode 0${inode.mode.toString(8)}).`);
    }
    if (inode.flags & FL_ENCRYPT) throw unsupported(`The ext ${this.where(ino, path)} is encrypted (feature "encrypt"), which Drover cannot read.`);
    const e: Ext4Entry = {
      path,
      ino,
      type,
      mode: inode.mode & 0o7777,
      uid: raw.readUInt16LE(0x02) + raw.readUInt16LE(0x78) * 65536,
      gid: raw.readUInt16LE(0x18) + raw.readUInt16LE(0x7a) * 65536,
      size: inode.size,
      nlink: inode.links,
      mtimeNs: timeNs(raw, 0x10, 0x88, inode.extraIsize),
      atimeNs: timeNs(raw, 0x08, 0x8c, inode.extraIsize),
      ctimeNs: timeNs(raw, 0x0c, 0x84, inode.extraIsize),
      xattrs: await this.xattrs(inode, path),
    };
    if (pathBytes) e.pathBytes = pathBytes;
    if (type === 'symlink') {
      const t = await this.symlinkTarget(inode, path);
      e.target = t.toString('utf8');
      if (!isUtf8(t)) e.targetBytes = t;
    } else if (type === 'chardev' || type === 'blockdev') {
      const old = raw.readUInt32LE(0x28);
      if (old !== 0) {
        e.rdevMajor = (old >>> 8) & 0xff;
        e.rdevMinor = old & 0xff;
      } else {
        const dev = raw.readUInt32LE(0x2c);
        e.rdevMajor = (dev & 0xfff00) >>> 8;
        e.rdevMinor = (dev & 0xff) | ((dev >>> 12) & 0xfff00);
      }
    }
    return e;
  }

  private async symlinkTarget(inode: Inode, path: string | undefined): Promise<Buffer> {
    if (inode.flags & FL_INLINE_DATA) throw unsupported(`The ext ${this.where(inode.ino, path)} stores its data inline (feature "inline_data"), which Drover cannot read.`);
    // The kernel's rule: a symlink whose only allocated block (if any) is its xattr block keeps
    // its target in i_block; the 60-byte size limit alone misjudges old slow symlinks.
    const eaBlocks = inode.fileAcl ? this.clusterSize / 512 : 0;
    if (inode.blocks512 - eaBlocks === 0) {
      if (inode.size >= 60) throw corrupt(`The ext symlink ${this.where(inode.ino, path)} has no data blocks but a ${inode.size}-byte target.`);
      return Buffer.from(inode.raw.subarray(0x28, 0x28 + inode.size));
    }
    if (inode.size > 65536) throw corrupt(`The ext symlink ${this.where(inode.ino, path)} claims a ${inode.size}-byte target.`);
    const parts: Buffer[] = [];
    for await (const b of this.data(inode, path, MiB)) parts.push(b);
    return Buffer.concat(parts, inode.size);
  }

  // ---- extended attributes ----------------------------------------------------------------

  private async xattrs(inode: Inode, path: string | undefined): Promise<Ext4Xattr[]> {
    const out: Ext4Xattr[] = [];
    const ibody = 128 + inode.extraIsize;
    if (inode.extraIsize > 0 && ibody + 4 <= this.inodeSize && inode.raw.readUInt32LE(ibody) === XATTR_MAGIC) {
      await this.parseXattrs(inode.raw.subarray(ibody + 4), 0, inode, path, 'in the inode', out);
    }
    if (inode.fileAcl) {
      const blk = inode.fileAcl;
      this.checkBlocks(blk, 1, inode.ino, path, 'xattr block');
      let p = this.xattrBlockCache.get(blk);
      if (!p) {
        p = this.bytes(blk * this.blockSize, this.blockSize, () => `the xattr block of ${this.where(inode.ino, path)}`);
        this.xattrBlockCache.set(blk, p);
      }
      const b = await p;
      if (b.readUInt32LE(0) !== XATTR_MAGIC) throw corrupt(`The xattr block ${blk} of ext ${this.where(inode.ino, path)} has a bad magic number.`);
      if (b.readUInt32LE(8) !== 1) throw corrupt(`The xattr block ${blk} of ext ${this.where(inode.ino, path)} claims ${b.readUInt32LE(8)} blocks.`);
      await this.parseXattrs(b, 32, inode, path, `in block ${blk}`, out);
    }
    if (out.length > 1) out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return out;
  }

  /** Entries start at `start`; value offsets count from the start of `buf` (both on-disk layouts fit this). */
  private async parseXattrs(buf: Buffer, start: number, inode: Inode, path: string | undefined, loc: string, out: Ext4Xattr[]) {
    const bad = (why: string) => corrupt(`The extended attributes ${loc} of ext ${this.where(inode.ino, path)} are damaged: ${why}.`);
    let p = start;
    while (p + 4 <= buf.length && buf.readUInt32LE(p) !== 0) {
      if (p + 16 > buf.length) throw bad('an entry runs past the end');
      const nameLen = buf[p]!;
      const index = buf[p + 1]!;
      const valueOffs = buf.readUInt16LE(p + 2);
      const valueInum = buf.readUInt32LE(p + 4);
      const valueSize = buf.readUInt32LE(p + 8);
      if (p + 16 + nameLen > buf.length) throw bad('a name runs past the end');
      const suffix = buf.toString('utf8', p + 16, p + 16 + nameLen);
      p += (16 + nameLen + 3) & ~3;
      const prefix = XATTR_PREFIX[index];
      // Namespaces Linux does not expose (e.g. Lustre's) have no name a tar could carry.
      if (prefix === undefined) continue;
      const name = prefix + suffix;
      let value: Buffer;
      if (valueInum !== 0) {
        value = await this.eaInodeValue(valueInum, valueSize, inode, path, name);
      } else {
        if (valueOffs + valueSize > buf.length) throw bad(`the value of ${name} runs past the end`);
        value = Buffer.from(buf.subarray(valueOffs, valueOffs + valueSize));
      }
      if (name === 'system.data') continue;
      if (index === 2 || index === 3) value = aclToVfs(value, this.where(inode.ino, path));
      out.push({ name, value });
    }
  }

  /** ea_inode: a large value lives in the data of an inode of its own. */
  private async eaInodeValue(valueIno: number, size: number, owner: Inode, path: string | undefined, name: string): Promise<Buffer> {
    const ea = await this.inode(valueIno, undefined);
    if (!(ea.flags & FL_EA_INODE) || ea.size !== size) {
      throw corrupt(`The extended attribute ${name} of ext ${this.where(owner.ino, path)} points to inode ${valueIno}, which does not hold it.`);
    }
    const parts: Buffer[] = [];
    for await (const b of this.data(ea, undefined, MiB)) parts.push(b);
    return Buffer.concat(parts, size);
  }

  // ---- directories ------------------------------------------------------------------------

  /** Entries of a directory (not '.' or '..'), sorted bytewise; htree index blocks read as empty. */
  private async children(dir: Inode, path: string): Promise<DirChild[]> {
    if (dir.flags & FL_INLINE_DATA) throw unsupported(`The ext directory ${this.where(dir.ino, path)} stores its entries inline (feature "inline_data"), which Drover cannot read.`);
    const bs = this.blockSize;
    const out: DirChild[] = [];
    const bad = (why: string) => corrupt(`The ext directory ${this.where(dir.ino, path)} is damaged: ${why}.`);
    for (const run of await this.runs(dir, path)) {
      if (run.uninit) continue;
      const buf = await this.bytes(run.pblk * bs, run.len * bs, () => `directory ${this.where(dir.ino, path)}`);
      for (let blk = 0; blk < buf.length; blk += bs) {
        let p = blk;
        const end = blk + bs;
        while (p < end) {
          if (p + 8 > end) throw bad(`an entry header crosses the end of block ${run.lblk + (blk / bs)}`);
          const ino = buf.readUInt32LE(p);
          let recLen = buf.readUInt16LE(p + 4);
          if (bs >= 65536) recLen = recLen === 65535 || recLen === 0 ? bs : (recLen & 65532) | ((recLen & 3) << 16);
          const nameLen = this.hasFiletype ? buf[p + 6]! : buf.readUInt16LE(p + 6);
          if (recLen < 8 || recLen % 4 !== 0 || p + recLen > end) throw bad(`an entry has an impossible length (${recLen}) in block ${run.lblk + (blk / bs)}`);
          if (ino !== 0) {
            if (nameLen === 0 || 8 + nameLen > recLen) throw bad(`an entry's name does not fit its record in block ${run.lblk + (blk / bs)}`);
            const name = buf.subarray(p + 8, p + 8 + nameLen);
            const dot = nameLen <= 2 && name[0] === 0x2e && (nameLen === 1 || name[1] === 0x2e);
            if (!dot) {
              if (name.includes(0x2f) || name.includes(0)) throw bad(`an entry name contains '/' or NUL (${JSON.stringify(name.toString('latin1'))})`);
              if ((ino < this.firstIno && ino !== ROOT_INO) || ino > this.inodesCount) {
                const childPath = path ? `${path}/${name.toString('utf8')}` : name.toString('utf8');
                throw corrupt(`The ext directory entry /${childPath} has a bad inode number (${ino}).`);
              }
              out.push({ name, ino, hint: this.hasFiletype ? buf[p + 7]! : 0 });
            }
          }
          p += recLen;
        }
      }
    }
    out.sort((a, b) => Buffer.compare(a.name, b.name));
    for (let i = 1; i < out.length; i++) {
      if (out[i]!.name.equals(out[i - 1]!.name)) throw bad(`the name ${JSON.stringify(out[i]!.name.toString('utf8'))} appears twice`);
    }
    return out;
  }

  /** children() remembered for lookups, which keep passing through the same few directories. */
  private async listing(dir: Inode, path: string): Promise<DirChild[]> {
    let list = this.dirCache.get(dir.ino);
    if (!list) {
      list = await this.children(dir, path);
      this.dirCache.set(dir.ino, list);
    }
    return list;
  }

  private async resolve(path: string, followLast: boolean): Promise<{ inode: Inode; path: string } | null> {
    let todo = splitPath(path);
    const stack: { name: string; inode: Inode }[] = [];
    const rootInode = await this.inode(ROOT_INO, '');
    let links = 0;
    while (todo.length) {
      const c = todo.shift()!;
      const top = stack[stack.length - 1];
      const cur = top?.inode ?? rootInode;
      const curPath = stack.map((s) => s.name).join('/');
      if (TYPES[cur.mode & 0xf000] !== 'dir') return null;
      if (c === '..') {
        stack.pop();
        continue;
      }
      const want = Buffer.from(c);
      const hit = (await this.listing(cur, curPath)).find((d) => d.name.equals(want));
      if (!hit) return null;
      const childPath = curPath ? `${curPath}/${c}` : c;
      const inode = await this.inode(hit.ino, childPath);
      if (TYPES[inode.mode & 0xf000] === 'symlink' && (todo.length > 0 || followLast)) {
        if (++links > MAX_SYMLINKS) throw invalid(`Too many levels of symbolic links resolving /${splitPath(path).join('/')} in the root filesystem.`);
        const target = (await this.symlinkTarget(inode, childPath)).toString('utf8');
        if (target.startsWith('/')) stack.length = 0;
        todo = [...splitPath(target), ...todo];
        continue;
      }
      stack.push({ name: c, inode });
    }
    return { inode: stack[stack.length - 1]?.inode ?? rootInode, path: stack.map((s) => s.name).join('/') };
  }

  // ---- file data --------------------------------------------------------------------------

  private checkBlocks(pblk: number, len: number, ino: number, path: string | undefined, what: string) {
    if (pblk < 1 || pblk + len > this.blocksCount) {
      throw corrupt(`The ext ${this.where(ino, path)} has a ${what} at block ${pblk}${len > 1 ? `+${len}` : ''}, past the end of the filesystem (${this.blocksCount} blocks) or at block 0.`);
    }
  }

  /** Bytes at `off` in the filesystem; a short read means the image is cut off. */
  private async bytes(off: number, len: number, what: () => string): Promise<Buffer> {
    const b = await this.read(this.offset + off, len);
    if (b.length < len) throw corrupt(`The image ends while reading ${what()} (${len} bytes at filesystem offset ${off}): it is truncated.`);
    return b;
  }

  /** The file's data as runs in logical order, merged where physically contiguous, clipped at EOF. */
  private async runs(inode: Inode, path: string | undefined): Promise<Run[]> {
    if (inode.flags & FL_INLINE_DATA) throw unsupported(`The ext ${this.where(inode.ino, path)} stores its data inline (feature "inline_data"), which Drover cannot read.`);
    const nblocks = Math.ceil(inode.size / this.blockSize);
    const out: Run[] = [];
    if (nblocks === 0) return out;
    let next = 0;
    // A file cannot own more blocks than the filesystem has; past that, shared tree blocks or
    // pointers would only make a damaged file cost unbounded time and memory.
    let mapped = 0;
    const add = (lblk: number, pblk: number, len: number, uninit: boolean) => {
      if (lblk < next) throw corrupt(`The ext ${this.where(inode.ino, path)} maps logical block ${lblk} twice (overlapping or unordered extents).`);
      next = lblk + len;
      mapped += len;
      if (mapped > this.blocksCount) throw corrupt(`The ext ${this.where(inode.ino, path)} maps more blocks than the filesystem has.`);
      const last = out[out.length - 1];
      if (last && last.lblk + last.len === lblk && last.pblk + last.len === pblk && last.uninit === uninit) last.len += len;
      else out.push({ lblk, pblk, len, uninit });
    };
    if (inode.flags & FL_EXTENTS) await this.extentNode(inode.raw.subarray(0x28, 0x28 + 60), 4, null, 0, Infinity, nblocks, inode, path, add);
    else await this.blockMap(inode, path, nblocks, add);
    return out;
  }

  /**
   * One node of an extent tree. Entries must lie in [lo, hi), the range its parent's index entry
   * gives it, and non-root nodes must not be empty: together that makes every node cover its own
   * logical range, so a damaged tree cannot send the reader through the same blocks again and again.
   */
  private async extentNode(
    node: Buffer, capacity: number, depthWanted: number | null, lo: number, hi: number, nblocks: number, inode: Inode, path: string | undefined,
    add: (lblk: number, pblk: number, len: number, uninit: boolean) => void,
  ): Promise<void> {
    const bad = (why: string) => corrupt(`The extent tree of ext ${this.where(inode.ino, path)} is damaged: ${why}.`);
    if (node.readUInt16LE(0) !== EXTENT_MAGIC) throw bad(`bad extent header magic 0x${node.readUInt16LE(0).toString(16)}`);
    const entries = node.readUInt16LE(2);
    const max = node.readUInt16LE(4);
    const depth = node.readUInt16LE(6);
    if (entries > max || max > capacity) throw bad(`a node claims ${entries} of ${max} entries where ${capacity} fit`);
    if (depth > MAX_EXTENT_DEPTH || (depthWanted !== null && depth !== depthWanted)) throw bad(`a node has depth ${depth}${depthWanted !== null ? `, expected ${depthWanted}` : ''}`);
    if (depthWanted !== null && entries === 0) throw bad('a node below the root is empty');
    let prev = -1;
    for (let i = 0; i < entries; i++) {
      const e = 12 + i * 12;
      const lblk = node.readUInt32LE(e);
      if (lblk < lo || lblk >= hi || lblk <= prev) throw bad(`an entry for logical block ${lblk} is out of order or outside its parent's range`);
      prev = lblk;
      if (lblk >= nblocks) break;
      if (depth === 0) {
        let len = node.readUInt16LE(e + 4);
        const uninit = len > 32768;
        if (uninit) len -= 32768;
        if (len === 0) throw bad(`an extent at logical block ${lblk} is empty`);
        const pblk = node.readUInt16LE(e + 6) * TWO32 + node.readUInt32LE(e + 8);
        this.checkBlocks(pblk, len, inode.ino, path, 'data extent');
        add(lblk, pblk, Math.min(len, nblocks - lblk), uninit);
      } else {
        const leaf = node.readUInt32LE(e + 4) + node.readUInt16LE(e + 8) * TWO32;
        this.checkBlocks(leaf, 1, inode.ino, path, 'extent tree node');
        const child = await this.bytes(leaf * this.blockSize, this.blockSize, () => `an extent tree node of ${this.where(inode.ino, path)}`);
        const end = i + 1 < entries ? node.readUInt32LE(e + 12) : hi;
        await this.extentNode(child, Math.floor((this.blockSize - 12) / 12), depth - 1, lblk, end, nblocks, inode, path, add);
      }
    }
  }

  /** ext2/ext3 block map: 12 direct pointers, then single, double and triple indirect blocks. */
  private async blockMap(inode: Inode, path: string | undefined, nblocks: number, add: (lblk: number, pblk: number, len: number, uninit: boolean) => void) {
    const per = this.blockSize / 4;
    const raw = inode.raw;
    const indirect = async (blk: number, level: number, base: number): Promise<void> => {
      this.checkBlocks(blk, 1, inode.ino, path, `level-${level} indirect block`);
      const b = await this.bytes(blk * this.blockSize, this.blockSize, () => `an indirect block of ${this.where(inode.ino, path)}`);
      const span = per ** (level - 1);
      for (let i = 0; i < per; i++) {
        const l = base + i * span;
        if (l >= nblocks) break;
        const p = b.readUInt32LE(i * 4);
        if (p === 0) continue;
        if (level === 1) {
          this.checkBlocks(p, 1, inode.ino, path, 'data block');
          add(l, p, 1, false);
        } else {
          await indirect(p, level - 1, l);
        }
      }
    };
    let lblk = 0;
    for (let i = 0; i < 12 && lblk < nblocks; i++, lblk++) {
      const p = raw.readUInt32LE(0x28 + i * 4);
      if (p === 0) continue;
      this.checkBlocks(p, 1, inode.ino, path, 'data block');
      add(lblk, p, 1, false);
    }
    for (let level = 1; level <= 3 && lblk < nblocks; level++) {
      const root = raw.readUInt32LE(0x28 + (11 + level) * 4);
      if (root !== 0) await indirect(root, level, lblk);
      lblk += per ** level;
    }
  }

  /** Zero-fill and read pieces of at most `chunk` bytes covering [0, size). */
  private *pieces(runs: Run[], size: number, chunk: number): Generator<Piece> {
    const bs = this.blockSize;
    let pos = 0;
    for (const run of runs) {
      const start = run.lblk * bs;
      const end = Math.min((run.lblk + run.len) * bs, size);
      while (pos < start) {
        const n = Math.min(chunk, start - pos);
        yield { at: -1, len: n };
        pos += n;
      }
      while (pos < end) {
        const n = Math.min(chunk, end - pos);
        yield { at: run.uninit ? -1 : run.pblk * bs + (pos - start), len: n };
        pos += n;
      }
    }
    while (pos < size) {
      const n = Math.min(chunk, size - pos);
      yield { at: -1, len: n };
      pos += n;
    }
  }

  private async *data(inode: Inode, path: string | undefined, chunk: number): AsyncGenerator<Buffer> {
    const what = () => `the data of ${this.where(inode.ino, path)}`;
    const fetch = (p: Piece): Promise<Buffer> => {
      if (p.at < 0) return Promise.resolve(Buffer.alloc(p.len));
      const r = this.bytes(p.at, p.len, what);
      // Awaited in turn; this only keeps an abandoned read-ahead from being an unhandled rejection.
      r.catch(noop);
      return r;
    };
    const pieces = this.pieces(await this.runs(inode, path), inode.size, chunk);
    const first = pieces.next();
    let pending = first.done ? null : fetch(first.value);
    // One piece ahead: the next read is under way while the consumer handles this one.
    while (pending) {
      const next = pieces.next();
      const following = next.done ? null : fetch(next.value);
      yield await pending;
      pending = following;
    }
  }

  /** Starts reading a small, contiguous regular file that walk() is about to yield. */
  private prefetch(ino: number) {
    if (this.ahead.has(ino)) return;
    const slot = { bytes: 0, data: Promise.resolve<Buffer | null>(null) };
    this.ahead.set(ino, slot);
    slot.data = (async () => {
      const inode = await this.inode(ino, undefined);
      if (TYPES[inode.mode & 0xf000] !== 'file' || inode.size === 0 || inode.size > AHEAD_FILE_MAX) return null;
      const runs = await this.runs(inode, undefined);
      const run = runs[0];
      if (runs.length !== 1 || !run || run.lblk !== 0 || run.uninit || run.len * this.blockSize < inode.size) return null;
      if (this.ahead.get(ino) !== slot || this.aheadBytes + inode.size > AHEAD_BYTES_MAX) return null;
      slot.bytes = inode.size;
      this.aheadBytes += inode.size;
      return this.bytes(run.pblk * this.blockSize, inode.size, () => `the data of ${this.where(ino, undefined)}`);
    })().catch(() => null); // readFile reads again and reports the error with its path
  }

  private takeAhead(ino: number): Promise<Buffer | null> | null {
    const slot = this.ahead.get(ino);
    if (!slot) return null;
    this.ahead.delete(ino);
    this.aheadBytes -= slot.bytes;
    return slot.data;
  }
}
