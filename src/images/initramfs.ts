// Drover's initramfs for one kernel of an OS image: the image's own busybox (with its shared
// libraries when it is not static, as initramfs-tools' copy_exec does), the kernel modules the
// boot needs from the image's module tree with their dependencies, and Drover's /init
// (data/initramfs/init). Built at ingest; nothing is taken from the controller host.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { gzipSync } from 'node:zlib';
import { DroverError } from '../domain/errors.js';
import { cpioNewc, sortForCpio, type CpioEntry } from './cpio.js';
import { readElf, type ElfInfo } from './elf.js';
import type { Ext4 } from './ext4.js';

/** Modules the boot may need, in load order; ones the kernel has built in or lacks are skipped. */
export const INITRAMFS_MODULES = [
  // buses and network: QEMU virt (virtio), Pi 4/5 (genet, the bcmgenet driver), Pi 3B+ (lan78xx)
  // and Pi 3B (smsc95xx) behind the USB host controllers a distribution kernel has as modules
  'virtio_pci', 'virtio_mmio', 'virtio_net', 'virtio_blk', 'genet', 'mdio_bcm_unimac', 'dwc2', 'pcie_brcmstb', 'reset_raspberrypi', 'xhci_pci', 'lan78xx', 'smsc95xx',
  // the SD card's cache partition
  'mmc_block', 'sdhci_iproc', 'vfat', 'nls_cp437', 'nls_ascii', 'nls_iso8859_1',
  // the root: squashfs on a loop device, tmpfs upper, overlayfs
  'loop', 'squashfs', 'overlay',
];

/**
 * Modules for boot mode nfs, included but loaded only by nfs-root.sh: the NFSv4 client, and ext4
 * for the device's layer.ext4 (crc32c_generic is what ext4 asks the crypto API for by alias).
 */
export const INITRAMFS_NFS_MODULES = ['nfsv4', 'ext4', 'crc32c_generic'];

/**
 * Wi-Fi for SD stub cards (included only when the image has wpa_supplicant; loaded by the init
 * only when the card carries drover-wifi.conf): the Pi's Broadcom/Cypress chip, its firmware.
 */
export const INITRAMFS_WIFI_MODULES = ['brcmfmac', 'brcmfmac_wcc', 'cfg80211'];
const WPA_SUPPLICANT_PATHS = ['/usr/sbin/wpa_supplicant', '/sbin/wpa_supplicant'];
const FIRMWARE_DIRS = ['/lib/firmware/brcm', '/usr/lib/firmware/brcm'];
/** The chips on Pi 3B/Zero W (43430), 3B+/4/5/400/CM4 (43455, 43456), Zero 2 W (43436). */
const WIFI_FIRMWARE = /^brcmfmac434(30|36|55|56)[-.]/;
const MAX_WIFI_FIRMWARE_BYTES = 16 * 1024 * 1024;

const BUSYBOX_PATHS = ['/usr/bin/busybox', '/bin/busybox', '/usr/lib/initramfs-tools/bin/busybox', '/sbin/busybox'];
const TRIPLETS: Record<string, string> = { arm64: 'aarch64-linux-gnu', armhf: 'arm-linux-gnueabihf', x86_64: 'x86_64-linux-gnu' };

export interface InitramfsResult {
  data: Buffer;
  modules: string[];
  missingModules: string[];
  busybox: { path: string; static: boolean; libs: string[] };
  /** Wi-Fi for SD stub cards: what was found in the image, or why there is none. */
  wifi: { included: true; wpaSupplicant: string; modules: string[]; firmware: string[] } | { included: false; reason: string };
}

function dataFile(name: string): Buffer {
  // src/images/ → ../../data, dist/src/images/ → ../../../data
  for (const rel of [`../../data/initramfs/${name}`, `../../../data/initramfs/${name}`]) {
    const url = new URL(rel, import.meta.url);
    if (existsSync(url)) return readFileSync(url);
  }
  throw new Error(`data/initramfs/${name} not found`);
}

/** modules.dep: module name (dashes as underscores) → its file and its dependencies' files. */
export function parseModulesDep(text: string): Map<string, { file: string; deps: string[] }> {
  const out = new Map<string, { file: string; deps: string[] }>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const file = line.slice(0, colon).trim();
    const deps = line.slice(colon + 1).trim().split(/\s+/).filter(Boolean);
    out.set(moduleName(file), { file, deps });
  }
  return out;
}

/** modules.softdep: `softdep ext4 pre: crc32c` → ext4 → [crc32c]. */
export function parseSoftdeps(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^softdep\s+(\S+)\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    const names = m[2]!.split(/\s+/).filter((w) => w && !w.endsWith(':')).map((w) => w.replace(/-/g, '_'));
    out.set(m[1]!.replace(/-/g, '_'), [...(out.get(m[1]!) ?? []), ...names]);
  }
  return out;
}

export const moduleName = (file: string) => posix.basename(file).replace(/\.ko(\.(xz|gz|zst))?$/, '').replace(/-/g, '_');

function decompressModule(file: string, data: Buffer): Buffer {
  if (file.endsWith('.ko')) return data;
  const tool = file.endsWith('.xz') ? ['xz', '-dc'] : file.endsWith('.zst') ? ['zstd', '-dc'] : ['gzip', '-dc'];
  const r = spawnSync(tool[0]!, tool.slice(1), { input: data, maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) throw new DroverError('DROVER_IMAGE_CORRUPT', `Kernel module ${file} did not decompress with ${tool[0]}${r.error ? ` (${r.error.message})` : ''}.`);
  return r.stdout;
}

export async function buildInitramfs(fs: Ext4, kernelVersion: string, arch: string, extra: { version: string }): Promise<InitramfsResult> {
  const entries: CpioEntry[] = [];
  const dirs = new Set<string>();
  const addDir = (p: string) => {
    for (let d = p; d && d !== '.' && !dirs.has(d); d = posix.dirname(d)) {
      dirs.add(d);
      entries.push({ path: d, type: 'dir', mode: 0o755 });
    }
  };
  const addFile = (p: string, data: Buffer, mode = 0o644) => {
    addDir(posix.dirname(p));
    entries.push({ path: p, type: 'file', mode, data });
  };
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'dev', 'proc', 'sys', 'run', 'tmp', 'newroot', 'etc/drover', 'lib']) addDir(d);
  // The kernel opens /dev/console before /init runs; devtmpfs is mounted only later.
  entries.push({ path: 'dev/console', type: 'chardev', mode: 0o600, devMajor: 5, devMinor: 1 });

  // busybox from the image itself, so its architecture always matches the kernel's.
  let bbPath: string | null = null;
  let bb: Buffer | null = null;
  for (const p of BUSYBOX_PATHS) {
    const e = await fs.lookup(p);
    if (!e) continue;
    bb = await fs.readFileAll(p, 16 * 1024 * 1024);
    bbPath = p;
    break;
  }
  if (!bb || !bbPath) throw new DroverError('DROVER_IMAGE_NO_KERNEL', 'The image has no busybox (looked in /usr/bin, /bin, /usr/lib/initramfs-tools/bin); install the busybox package in the image so Drover can build its initramfs from it.');
  const elf: ElfInfo = readElf(bb);
  if (arch !== 'unknown' && elf.arch !== arch) throw new DroverError('DROVER_IMAGE_NO_KERNEL', `The image's busybox is for ${elf.arch} but its kernel ${kernelVersion} is for ${arch}.`);
  addFile('bin/busybox', bb, 0o755);
  entries.push({ path: 'bin/sh', type: 'symlink', mode: 0o777, linkTarget: 'busybox' });
  const copiedLibs = new Set<string>();
  const libs = elf.isStatic ? [] : await copySharedLibs(fs, elf, addFile, entries, copiedLibs, 'busybox');
  const wifi = await addWifi(fs, elf.arch, addFile, entries, copiedLibs);

  // Modules and their dependencies (hard and soft), uncompressed so busybox modprobe loads them.
  const modRoot = `/lib/modules/${kernelVersion}`;
  const depText = (await fs.readFileAll(`${modRoot}/modules.dep`, 64 * 1024 * 1024)).toString('utf8');
  const deps = parseModulesDep(depText);
  const soft = (await fs.lookup(`${modRoot}/modules.softdep`)) ? parseSoftdeps((await fs.readFileAll(`${modRoot}/modules.softdep`)).toString('utf8')) : new Map<string, string[]>();
  const builtin = (await fs.lookup(`${modRoot}/modules.builtin`))
    ? new Set((await fs.readFileAll(`${modRoot}/modules.builtin`)).toString('utf8').split('\n').filter(Boolean).map(moduleName))
    : new Set<string>();
  const wanted: string[] = [];
  const missing: string[] = [];
  const include = new Map<string, string>(); // module file → file in the initramfs
  const visit = (name: string, depth: number) => {
    const m = deps.get(name);
    if (!m || depth > 32) return false;
    for (const s of soft.get(name) ?? []) visit(s, depth + 1);
    for (const d of m.deps) visit(moduleName(d), depth + 1);
    include.set(m.file, m.file.replace(/\.ko\.(xz|gz|zst)$/, '.ko'));
    return true;
  };
  for (const name of INITRAMFS_MODULES) {
    if (visit(name, 0)) wanted.push(name);
    else if (!builtin.has(name)) missing.push(name);
  }
  for (const name of INITRAMFS_NFS_MODULES) if (!visit(name, 0) && !builtin.has(name)) missing.push(name);
  if (wifi.included) {
    for (const name of INITRAMFS_WIFI_MODULES) if (visit(name, 0)) wifi.modules.push(name);
    addFile('etc/drover/wifi-modules', Buffer.from(`${wifi.modules.join('\n')}\n`));
  }
  const depLines: string[] = [];
  for (const [file, out] of include) {
    const data = decompressModule(file, await fs.readFileAll(`${modRoot}/${file}`, 64 * 1024 * 1024));
    addFile(posix.join('lib/modules', kernelVersion, out), data);
    const m = deps.get(moduleName(file))!;
    depLines.push(`${out}: ${m.deps.map((d) => d.replace(/\.ko\.(xz|gz|zst)$/, '.ko')).join(' ')}`.trimEnd());
  }
  addFile(posix.join('lib/modules', kernelVersion, 'modules.dep'), Buffer.from(`${depLines.join('\n')}\n`));
  const softLines = [...soft].filter(([n]) => include.has(deps.get(n)?.file ?? '')).map(([n, s]) => `softdep ${n} pre: ${s.join(' ')}`);
  addFile(posix.join('lib/modules', kernelVersion, 'modules.softdep'), Buffer.from(`${softLines.join('\n')}\n`));

  addFile('init', dataFile('init'), 0o755);
  addFile('etc/drover/udhcpc.script', dataFile('udhcpc.script'), 0o755);
  addFile('etc/drover/nfs-root.sh', dataFile('nfs-root.sh'), 0o644);
  addFile('etc/drover/modules', Buffer.from(`${wanted.join('\n')}\n`));
  addFile('etc/drover/version', Buffer.from(`${extra.version}\n`));
  const data = gzipSync(cpioNewc(sortForCpio(entries)), { level: 6 });
  return { data, modules: wanted, missingModules: missing, busybox: { path: bbPath, static: elf.isStatic, libs }, wifi };
}

/** wpa_supplicant with its libraries and the Pi Wi-Fi firmware, when the image has them. */
async function addWifi(fs: Ext4, arch: string, addFile: (p: string, d: Buffer, mode?: number) => void, entries: CpioEntry[], copiedLibs: Set<string>): Promise<InitramfsResult['wifi']> {
  let path: string | null = null;
  for (const p of WPA_SUPPLICANT_PATHS) if (!path && (await fs.lookup(p))) path = p;
  if (!path) return { included: false, reason: 'the image has no wpa_supplicant' };
  const bin = await fs.readFileAll(path, 32 * 1024 * 1024);
  let elf: ElfInfo;
  try {
    elf = readElf(bin);
  } catch {
    return { included: false, reason: `${path} is not an ELF program` };
  }
  if (elf.arch !== arch) return { included: false, reason: `${path} is for ${elf.arch}, not ${arch}` };
  // Collect into a scratch list first: a missing library leaves the initramfs without Wi-Fi, whole.
  const staged: { p: string; d: Buffer; mode?: number }[] = [];
  const stagedEntries: CpioEntry[] = [];
  const stagedLibs = new Set(copiedLibs);
  try {
    if (!elf.isStatic) await copySharedLibs(fs, elf, (p, d, mode) => staged.push({ p, d, ...(mode !== undefined ? { mode } : {}) }), stagedEntries, stagedLibs, 'wpa_supplicant');
  } catch (err) {
    return { included: false, reason: (err as Error).message };
  }
  const firmware: string[] = [];
  let bytes = 0;
  for (const dir of FIRMWARE_DIRS) {
    if (!(await fs.lookup(dir))) continue;
    for (const name of await fs.readdir(dir)) {
      if (!WIFI_FIRMWARE.test(name)) continue;
      let data: Buffer;
      try {
        data = await fs.readFileAll(`${dir}/${name}`, MAX_WIFI_FIRMWARE_BYTES); // symlinks (to ../cypress/…) followed
      } catch {
        continue; // a dangling link or a directory
      }
      if ((bytes += data.length) > MAX_WIFI_FIRMWARE_BYTES) break;
      staged.push({ p: `lib/firmware/brcm/${name}`, d: data });
      firmware.push(name);
    }
    break;
  }
  for (const f of ['/lib/firmware/regulatory.db', '/lib/firmware/regulatory.db.p7s']) {
    if (await fs.lookup(f)) staged.push({ p: f.slice(1), d: await fs.readFileAll(f, 1024 * 1024) });
  }
  addFile('usr/sbin/wpa_supplicant', bin, 0o755);
  for (const f of staged) addFile(f.p, f.d, f.mode);
  entries.push(...stagedEntries);
  for (const l of stagedLibs) copiedLibs.add(l);
  return { included: true, wpaSupplicant: path, modules: [], firmware };
}

/** The interpreter and DT_NEEDED libraries, found in the image's library directories. */
async function copySharedLibs(fs: Ext4, elf: ElfInfo, addFile: (p: string, d: Buffer, mode?: number) => void, entries: CpioEntry[], done: Set<string>, program: string): Promise<string[]> {
  const triplet = TRIPLETS[elf.arch] ?? '';
  const dirs = [`/lib/${triplet}`, `/usr/lib/${triplet}`, '/lib', '/usr/lib', '/lib64', '/usr/lib64'];
  const copied: string[] = [];
  // `done` holds the interpreter and library names already in the initramfs (another program's).
  const seen = done;
  if (elf.interpreter && !seen.has(elf.interpreter)) {
    seen.add(elf.interpreter);
    const data = await fs.readFileAll(elf.interpreter, 32 * 1024 * 1024);
    addFile(elf.interpreter.replace(/^\//, ''), data, 0o755);
    copied.push(elf.interpreter);
  }
  const queue = [...elf.needed];
  while (queue.length) {
    const name = queue.shift()!;
    if (seen.has(name)) continue;
    seen.add(name);
    let found = false;
    for (const d of dirs) {
      const p = posix.join(d, name);
      if (!(await fs.lookup(p))) continue;
      const data = await fs.readFileAll(p, 32 * 1024 * 1024);
      // Both the multiarch directory and /lib are on glibc's default search path.
      addFile(posix.join('lib', triplet, name), data, 0o755);
      if (triplet) entries.push({ path: posix.join('lib', name), type: 'symlink', mode: 0o777, linkTarget: posix.join(triplet, name) });
      copied.push(p);
      queue.push(...readElf(data).needed);
      found = true;
      break;
    }
    if (!found) throw new DroverError('DROVER_IMAGE_NO_KERNEL', `${program} in the image needs ${name}, which is not in the image's library directories.`);
  }
  return copied;
}
