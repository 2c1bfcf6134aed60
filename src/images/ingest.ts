// OS image ingest: .img / .img.xz / .img.gz / .zip → a stored image Drover can boot:
//   DATA/images/os/<sha256 of the disk image>/
//     boot/             the FAT boot partition's files + drover-initramfs* (one per kernel)
//     rootfs.squashfs   the ext4 root, with owners, modes, links, devices, times, xattrs
//     image.json        what the image is and supports (OsImageInfo)
// No loop mounts and no root: partitions are read in place (partitions.ts), the root through our
// ext4 reader into a pax stream for tar2sqfs, the FAT through mtools. Everything is built in a
// temporary directory and renamed into place, so a crash or a bad file leaves no half image.
// The Drover agent (and a Node.js runtime when the image has none it can run on) is appended to
// the root as it is squashed: agent-install.ts, node-runtime.ts.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import yauzl from 'yauzl';
import { DroverError } from '../domain/errors.js';
import type { IngestPhase } from '../domain/records.js';
import { prepareAgentInstall, type AgentInstall, type AgentInstallOptions, type AgentManifest } from './agent-install.js';
import { describeTree, hashTree, type BootTreeInfo } from './boot-dir.js';
import { Ext4 } from './ext4.js';
import { buildInitramfs } from './initramfs.js';
import { kernelInfo } from './kernel.js';
import { bootAndRoot, readPartitionTable, type Partition, type ReadAt } from './partitions.js';
import { TarWriter, type TarType } from './tar.js';
import { VERSION as droverVersion } from '../version.js';

export type { IngestPhase };
export interface IngestProgress {
  phase: IngestPhase;
  done: number;
  total: number | null;
}

export interface KernelVariant {
  file: string;
  version: string;
  arch: string;
  initramfs: string;
  initramfsBytes: number;
  initramfsSha256: string;
  initramfsMd5: string;
  modules: string[];
  missingModules: string[];
  /** Wi-Fi in the initramfs (SD stub cards): the firmware files, or why there is none. */
  wifi?: { firmware: string[]; modules: string[] } | { reason: string };
}

export interface OsImageInfo {
  format: 'os-image';
  sha256: string;
  sourceFormat: 'img' | 'xz' | 'gzip' | 'zip';
  diskBytes: number;
  partitions: { number: number; fs: string; offset: number; size: number; type: string }[];
  boot: BootTreeInfo;
  kernels: KernelVariant[];
  arch: string;
  models: string[];
  osName: string | null;
  rootfs: { file: string; bytes: number; sha256: string; md5: string; entries: number; xattrs: number; compressor: string };
  drover: string;
  /** The Drover agent (and Node.js runtime) added to the root; absent in images stored before. */
  agent?: AgentManifest;
}

export interface IngestResult {
  info: OsImageInfo;
  /** Absolute path of the stored image directory. */
  dir: string;
  /** The same disk image was stored before: nothing was rebuilt. */
  reused: boolean;
}

export interface IngestOptions {
  source: string;
  /** DATA/images/os */
  storeDir: string;
  onProgress?: (p: IngestProgress) => void;
  signal?: AbortSignal;
  compressor?: 'gzip' | 'xz' | 'zstd' | 'lz4';
  /**
   * The Drover agent in the image, with a Node.js runtime when the image has no node ≥ 18.15
   * (agent-install.ts). Default: on when the agent bundle is built; false turns it off. Runtimes
   * are cached in DATA/runtimes (the store's DATA/images/os → DATA/runtimes) unless
   * `runtime.cacheDir` says otherwise.
   */
  agent?: AgentInstallOptions | false;
}

/** DATA/runtimes for the store DATA/images/os; for any other store, `runtimes` beside it. */
export function runtimeCacheDirFor(storeDir: string): string {
  const parent = dirname(storeDir);
  return basename(storeDir) === 'os' && basename(parent) === 'images' ? join(dirname(parent), 'runtimes') : join(parent, 'runtimes');
}

const MiB = 1024 * 1024;
const XZ = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);

/** The variant's initramfs name: kernel8.img → drover-initramfs8, kernel_2712.img → drover-initramfs_2712. */
export const initramfsNameFor = (kernelFile: string) => `drover-initramfs${kernelFile.replace(/^kernel/, '').replace(/\.img$/, '')}`;

export async function sniffFormat(path: string): Promise<OsImageInfo['sourceFormat']> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(512);
    const { bytesRead } = await fh.read(b, 0, 512, 0);
    if (bytesRead >= 6 && b.subarray(0, 6).equals(XZ)) return 'xz';
    if (bytesRead >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
    if (bytesRead >= 4 && b.readUInt32LE(0) === 0x04034b50) return 'zip';
    if (bytesRead === 512 && b.readUInt16LE(510) === 0xaa55) return 'img';
    throw new DroverError('DROVER_IMAGE_FORMAT', `${bytesRead === 0 ? 'The file is empty' : 'The file is neither a disk image (no partition table) nor .xz, .gz or .zip'}.`);
  } finally {
    await fh.close();
  }
}

/** Counts bytes through a stream (progress) and hashes them. */
function meter(onBytes: (n: number) => void, hash?: ReturnType<typeof createHash>): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash?.update(chunk);
      onBytes(chunk.length);
      cb(null, chunk);
    },
  });
}

function throttle(fn: (p: IngestProgress) => void): (p: IngestProgress) => void {
  let last = 0;
  let lastPhase = '';
  return (p) => {
    const now = Date.now();
    if (p.phase !== lastPhase || now - last >= 250 || (p.total !== null && p.done >= p.total)) {
      last = now;
      lastPhase = p.phase;
      fn(p);
    }
  };
}

/** Decompresses (or just hashes) the source into a raw disk image; returns its path and sha256. */
async function rawDisk(o: IngestOptions, format: OsImageInfo['sourceFormat'], work: string, progress: (p: IngestProgress) => void): Promise<{ path: string; sha256: string; bytes: number }> {
  const total = (await stat(o.source)).size;
  const hash = createHash('sha256');
  let done = 0;
  const counting = (n: number) => progress({ phase: 'decompress', done: (done += n), total });
  if (format === 'img') {
    await pipeline(createReadStream(o.source, { highWaterMark: 4 * MiB }), meter(counting, hash), async function* (src: AsyncIterable<Buffer>) {
      for await (const _ of src) void _;
    }, { signal: o.signal });
    return { path: o.source, sha256: hash.digest('hex'), bytes: total };
  }
  const out = join(work, 'disk.img');
  let bytes = 0;
  const sizing = meter((n) => (bytes += n), hash);
  if (format === 'gzip') {
    try {
      await pipeline(createReadStream(o.source, { highWaterMark: 4 * MiB }), meter(counting), createGunzip(), sizing, createWriteStream(out), { signal: o.signal });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code?.startsWith('Z_')) throw new DroverError('DROVER_IMAGE_CORRUPT', `The .gz file is damaged or truncated (${(err as Error).message}).`);
      throw err;
    }
  } else if (format === 'xz') {
    // xz(1) is faster than any JavaScript decoder and multi-threaded for multi-block files.
    const xz = spawn('xz', ['-dc', '-T0'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    xz.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    xz.on('error', () => undefined);
    const exited = new Promise<number | null>((res) => xz.on('close', (code) => res(code)));
    const feeding = pipeline(createReadStream(o.source, { highWaterMark: 4 * MiB }), meter(counting), xz.stdin, { signal: o.signal }).catch(() => undefined);
    const draining = pipeline(xz.stdout, sizing, createWriteStream(out), { signal: o.signal });
    const [code] = await Promise.all([exited, feeding, draining.catch((e: unknown) => e)]);
    if (o.signal?.aborted) throw o.signal.reason;
    if (code !== 0) {
      const why = stderr.trim().replace(/^xz: \(stdin\): /, '');
      if (/ENOENT/.test(why) || code === null) throw new DroverError('DROVER_IMAGE_CORRUPT', `xz failed (${why || 'is the xz-utils package installed?'}).`);
      throw new DroverError('DROVER_IMAGE_CORRUPT', `The .xz file is damaged or truncated: ${why || `xz exited with ${code}`}.`);
    }
  } else {
    await unzipLargestImg(o.source, out, sizing, counting, total, o.signal);
  }
  return { path: out, sha256: hash.digest('hex'), bytes };
}

async function unzipLargestImg(source: string, out: string, sizing: Transform, counting: (n: number) => void, _total: number, signal?: AbortSignal): Promise<void> {
  const zip = await new Promise<yauzl.ZipFile>((res, rej) =>
    yauzl.open(source, { lazyEntries: true, autoClose: false }, (err, z) => (err ? rej(new DroverError('DROVER_IMAGE_CORRUPT', `The .zip file is damaged: ${err.message}.`)) : res(z))),
  );
  try {
    const entries: yauzl.Entry[] = [];
    await new Promise<void>((res, rej) => {
      zip.on('entry', (e: yauzl.Entry) => {
        entries.push(e);
        zip.readEntry();
      });
      zip.on('end', res);
      zip.on('error', (e: Error) => rej(new DroverError('DROVER_IMAGE_CORRUPT', `The .zip file is damaged: ${e.message}.`)));
      zip.readEntry();
    });
    const imgs = entries.filter((e) => /\.img$/i.test(e.fileName) && !e.fileName.endsWith('/'));
    if (imgs.length === 0) throw new DroverError('DROVER_IMAGE_FORMAT', `The .zip holds no .img file (it has: ${entries.slice(0, 5).map((e) => e.fileName).join(', ') || 'nothing'}).`);
    const entry = imgs.sort((a, b) => b.uncompressedSize - a.uncompressedSize)[0]!;
    const stream = await new Promise<Readable>((res, rej) => zip.openReadStream(entry, (err, s) => (err ? rej(new DroverError('DROVER_IMAGE_CORRUPT', `The .zip entry ${entry.fileName} cannot be read: ${err.message}.`)) : res(s))));
    try {
      await pipeline(stream, meter((n) => counting(Math.round((n * entry.compressedSize) / Math.max(1, entry.uncompressedSize)))), sizing, createWriteStream(out), { signal });
    } catch (err) {
      if (err instanceof DroverError || signal?.aborted) throw err;
      throw new DroverError('DROVER_IMAGE_CORRUPT', `The .zip entry ${entry.fileName} is damaged or truncated: ${(err as Error).message}.`);
    }
  } finally {
    zip.close();
  }
}

function fileReader(fd: Awaited<ReturnType<typeof open>>): ReadAt {
  return async (offset, length) => {
    const b = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const { bytesRead } = await fd.read(b, got, length - got, offset + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return got === length ? b : b.subarray(0, got);
  };
}

async function copyBootFiles(disk: string, boot: Partition, dest: string): Promise<void> {
  await mkdir(dest, { recursive: true });
  const r = spawnSync('mcopy', ['-s', '-n', '-m', '-i', `${disk}@@${boot.offset}`, '::/*', `${dest}/`], { encoding: 'utf8' });
  if (r.error) throw new DroverError('DROVER_INTERNAL', `mcopy is needed to read the FAT boot partition: install the Debian package mtools (${r.error.message}).`);
  if (r.status !== 0) throw new DroverError('DROVER_IMAGE_CORRUPT', `The FAT boot partition cannot be read: ${r.stderr.trim().slice(0, 300)}`);
}

const TAR_TYPES: Record<string, TarType> = { file: 'file', dir: 'dir', symlink: 'symlink', chardev: 'chardev', blockdev: 'blockdev', fifo: 'fifo' };

/** Streams the ext4 root as pax into tar2sqfs. Sockets are skipped (a tar cannot hold them). */
/** Bytes in use on the ext4 (blocks minus free blocks, from the superblock): the progress total. */
async function ext4UsedBytes(read: ReadAt, offset: number): Promise<number> {
  const sb = await read(offset + 1024, 1024);
  const blockSize = 1024 << sb.readUInt32LE(24);
  const is64 = (sb.readUInt32LE(0x60) & 0x80) !== 0;
  const blocks = sb.readUInt32LE(4) + (is64 ? sb.readUInt32LE(0x150) * 2 ** 32 : 0);
  const free = sb.readUInt32LE(12) + (is64 ? sb.readUInt32LE(0x158) * 2 ** 32 : 0);
  return Math.max(0, blocks - free) * blockSize;
}

async function squashRoot(fs: Ext4, total: number, out: string, compressor: string, progress: (p: IngestProgress) => void, signal?: AbortSignal, extra?: AgentInstall): Promise<{ entries: number; xattrs: number }> {
  const child = spawn('tar2sqfs', ['--quiet', '--no-skip', '--force', '--compressor', compressor, '--block-size', '131072', out], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const spawned = new Promise<void>((res, rej) => {
    child.on('spawn', res);
    child.on('error', (e) => rej(new DroverError('DROVER_INTERNAL', `tar2sqfs is needed to build the squashfs: install the Debian package squashfs-tools-ng (${e.message}).`)));
  });
  await spawned;
  const exited = new Promise<number | null>((res) => child.on('close', (c) => res(c)));
  const tar = new TarWriter();
  const piping = pipeline(tar.stream, child.stdin).catch((e: unknown) => e);
  let done = 0;
  let entries = 0;
  let xattrs = 0;
  const links = new Map<number, string>();
  try {
    for await (const e of fs.walk()) {
      if (signal?.aborted) throw signal.reason;
      if (e.path === '' || e.type === 'socket') continue;
      // What the agent install replaces (it is appended after the walk).
      if (extra?.skip(e.path)) continue;
      entries++;
      xattrs += e.xattrs.length;
      // squashfs keeps one time per inode: atime/ctime would only make every header a pax header.
      const base = { path: e.path, mode: e.mode, uid: e.uid, gid: e.gid, mtimeNs: e.mtimeNs, xattrs: e.xattrs };
      if (e.type === 'file' && e.nlink > 1) {
        const first = links.get(e.ino);
        if (first !== undefined) {
          await tar.add({ ...base, type: 'hardlink', linkTarget: first, size: 0 });
          continue;
        }
        links.set(e.ino, e.path);
      }
      if (e.type === 'file') {
        await tar.add({ ...base, type: 'file', size: e.size }, fs.readFile(e));
        done += e.size;
        progress({ phase: 'rootfs', done, total });
      } else {
        await tar.add({ ...base, type: TAR_TYPES[e.type]!, ...(e.target !== undefined ? { linkTarget: e.target } : {}), ...(e.rdevMajor !== undefined ? { devMajor: e.rdevMajor, devMinor: e.rdevMinor ?? 0 } : {}) });
      }
    }
    for (const x of extra?.entries ?? []) {
      if (signal?.aborted) throw signal.reason;
      entries++;
      await tar.add(x.entry, x.data?.());
      done += x.entry.size ?? 0;
      progress({ phase: 'rootfs', done, total });
    }
    await tar.finish();
  } catch (err) {
    tar.destroy(err as Error);
    child.kill('SIGKILL');
    await exited;
    throw err;
  }
  await piping;
  const code = await exited;
  if (code !== 0) throw new DroverError('DROVER_INTERNAL', `tar2sqfs failed (exit ${code}): ${stderr.trim().slice(-500)}`);
  return { entries, xattrs };
}

async function hashFile(path: string): Promise<{ sha256: string; md5: string; bytes: number }> {
  const sha = createHash('sha256');
  const md5 = createHash('md5');
  let bytes = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * MiB }) as AsyncIterable<Buffer>) {
    sha.update(chunk);
    md5.update(chunk);
    bytes += chunk.length;
  }
  return { sha256: sha.digest('hex'), md5: md5.digest('hex'), bytes };
}

/** Which module tree goes with a kernel file: by its version string, else by Raspberry Pi naming. */
async function moduleTreeFor(fs: Ext4, kernelFile: string, version: string | null): Promise<string | null> {
  const trees = (await fs.readdir('/lib/modules').catch(() => [] as string[])).filter(Boolean);
  if (version && trees.includes(version)) return version;
  const suffix: Record<string, RegExp> = { 'kernel8.img': /-v8$|arm64$/, 'kernel_2712.img': /-2712$/, 'kernel7l.img': /-v7l\+?$/, 'kernel7.img': /-v7\+?$/, 'kernel.img': /\+$/ };
  const re = suffix[kernelFile];
  const hit = re ? trees.filter((t) => re.test(t)).sort().at(-1) : undefined;
  return hit ?? null;
}

async function osName(fs: Ext4): Promise<string | null> {
  for (const p of ['/etc/os-release', '/usr/lib/os-release']) {
    try {
      const text = (await fs.readFileAll(p, 64 * 1024)).toString('utf8');
      const m = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(text);
      if (m) return m[1]!;
    } catch {
      /* next */
    }
  }
  return null;
}

export async function ingestOsImage(o: IngestOptions): Promise<IngestResult> {
  const progress = throttle(o.onProgress ?? (() => undefined));
  const format = await sniffFormat(o.source);
  await mkdir(o.storeDir, { recursive: true });
  const work = join(o.storeDir, `.tmp-${randomBytes(6).toString('hex')}`);
  await mkdir(work, { recursive: true });
  try {
    const disk = await rawDisk(o, format, work, progress);
    const dir = join(o.storeDir, disk.sha256);
    try {
      const info = JSON.parse(await readFile(join(dir, 'image.json'), 'utf8')) as OsImageInfo;
      return { info, dir, reused: true };
    } catch {
      /* not stored yet */
    }
    const fd = await open(disk.path, 'r');
    try {
      progress({ phase: 'partitions', done: 0, total: null });
      const read = fileReader(fd);
      const table = await readPartitionTable(read, disk.bytes);
      const { boot, root } = bootAndRoot(table);
      const out = join(work, 'out');
      const bootDir = join(out, 'boot');
      progress({ phase: 'boot-files', done: 0, total: null });
      await copyBootFiles(disk.path, boot, bootDir);
      const bootEntries = await hashTree(bootDir);
      const bootTree = describeTree(bootEntries);
      if (bootTree.kernels.length === 0) throw new DroverError('DROVER_IMAGE_NO_KERNEL', 'The boot partition has no kernel*.img.');
      const fs = await Ext4.open(read, root.offset, root.size);

      // Kernels first: an image Drover cannot boot fails before the long squashfs step.
      const kernels: KernelVariant[] = [];
      const problems: string[] = [];
      for (const file of bootTree.kernels) {
        const k = kernelInfo(await readFile(join(bootDir, file)));
        const tree = await moduleTreeFor(fs, file, k.version);
        if (!tree) {
          problems.push(`${file} (version ${k.version ?? 'unknown'}) has no /lib/modules tree in the root`);
          continue;
        }
        kernels.push({ file, version: tree, arch: k.arch, initramfs: initramfsNameFor(file), initramfsBytes: 0, initramfsSha256: '', initramfsMd5: '', modules: [], missingModules: [] });
      }
      if (kernels.length === 0) throw new DroverError('DROVER_IMAGE_NO_KERNEL', `No kernel with its modules: ${problems.join('; ')}.`);

      progress({ phase: 'initramfs', done: 0, total: kernels.length });
      for (const [i, k] of kernels.entries()) {
        const r = await buildInitramfs(fs, k.version, k.arch, { version: droverVersion });
        await writeFile(join(bootDir, k.initramfs), r.data);
        const h = createHash('sha256').update(r.data).digest('hex');
        // The boot tree's description gains the initramfs without hashing every file again.
        bootEntries.splice(0, bootEntries.length, ...bootEntries.filter((e) => e.rel !== k.initramfs), { rel: k.initramfs, abs: join(bootDir, k.initramfs), size: r.data.length, sha256: h });
        Object.assign(k, { initramfsBytes: r.data.length, initramfsSha256: h, initramfsMd5: createHash('md5').update(r.data).digest('hex'), modules: r.modules, missingModules: r.missingModules,
          wifi: r.wifi.included ? { firmware: r.wifi.firmware, modules: r.wifi.modules } : { reason: r.wifi.reason } });
        progress({ phase: 'initramfs', done: i + 1, total: kernels.length });
      }
      // The agent before the long squashfs step: a runtime that cannot be had fails early.
      let agent: AgentManifest | undefined;
      let agentInstall: AgentInstall | undefined;
      if (o.agent !== false) {
        const r = await prepareAgentInstall(fs, {
          ...o.agent,
          runtimeCacheDir: runtimeCacheDirFor(o.storeDir),
          onProgress: (done, total) => progress({ phase: 'runtime', done, total }),
          ...(o.signal ? { signal: o.signal } : {}),
        });
        agent = r.manifest;
        if ('entries' in r) agentInstall = r;
      } else {
        agent = { installed: false, reason: 'Turned off for this ingest.' };
      }
      const compressor = o.compressor ?? 'gzip';
      const squash = join(out, 'rootfs.squashfs');
      const counts = await squashRoot(fs, (await ext4UsedBytes(read, root.offset)) + (agentInstall?.bytes ?? 0), squash, compressor, progress, o.signal, agentInstall);
      progress({ phase: 'store', done: 0, total: null });
      const sq = await hashFile(squash);
      const finalBoot = describeTree(bootEntries);
      const info: OsImageInfo = {
        format: 'os-image',
        sha256: disk.sha256,
        sourceFormat: format,
        diskBytes: disk.bytes,
        partitions: table.partitions.map((p) => ({ number: p.number, fs: p.fs, offset: p.offset, size: p.size, type: p.type })),
        boot: finalBoot,
        kernels,
        arch: kernels[0]!.arch,
        models: finalBoot.models,
        osName: await osName(fs),
        rootfs: { file: 'rootfs.squashfs', bytes: sq.bytes, sha256: sq.sha256, md5: sq.md5, entries: counts.entries, xattrs: counts.xattrs, compressor },
        drover: droverVersion,
        agent,
      };
      await writeFile(join(out, 'image.json'), `${JSON.stringify(info, null, 2)}\n`);
      try {
        await rename(out, dir);
      } catch (err) {
        // The same image finished in a parallel ingest: use that one.
        if ((err as NodeJS.ErrnoException).code !== 'ENOTEMPTY' && (err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        return { info: JSON.parse(await readFile(join(dir, 'image.json'), 'utf8')) as OsImageInfo, dir, reused: true };
      }
      return { info, dir, reused: false };
    } finally {
      await fd.close();
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Removes work directories a crashed ingest left behind (call at start, before any ingest). */
export async function removeIngestLeftovers(storeDir: string): Promise<number> {
  let n = 0;
  for (const name of await readdir(storeDir).catch(() => [] as string[])) {
    if (!name.startsWith('.tmp-')) continue;
    await rm(join(storeDir, name), { recursive: true, force: true });
    n++;
  }
  return n;
}
