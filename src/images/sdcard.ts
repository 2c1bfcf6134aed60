// SD-stub cards: a small SD card image holding firmware, kernel, Drover's initramfs and config on
// a FAT32 boot partition, plus a FAT32 cache partition where the initramfs keeps root filesystems.
// Built without root or loop devices: the MBR is written here, the filesystems are made and filled
// by mtools working on the image file at a byte offset (`-i FILE@@OFFSET`).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, posix, resolve } from 'node:path';
import { DroverError } from '../domain/errors.js';

export interface CardFile {
  /** Inside the FAT, '/'-separated, may contain directories, e.g. 'overlays/x.dtbo'. */
  path: string;
  /** A host file path, or the content itself. */
  source: string | Buffer;
}

export interface CardOptions {
  /** Written atomically: a temp file beside it, renamed when complete, removed on any failure. */
  out: string;
  files: CardFile[];
  /** FAT volume label, at most 11 characters, upper case. Default 'DROVERBOOT'. */
  bootLabel?: string;
  /** Default 'DROVERCACHE'. */
  cacheLabel?: string;
  /** Default: max(256, total file size × 1.5 rounded up to a multiple of 64). */
  bootSizeMiB?: number;
  /** Default 4096 (the image is sparse, so an empty cache costs nothing); 0 = no cache partition. */
  cacheSizeMiB?: number;
  /** MBR disk identifier (8 hex digits, optionally with 0x); random when absent. */
  diskId?: string;
  onProgress?: (p: { phase: 'layout' | 'format' | 'copy' | 'done'; done: number; total: number }) => void;
}

export interface CardLayout {
  sizeBytes: number;
  partitions: { number: number; offset: number; size: number; type: number; label: string }[];
  /** As sfdisk prints it: '0x' and 8 lower-case hex digits. */
  diskId: string;
}

const SECTOR = 512;
const MiB = 1024 * 1024;
/** 4 MiB, where Raspberry Pi OS starts its first partition; erase blocks of SD cards divide it. */
const ALIGN_SECTORS = 8192;
const TYPE_FAT32_LBA = 0x0c;
/** FAT32 needs 65525 clusters; mformat refuses below ~33 MiB, so leave some margin. */
const MIN_PART_MiB = 64;
/** Sources copied by one mcopy call: spawning one per file costs more than the copy for overlays. */
const BATCH = 200;

const invalid = (msg: string) => new DroverError('DROVER_VALIDATION', msg);

interface Item {
  path: string;
  source: string | Buffer;
  size: number;
}

export async function buildSdCard(o: CardOptions): Promise<CardLayout> {
  const bootLabel = checkLabel('bootLabel', o.bootLabel ?? 'DROVERBOOT');
  const cacheLabel = checkLabel('cacheLabel', o.cacheLabel ?? 'DROVERCACHE');
  const cacheMiB = o.cacheSizeMiB ?? 4096;
  if (!Number.isInteger(cacheMiB) || (cacheMiB !== 0 && cacheMiB < MIN_PART_MiB)) throw invalid(`cacheSizeMiB must be 0 (no cache partition) or a whole number of at least ${MIN_PART_MiB}; got ${cacheMiB}.`);
  if (cacheMiB > 0 && cacheLabel === bootLabel) throw invalid(`The boot and cache partitions need different labels (both are '${bootLabel}'); the initramfs finds the cache by its label.`);
  const diskId = o.diskId === undefined ? randomDiskId() : checkDiskId(o.diskId);
  const out = resolve(o.out);
  if (out.includes('@@')) throw invalid(`The output path ${out} contains '@@', which mtools reads as an offset marker.`);

  const items = await checkFiles(o.files);
  const total = items.reduce((s, f) => s + f.size, 0);
  const bootMiB = o.bootSizeMiB ?? Math.max(256, Math.ceil((total * 1.5) / (64 * MiB)) * 64);
  if (!Number.isInteger(bootMiB) || bootMiB < MIN_PART_MiB) throw invalid(`bootSizeMiB must be a whole number of at least ${MIN_PART_MiB}; got ${bootMiB}.`);
  if (total > bootMiB * MiB) throw invalid(`The files total ${mib(total)} MiB, more than the ${bootMiB} MiB boot partition; pass a larger bootSizeMiB or leave it unset.`);

  const progress = o.onProgress ?? (() => {});
  progress({ phase: 'layout', done: 0, total: 1 });
  const bootStart = ALIGN_SECTORS;
  const bootSectors = bootMiB * 2048;
  const parts = [{ number: 1, start: bootStart, sectors: bootSectors, label: bootLabel }];
  if (cacheMiB > 0) {
    const cacheStart = Math.ceil((bootStart + bootSectors) / ALIGN_SECTORS) * ALIGN_SECTORS;
    parts.push({ number: 2, start: cacheStart, sectors: cacheMiB * 2048, label: cacheLabel });
  }
  const last = parts[parts.length - 1]!;
  const totalSectors = last.start + last.sectors;
  if (totalSectors > 0xffffffff) throw invalid('The card would be larger than the 2 TiB an MBR can describe; use smaller partitions.');
  const layout: CardLayout = {
    sizeBytes: totalSectors * SECTOR,
    partitions: parts.map((p) => ({ number: p.number, offset: p.start * SECTOR, size: p.sectors * SECTOR, type: TYPE_FAT32_LBA, label: p.label })),
    diskId: `0x${diskId.toString(16).padStart(8, '0')}`,
  };

  const tmp = join(dirname(out), `.${basename(out)}.tmp-${randomBytes(6).toString('hex')}`);
  let fh;
  try {
    fh = await open(tmp, 'wx');
  } catch (e) {
    throw invalid(`Cannot create the card image beside ${out}: ${(e as Error).message}`);
  }
  try {
    try {
      // Sparse: only the MBR, the FAT structures and the files take space on the host.
      await fh.truncate(layout.sizeBytes);
      await fh.write(mbr(diskId, parts), 0, SECTOR, 0);
    } finally {
      await fh.close();
    }
    progress({ phase: 'layout', done: 1, total: 1 });

    for (const [i, p] of parts.entries()) {
      progress({ phase: 'format', done: i, total: parts.length });
      await mtools('mformat', [
        '-i', `${tmp}@@${p.start * SECTOR}`,
        '-F', '-T', String(p.sectors), '-h', '255', '-s', '63',
        // Hidden sectors = partition start, as mkfs.fat writes it for a partition of a disk.
        '-H', String(p.start),
        '-v', p.label, '-N', randomBytes(4).toString('hex'), '::',
      ]);
    }
    progress({ phase: 'format', done: parts.length, total: parts.length });

    const boot = `${tmp}@@${bootStart * SECTOR}`;
    await checkFits(tmp, bootStart * SECTOR, items);
    await copyFiles(boot, items, (done) => progress({ phase: 'copy', done, total }));

    const done = await open(tmp, 'r+');
    try {
      await done.sync();
    } finally {
      await done.close();
    }
    await rename(tmp, out);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  progress({ phase: 'done', done: 1, total: 1 });
  return layout;
}

function checkLabel(name: string, label: string): string {
  // Characters FAT allows in a volume label without case folding or code pages.
  if (!/^[A-Z0-9_\-!#$%&'()@^`{}~][A-Z0-9 _\-!#$%&'()@^`{}~]{0,10}$/.test(label) || label.endsWith(' ')) {
    throw invalid(`${name} '${label}' is not a FAT volume label: use 1 to 11 upper-case letters, digits or _-!#$%&'()@^\`{}~ (spaces only inside).`);
  }
  return label;
}

function checkDiskId(id: string): number {
  const m = /^(?:0x)?([0-9a-f]{8})$/i.exec(id);
  const n = m ? parseInt(m[1]!, 16) : 0;
  if (n === 0) throw invalid(`diskId '${id}' is not a non-zero 32-bit disk identifier in hex (like 0x1a2b3c4d).`);
  return n;
}

function randomDiskId(): number {
  let n = 0;
  while (n === 0) n = randomBytes(4).readUInt32LE(0);
  return n;
}

const mib = (n: number) => Math.ceil(n / MiB);

/**
 * Paths become FAT long names: printable ASCII only, since mtools converts names through the
 * host locale and the Pi firmware's FAT reader has no use for anything else.
 */
function checkPath(path: string): string[] {
  if (typeof path !== 'string' || path === '') throw invalid('A card file has an empty path.');
  const parts = path.split('/');
  for (const c of parts) {
    if (c === '' || c === '.' || c === '..') throw invalid(`Card file path '${path}' must be relative and '/'-separated, without empty, '.' or '..' components.`);
    if (c.length > 255) throw invalid(`Card file path '${path}' has a component longer than the 255 characters FAT allows.`);
    if (/[^\x20-\x7e]|[<>:"\\|?*]/.test(c)) throw invalid(`Card file path '${path}' has a character FAT does not allow (control characters, non-ASCII and <>:"\\|?* are refused).`);
    if (/[. ]$/.test(c) || c.startsWith(' ')) throw invalid(`Card file path '${path}' has a component starting with a space or ending in '.' or a space, which FAT drops.`);
  }
  return parts;
}

async function checkFiles(files: CardFile[]): Promise<Item[]> {
  const seen = new Map<string, string>();
  const dirs = new Map<string, string>();
  const items: Item[] = [];
  for (const f of files) {
    const parts = checkPath(f.path);
    // FAT compares names without case.
    const key = parts.join('/').toUpperCase();
    const prev = seen.get(key);
    if (prev !== undefined) throw invalid(`Card file paths '${prev}' and '${f.path}' name the same FAT file (FAT ignores case).`);
    seen.set(key, f.path);
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      const other = dirs.get(dir.toUpperCase());
      if (other !== undefined && other !== dir) throw invalid(`Card file paths spell the directory '${dir}' in two ways ('${other}'); FAT ignores case, so use one spelling.`);
      dirs.set(dir.toUpperCase(), dir);
    }
    let size: number;
    if (Buffer.isBuffer(f.source)) size = f.source.length;
    else if (typeof f.source === 'string' && f.source !== '') {
      const st = await stat(f.source).catch(() => null);
      if (!st) throw invalid(`The source of card file '${f.path}' does not exist: ${f.source}`);
      if (!st.isFile()) throw invalid(`The source of card file '${f.path}' is not a regular file: ${f.source}`);
      size = st.size;
    } else throw invalid(`Card file '${f.path}' has no source (a host path or a Buffer).`);
    items.push({ path: parts.join('/'), source: f.source, size });
  }
  for (const [key, path] of seen) if (dirs.has(key)) throw invalid(`Card file '${path}' is also needed as a directory for other files.`);
  return items;
}

/**
 * Reads the fresh FAT32 boot sector and counts the clusters the files and their directories need
 * (every file rounded up to whole clusters, long names at 13 characters per entry), so that a
 * too-small partition is reported plainly instead of as mcopy's "Disk full" halfway through.
 */
async function checkFits(img: string, offset: number, items: Item[]): Promise<void> {
  const fh = await open(img, 'r');
  const b = Buffer.alloc(SECTOR);
  try {
    await fh.read(b, 0, SECTOR, offset);
  } finally {
    await fh.close();
  }
  const bps = b.readUInt16LE(11);
  const cluster = bps * b[13]!;
  const dataSectors = b.readUInt32LE(32) - b.readUInt16LE(14) - b[16]! * b.readUInt32LE(36);
  const available = Math.floor(dataSectors / b[13]!);

  // Directory entries per directory: '.' and '..' in subdirectories, the label in the root.
  const dirEntries = new Map<string, number>([['', 1]]);
  const add = (dir: string, name: string) => dirEntries.set(dir, (dirEntries.get(dir) ?? 0) + 1 + Math.ceil(name.length / 13));
  let need = 0;
  for (const it of items) {
    need += Math.ceil(it.size / cluster);
    const parts = it.path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const sub = parts.slice(0, i).join('/');
      if (dirEntries.has(sub)) continue;
      dirEntries.set(sub, 2);
      add(parts.slice(0, i - 1).join('/'), parts[i - 1]!);
    }
    add(parts.slice(0, -1).join('/'), parts[parts.length - 1]!);
  }
  for (const n of dirEntries.values()) need += Math.max(1, Math.ceil((n * 32) / cluster));
  if (need > available) {
    throw invalid(`The files need ${mib(need * cluster)} MiB on the boot partition but its FAT32 filesystem holds ${mib(available * cluster)} MiB; pass a larger bootSizeMiB.`);
  }
}

async function copyFiles(img: string, items: Item[], progress: (bytes: number) => void): Promise<void> {
  let done = 0;
  progress(0);
  const dirs = new Set<string>();
  for (const it of items) {
    const parts = it.path.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  // Parents first: mmd has no -p.
  const mk = [...dirs].sort((a, b) => a.split('/').length - b.split('/').length);
  for (let i = 0; i < mk.length; i += BATCH) await mtools('mmd', ['-i', img, ...mk.slice(i, i + BATCH).map((d) => `::${d}`)]);

  // Host files whose name is already the wanted long name go in batches per directory; the rest
  // one by one (Buffers through stdin).
  const batches = new Map<string, Item[]>();
  const single: Item[] = [];
  for (const it of items) {
    if (typeof it.source === 'string' && basename(it.source) === basename(it.path)) {
      const dir = posix.dirname(it.path) === '.' ? '' : posix.dirname(it.path);
      batches.set(dir, [...(batches.get(dir) ?? []), it]);
    } else single.push(it);
  }
  for (const [dir, list] of batches) {
    for (let i = 0; i < list.length; i += BATCH) {
      const chunk = list.slice(i, i + BATCH);
      // Absolute host paths: mtools takes 'x:name' as a DOS drive, never '/…'.
      await mcopy(['-i', img, '-Q', ...chunk.map((it) => resolve(it.source as string)), `::${dir}/`]);
      done += chunk.reduce((s, it) => s + it.size, 0);
      progress(done);
    }
  }
  for (const it of single) {
    if (Buffer.isBuffer(it.source)) await mcopy(['-i', img, '-', `::${it.path}`], it.source);
    else await mcopy(['-i', img, resolve(it.source), `::${it.path}`]);
    done += it.size;
    progress(done);
  }
}

async function mcopy(args: string[], input?: Buffer): Promise<void> {
  try {
    await mtools('mcopy', args, input);
  } catch (e) {
    if (e instanceof DroverError && /disk full/i.test(e.message)) throw invalid(`The boot partition is full: ${e.message}; pass a larger bootSizeMiB.`);
    throw e;
  }
}

/**
 * Runs an mtools command. Without input, stdin is /dev/null so that a name clash, where mtools
 * would ask what to do, fails instead of waiting for an answer.
 */
function mtools(cmd: string, args: string[], input?: Buffer): Promise<void> {
  return new Promise((resolveP, reject) => {
    // LC_ALL=C: stable messages ("Disk full"); MTOOLS_SKIP_CHECK: no floppy geometry sanity checks.
    const child = spawn(cmd, args, {
      stdio: [input ? 'pipe' : 'ignore', 'ignore', 'pipe'],
      env: { ...process.env, LC_ALL: 'C', MTOOLS_SKIP_CHECK: '1' },
    });
    let stderr = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      if (stderr.length < 4096) stderr += d;
    });
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') {
        reject(new DroverError('DROVER_INTERNAL', `${cmd} is not installed; building an SD card needs mtools: install the Debian package 'mtools' (apt-get install mtools).`, { package: 'mtools' }));
      } else reject(new DroverError('DROVER_INTERNAL', `Cannot run ${cmd}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      if (code === 0) resolveP();
      else reject(new DroverError('DROVER_INTERNAL', `${cmd} ${args.filter((a) => a !== '-Q').slice(0, 8).join(' ')} failed (${signal ?? `exit ${code}`}): ${stderr.trim() || 'no message'}`));
    });
    if (input) {
      // mtools may exit before reading everything (e.g. disk full); its exit status tells why.
      child.stdin!.on('error', () => {});
      child.stdin!.end(input);
    }
  });
}

/** An MBR with primary partitions of type 0x0c, CHS fields set to "use LBA". */
function mbr(diskId: number, parts: { start: number; sectors: number }[]): Buffer {
  const b = Buffer.alloc(SECTOR);
  b.writeUInt32LE(diskId, 440);
  for (const [i, p] of parts.entries()) {
    const e = 446 + i * 16;
    b[e] = 0x00; // not active, as in Raspberry Pi OS images: the Pi boot ROM does not look at it
    b[e + 1] = 0xfe;
    b[e + 2] = 0xff;
    b[e + 3] = 0xff;
    b[e + 4] = TYPE_FAT32_LBA;
    b[e + 5] = 0xfe;
    b[e + 6] = 0xff;
    b[e + 7] = 0xff;
    b.writeUInt32LE(p.start, e + 8);
    b.writeUInt32LE(p.sectors, e + 12);
  }
  b.writeUInt16LE(0xaa55, 510);
  return b;
}
