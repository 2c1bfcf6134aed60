// Boot trees: a directory of firmware, kernels, DTBs, overlays, config.txt and cmdline.txt.
// `drover image add-boot-dir` copies one into the data dir, content-addressed and atomically
// (a half-copied tree is never visible), and records what it can boot.
import { createHash, randomBytes } from 'node:crypto';
import { copyFile, lstat, mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { DroverError } from '../domain/errors.js';

export interface BootTreeInfo {
  /** sha256 over the sorted (path, file sha256) list: the tree's identity. */
  sha256: string;
  files: number;
  bytes: number;
  kernels: string[];
  initramfs: string[];
  dtbs: string[];
  firmware: string[];
  /** Pi models this tree has firmware, kernel and device tree for. */
  models: string[];
  hasConfigTxt: boolean;
  hasCmdlineTxt: boolean;
}

interface Entry {
  rel: string;
  abs: string;
  size: number;
  sha256: string;
}

const MAX_FILES = 20_000;

/** Every regular file under `root` (symlinks skipped), in name order, with size and sha256. */
export async function hashTree(root: string, dir = root, out: Entry[] = []): Promise<Entry[]> {
  for (const name of (await readdir(dir)).sort()) {
    const abs = join(dir, name);
    const st = await lstat(abs);
    if (st.isSymbolicLink()) continue; // never follow links out of (or around) the tree
    if (st.isDirectory()) await hashTree(root, abs, out);
    else if (st.isFile()) {
      if (out.length >= MAX_FILES) throw new DroverError('DROVER_IMAGE_INVALID', `More than ${MAX_FILES} files in ${root}.`);
      const data = await readFile(abs);
      out.push({ rel: relative(root, abs).split(sep).join('/'), abs, size: st.size, sha256: createHash('sha256').update(data).digest('hex') });
    }
  }
  return out;
}

const has = (names: Set<string>, ...any: string[]) => any.some((n) => names.has(n));

export function describeTree(entries: { rel: string; size: number; sha256: string }[]): BootTreeInfo {
  const names = new Set(entries.map((e) => e.rel));
  const top = entries.filter((e) => !e.rel.includes('/')).map((e) => e.rel);
  const kernels = top.filter((n) => /^kernel.*\.img$/.test(n));
  const initramfs = top.filter((n) => /^initramfs/.test(n) || /^initrd/.test(n));
  const dtbs = top.filter((n) => n.endsWith('.dtb'));
  const firmware = top.filter((n) => /^(bootcode\.bin|start.*\.elf|fixup.*\.dat)$/.test(n));
  const models: string[] = [];
  const pi3fw = has(names, 'bootcode.bin') && has(names, 'start.elf') && has(names, 'fixup.dat');
  if (pi3fw && has(names, 'kernel8.img', 'kernel7.img') && has(names, 'bcm2710-rpi-3-b.dtb')) models.push('pi3b');
  if (pi3fw && has(names, 'kernel8.img', 'kernel7.img') && has(names, 'bcm2710-rpi-3-b-plus.dtb')) models.push('pi3b+');
  if (has(names, 'start4.elf') && has(names, 'fixup4.dat') && has(names, 'kernel8.img', 'kernel7l.img') && has(names, 'bcm2711-rpi-4-b.dtb')) models.push('pi4');
  if (has(names, 'kernel_2712.img', 'kernel8.img') && has(names, 'bcm2712-rpi-5-b.dtb')) models.push('pi5');
  const hash = createHash('sha256');
  for (const e of [...entries].sort((a, b) => (a.rel < b.rel ? -1 : 1))) hash.update(`${e.rel}\0${e.sha256}\n`);
  return {
    sha256: hash.digest('hex'),
    files: entries.length,
    bytes: entries.reduce((n, e) => n + e.size, 0),
    kernels,
    initramfs,
    dtbs,
    firmware,
    models,
    hasConfigTxt: names.has('config.txt'),
    hasCmdlineTxt: names.has('cmdline.txt'),
  };
}

/**
 * Copies `src` into `storeDir/<sha256>` unless that tree is already stored. The copy goes to a
 * temporary sibling first and is renamed into place, so readers never see half a tree.
 */
export async function importBootDir(src: string, storeDir: string): Promise<{ info: BootTreeInfo; dir: string }> {
  let st;
  try {
    st = await stat(src);
  } catch {
    throw new DroverError('DROVER_IMAGE_INVALID', `Boot directory ${src} does not exist or cannot be read.`);
  }
  if (!st.isDirectory()) throw new DroverError('DROVER_IMAGE_INVALID', `${src} is not a directory.`);
  const entries = await hashTree(src);
  const info = describeTree(entries);
  if (info.kernels.length === 0) throw new DroverError('DROVER_IMAGE_INVALID', `No kernel (kernel*.img) at the top of ${src}.`);
  if (!info.hasConfigTxt) throw new DroverError('DROVER_IMAGE_INVALID', `No config.txt at the top of ${src}.`);
  const dir = join(storeDir, info.sha256);
  try {
    await stat(dir);
    return { info, dir }; // stored once, however often it is added
  } catch {
    /* not stored yet */
  }
  await mkdir(storeDir, { recursive: true });
  const tmp = join(storeDir, `.tmp-${randomBytes(6).toString('hex')}`);
  try {
    for (const e of entries) {
      const to = join(tmp, e.rel);
      await mkdir(join(to, '..'), { recursive: true });
      await copyFile(e.abs, to);
    }
    await rename(tmp, dir);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    // Another import of the same tree won the race: fine.
    if ((err as NodeJS.ErrnoException).code === 'ENOTEMPTY' || (err as NodeJS.ErrnoException).code === 'EEXIST') return { info, dir };
    throw err;
  }
  return { info, dir };
}
