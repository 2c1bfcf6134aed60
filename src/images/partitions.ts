// Partition tables of OS images (MBR with logical partitions, GPT), read from any random-access
// source without loop devices or root. Which partition is the Pi's FAT boot partition and which
// its ext4 root is decided by the filesystem signatures, with the table's type codes as a hint.
import { crc32 } from 'node:zlib';
import { DroverError } from '../domain/errors.js';

/** Reads `length` bytes at `offset` (short at the end of the source). */
export type ReadAt = (offset: number, length: number) => Promise<Buffer>;

export type FsKind = 'fat' | 'ext4' | 'unknown';

export interface Partition {
  /** 1-based, as Linux numbers them (logical MBR partitions start at 5). */
  number: number;
  offset: number;
  size: number;
  /** MBR type byte as hex ("0c") or the GPT type GUID. */
  type: string;
  name?: string;
  fs: FsKind;
}

export interface PartitionTable {
  scheme: 'mbr' | 'gpt';
  partitions: Partition[];
}

const SECTOR = 512;
const MBR_EXTENDED = new Set([0x05, 0x0f, 0x85]);

// A damaged table is CORRUPT; a file with no table at all is not a disk image (FORMAT).
const invalid = (msg: string) => new DroverError('DROVER_IMAGE_CORRUPT', msg);

export async function readPartitionTable(read: ReadAt, sourceSize: number): Promise<PartitionTable> {
  const mbr = await read(0, SECTOR);
  if (mbr.length < SECTOR || mbr.readUInt16LE(510) !== 0xaa55) throw new DroverError('DROVER_IMAGE_FORMAT', 'The image has no partition table (no MBR signature in its first sector); is it a whole-disk image?');
  const entries = [0, 1, 2, 3].map((i) => mbrEntry(mbr, 446 + i * 16));
  let parts: Omit<Partition, 'fs'>[];
  let scheme: PartitionTable['scheme'];
  if (entries.some((e) => e.type === 0xee)) {
    scheme = 'gpt';
    parts = await gptPartitions(read);
  } else {
    scheme = 'mbr';
    parts = [];
    for (const [i, e] of entries.entries()) {
      if (e.type === 0 || e.sectors === 0) continue;
      if (MBR_EXTENDED.has(e.type)) parts.push(...(await logicalPartitions(read, e.start)));
      else parts.push({ number: i + 1, offset: e.start * SECTOR, size: e.sectors * SECTOR, type: hex2(e.type) });
    }
  }
  const out: Partition[] = [];
  for (const p of parts) {
    if (p.offset + p.size > sourceSize) throw invalid(`Partition ${p.number} ends at byte ${p.offset + p.size}, past the end of the image (${sourceSize} bytes): the image is truncated.`);
    out.push({ ...p, fs: await detectFs(read, p.offset) });
  }
  return { scheme, partitions: out };
}

function mbrEntry(b: Buffer, off: number) {
  return { type: b[off + 4]!, start: b.readUInt32LE(off + 8), sectors: b.readUInt32LE(off + 12) };
}

const hex2 = (n: number) => n.toString(16).padStart(2, '0');

/** Logical partitions: a chain of extended boot records, each relative to the extended partition. */
async function logicalPartitions(read: ReadAt, extStart: number): Promise<Omit<Partition, 'fs'>[]> {
  const out: Omit<Partition, 'fs'>[] = [];
  let ebr = extStart;
  for (let n = 5; n < 5 + 128; n++) {
    const b = await read(ebr * SECTOR, SECTOR);
    if (b.length < SECTOR || b.readUInt16LE(510) !== 0xaa55) throw invalid('A logical partition\'s boot record is damaged.');
    const cur = mbrEntry(b, 446);
    const next = mbrEntry(b, 462);
    if (cur.type !== 0 && cur.sectors > 0) out.push({ number: n, offset: (ebr + cur.start) * SECTOR, size: cur.sectors * SECTOR, type: hex2(cur.type) });
    if (next.type === 0 || next.sectors === 0) return out;
    ebr = extStart + next.start;
  }
  throw invalid('The chain of logical partitions does not end (more than 128, or a loop).');
}

/** A GUID as text: the first three fields are little-endian on disk. */
function guid(b: Buffer): string {
  const h = (s: Buffer) => s.toString('hex');
  const rev = (s: Buffer) => h(Buffer.from(s).reverse());
  return `${rev(b.subarray(0, 4))}-${rev(b.subarray(4, 6))}-${rev(b.subarray(6, 8))}-${h(b.subarray(8, 10))}-${h(b.subarray(10, 16))}`.toUpperCase();
}

async function gptPartitions(read: ReadAt): Promise<Omit<Partition, 'fs'>[]> {
  const hdr = await read(SECTOR, SECTOR);
  if (hdr.subarray(0, 8).toString('latin1') !== 'EFI PART') throw invalid('The protective MBR announces GPT but there is no GPT header at sector 1.');
  const hdrSize = hdr.readUInt32LE(12);
  if (hdrSize < 92 || hdrSize > SECTOR) throw invalid(`The GPT header size ${hdrSize} is invalid.`);
  const check = Buffer.from(hdr.subarray(0, hdrSize));
  check.writeUInt32LE(0, 16);
  if (crc32(check) >>> 0 !== hdr.readUInt32LE(16)) throw invalid('The GPT header checksum is wrong: the image is damaged.');
  const entriesLba = Number(hdr.readBigUInt64LE(72));
  const count = hdr.readUInt32LE(80);
  const size = hdr.readUInt32LE(84);
  if (count > 1024 || size < 128 || size > 1024) throw invalid(`The GPT partition array (${count} × ${size} bytes) is implausible.`);
  const arr = await read(entriesLba * SECTOR, count * size);
  if (arr.length < count * size || crc32(arr) >>> 0 !== hdr.readUInt32LE(88)) throw invalid('The GPT partition array checksum is wrong: the image is damaged.');
  const out: Omit<Partition, 'fs'>[] = [];
  for (let i = 0; i < count; i++) {
    const e = arr.subarray(i * size, (i + 1) * size);
    if (e.subarray(0, 16).every((x) => x === 0)) continue;
    const first = Number(e.readBigUInt64LE(32));
    const last = Number(e.readBigUInt64LE(40));
    if (last < first) throw invalid(`GPT partition ${i + 1} ends before it starts.`);
    const name = e.subarray(56, 128).toString('utf16le').replace(/\0.*$/s, '');
    out.push({ number: i + 1, offset: first * SECTOR, size: (last - first + 1) * SECTOR, type: guid(e.subarray(0, 16)), ...(name ? { name } : {}) });
  }
  return out;
}

/** FAT by its boot sector (0x55AA and a "FAT" type string), ext2/3/4 by the superblock magic. */
export async function detectFs(read: ReadAt, offset: number): Promise<FsKind> {
  const head = await read(offset, 2048);
  if (head.length >= 1082 && head.readUInt16LE(1024 + 56) === 0xef53) return 'ext4';
  if (head.length >= 512 && head.readUInt16LE(510) === 0xaa55) {
    const t16 = head.subarray(54, 59).toString('latin1');
    const t32 = head.subarray(82, 87).toString('latin1');
    if (t16.startsWith('FAT') || t32.startsWith('FAT')) return 'fat';
  }
  return 'unknown';
}

/** The Pi's boot partition (the first FAT one) and its root (the first ext4 one). */
export function bootAndRoot(t: PartitionTable): { boot: Partition; root: Partition } {
  const boot = t.partitions.find((p) => p.fs === 'fat');
  if (!boot) throw new DroverError('DROVER_IMAGE_NO_BOOT', `The image has no FAT boot partition (partitions: ${describe(t)}).`);
  const root = t.partitions.find((p) => p.fs === 'ext4');
  if (!root) throw new DroverError('DROVER_IMAGE_NO_ROOT', `The image has no ext4 root partition (partitions: ${describe(t)}).`);
  return { boot, root };
}

function describe(t: PartitionTable): string {
  return t.partitions.map((p) => `${p.number}: ${p.fs} type ${p.type}`).join(', ') || 'none';
}
