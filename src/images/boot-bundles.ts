// Bundles of an image's boot files for devices that boot from an SD card:
//  - the SD stub (drover sdcard build, and its self-update): firmware, kernels, DTBs, overlays,
//    Drover's initramfs, and config.txt/cmdline.txt rendered for stub mode (no device token:
//    a stub card is generic; the initramfs finds its token by serial, as netboot does);
//  - cattlepi's initfs.tgz (its boot partition tarball), cached beside the image.
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Image } from '../domain/records.js';
import { initramfsLines, SD_ROOT_ARGS, withoutInitramfsLines } from '../netboot/bootfiles/render.js';
import { tarOfFiles } from './tar.js';

export interface BundleFile {
  path: string;
  data: Buffer;
}

async function walk(root: string, dir = root, out: string[] = []): Promise<string[]> {
  for (const e of (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const abs = join(dir, e.name);
    if (e.isDirectory()) await walk(root, abs, out);
    else if (e.isFile()) out.push(abs.slice(root.length + 1));
  }
  return out;
}

/** The stub's files: the image's boot tree with config.txt and cmdline.txt for stub mode. */
export async function stubFiles(bootDir: string, image: Image, o: { server: string; version: string }): Promise<BundleFile[]> {
  const kernels = (image.metadata.kernels ?? []) as { file: string; initramfs: string }[];
  const out: BundleFile[] = [];
  let config = '';
  let cmdline = 'console=serial0,115200 console=tty1';
  for (const rel of await walk(bootDir)) {
    if (rel === 'config.txt') config = await readFile(join(bootDir, rel), 'utf8');
    else if (rel === 'cmdline.txt') cmdline = await readFile(join(bootDir, rel), 'utf8');
    else if (!/^(initramfs|initrd)/.test(rel)) out.push({ path: rel, data: await readFile(join(bootDir, rel)) });
  }
  const cfg = withoutInitramfsLines(config);
  out.push({ path: 'config.txt', data: Buffer.from(`${cfg}\n\n# --- Drover SD stub (${image.name}:${image.tag}) ---\n[all]\n${initramfsLines(kernels).join('\n')}\n`) });
  const args = cmdline.replace(/\r?\n/g, ' ').split(/\s+/).filter((a) => a && !a.startsWith('drover.') && !SD_ROOT_ARGS.test(a));
  out.push({ path: 'cmdline.txt', data: Buffer.from(`${[...args, `drover.server=${o.server}`, 'drover.boot=sdstub'].join(' ')}\n`) });
  out.push({ path: 'drover-stub.version', data: Buffer.from(`${o.version}\n`) });
  return out;
}

export async function stubTar(bootDir: string, image: Image, o: { server: string; version: string }): Promise<Buffer> {
  return tarOfFiles(await stubFiles(bootDir, image, o));
}

/** Builds in progress, by path: concurrent first requests wait for the same one. */
const initfsBuilds = new Map<string, Promise<{ path: string; md5: string }>>();

/** cattlepi's initfs: the boot partition as a tar.gz, built once per image and kept beside it. */
export async function cattlepiInitfs(bootDir: string, _image: Image): Promise<{ path: string; md5: string }> {
  const path = join(bootDir, '..', 'cattlepi-initfs.tgz');
  const md5File = `${path}.md5`;
  try {
    await stat(path);
    return { path, md5: (await readFile(md5File, 'utf8')).trim() };
  } catch {
    /* build it */
  }
  let build = initfsBuilds.get(path);
  if (!build) {
    build = buildCattlepiInitfs(bootDir, path, md5File).finally(() => initfsBuilds.delete(path));
    initfsBuilds.set(path, build);
  }
  return build;
}

async function buildCattlepiInitfs(bootDir: string, path: string, md5File: string): Promise<{ path: string; md5: string }> {
  const files: BundleFile[] = [];
  for (const rel of await walk(bootDir)) files.push({ path: rel, data: await readFile(join(bootDir, rel)) });
  const data = gzipSync(await tarOfFiles(files));
  const md5 = createHash('md5').update(data).digest('hex');
  const suffix = `${randomBytes(4).toString('hex')}.tmp`;
  const tmp = `${path}.${suffix}`;
  const md5Tmp = `${md5File}.${suffix}`;
  try {
    await writeFile(md5Tmp, `${md5}\n`);
    await rename(md5Tmp, md5File);
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    await rm(md5Tmp, { force: true });
    throw err;
  }
  return { path, md5 };
}
