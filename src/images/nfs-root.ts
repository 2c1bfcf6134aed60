// NFS root boot mode (`nfs`): what PiServer, feeder and bakery do, for Drover's stored images.
//   EXPORT_ROOT/
//     images/<sha256>/root          the image's squashfs unpacked once; exported read-only
//     images/<sha256>/unpack.json   how it was unpacked (tool, as root or not, what was lost)
//     devices/<deviceId>/layer.ext4 the device's writable layer: an ext4 filesystem in a sparse
//                                   file; devices/<id> is exported read-write to the device
//     devices/<deviceId>/image      the image sha256 the layer was made on (deviceLayer)
//     devices-old/<id>-<sha>-<ms>.ext4  layers set aside when a device moved to another image
// Every export is restricted to the one device address that uses it: never a wildcard, subnet
// or netgroup. The Pi's initramfs (data/initramfs/nfs-root.sh) mounts the image root ro and
// its layer dir rw over NFSv4 (TCP), loop-mounts layer.ext4 from it and combines the image
// (lower) with upper/ in that ext4 using overlayfs, as ramroot does with squashfs + tmpfs.
//
// Pure text rendering (renderExports, renderGaneshaConfig, nfsCmdlineArgs) plus three small
// filesystem steps (unpackRootOnce, deviceLayer, writeExportsFile), all atomic: a crash leaves
// either the old state or the new one, never half an image or half an exports file.
import { findOnPathSync } from '../agent/which.js';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { DroverError } from '../domain/errors.js';

// ---------------------------------------------------------------------------------------------
// Validation

const SHA256 = /^[0-9a-f]{64}$/;
/** Drover ids (dev_…) and anything else safe as one path segment, in exports and on a cmdline. */
const DEVICE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/**
 * Export paths: absolute, normalized, and only characters that need no quoting anywhere they go:
 * /etc/exports (space and '#' would split or end a line), ganesha's quoted strings ('"', '\'),
 * the kernel command line (space) and nfsroot=SERVER:PATH,OPTIONS (',' starts the options).
 */
const SAFE_PATH = /^\/[A-Za-z0-9._+@/-]*$/;

export function isIPv4(ip: string): boolean {
  const parts = ip.split('.');
  // No leading zeros: inet_aton() would read "010" as octal 8.
  return parts.length === 4 && parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
}

/** One host address a device (or the server) can have: dotted quad, not 0/8, multicast or reserved. */
export function assertHostIPv4(ip: string, what: string): void {
  if (typeof ip !== 'string' || !isIPv4(ip)) {
    throw new DroverError('DROVER_VALIDATION', `${what} "${clip(ip)}" is not an IPv4 address in dotted-quad form (e.g. 192.168.1.23); wildcards, subnets, host names and IPv6 are not accepted.`);
  }
  const first = Number(ip.split('.')[0]);
  if (first === 0 || first >= 224) throw new DroverError('DROVER_VALIDATION', `${what} ${ip} is not a unicast host address.`);
}

export function assertSafePath(p: string, what: string): void {
  if (typeof p !== 'string' || !SAFE_PATH.test(p) || p.length > 1024) {
    throw new DroverError('DROVER_VALIDATION', `${what} "${clip(p)}" must be an absolute path of letters, digits and . _ + @ / - only (no spaces, newlines, quotes, commas or '#').`);
  }
  if (p !== '/' && (p.endsWith('/') || posix.normalize(p) !== p)) {
    throw new DroverError('DROVER_VALIDATION', `${what} "${clip(p)}" must be normalized (no '//', '.', '..' or trailing '/').`);
  }
}

function assertSha(sha: string): void {
  if (typeof sha !== 'string' || !SHA256.test(sha)) throw new DroverError('DROVER_VALIDATION', `"${clip(sha)}" is not an image sha256 (64 lowercase hex digits).`);
}

function assertDeviceId(id: string): void {
  if (typeof id !== 'string' || !DEVICE_ID.test(id)) {
    throw new DroverError('DROVER_VALIDATION', `Device id "${clip(id)}" is not usable as a directory name (letters, digits, . _ - ; at most 128).`);
  }
}

function assertExportRoot(exportRoot: string): void {
  assertSafePath(exportRoot, 'The NFS export root');
  if (exportRoot === '/') throw new DroverError('DROVER_VALIDATION', 'The NFS export root cannot be / itself.');
}

const clip = (s: unknown) => String(s).slice(0, 80).replace(/[\u0000-\u001f\u007f]/g, '?');

// ---------------------------------------------------------------------------------------------
// Paths

export function imageRootPath(exportRoot: string, imageSha256: string): string {
  assertExportRoot(exportRoot);
  assertSha(imageSha256);
  return posix.join(exportRoot, 'images', imageSha256, 'root');
}

export function deviceLayerPath(exportRoot: string, deviceId: string): string {
  assertExportRoot(exportRoot);
  assertDeviceId(deviceId);
  return posix.join(exportRoot, 'devices', deviceId);
}

// ---------------------------------------------------------------------------------------------
// Unpacking an image root (once)

export type UnpackTool = 'unsquashfs' | 'rdsquashfs';

export interface UnpackOptions {
  /**
   * Default: unsquashfs (squashfs-tools) when installed, else rdsquashfs (squashfs-tools-ng).
   * unsquashfs is preferred: rdsquashfs 1.2 applies xattrs before it chowns, and chown(2) drops
   * security.capability, so file capabilities (ping, …) are lost with it even as root.
   */
  tool?: UnpackTool;
  signal?: AbortSignal;
}

export interface UnpackInfo {
  format: 'drover-nfs-root';
  sha256: string;
  tool: UnpackTool;
  asRoot: boolean;
  /** False when the tool reported files it could not restore exactly (only possible without root). */
  complete: boolean;
  /** What the unpacked tree does not hold compared with the squashfs. */
  lost: string[];
  warnings: string[];
  ms: number;
  unpackedAt: string;
}

const inFlight = new Map<string, Promise<string>>();

/** The tool's path on PATH or in the sbin directories (mkfs.ext4 is in /usr/sbin). */
export function findTool(cmd: string): string | null {
  return findOnPathSync(cmd, ['/usr/sbin', '/sbin']);
}
const hasTool = (cmd: string) => findTool(cmd) !== null;

/**
 * Unpacks the image's squashfs into EXPORT_ROOT/images/<sha256>/root once and returns that
 * path; later calls (and concurrent ones in this process) return at once. The tree is built
 * in a temporary directory beside it and renamed into place, so a crash never leaves a partial
 * root behind. As root every owner, mode (setuid too), device node, symlink, hard link, time
 * and xattr (security.capability included, with unsquashfs) is kept; as another user the tree
 * belongs to that user, device nodes and security.* and trusted.* xattrs are skipped, and
 * unpack.json says so (such a tree is not a bootable root: run the unpack as root).
 */
export function unpackRootOnce(image: { sha256: string; rootfsPath: string }, exportRoot: string, opts: UnpackOptions = {}): Promise<string> {
  const root = imageRootPath(exportRoot, image.sha256);
  const running = inFlight.get(root);
  if (running) return running;
  const p = unpack(image, root, opts).finally(() => inFlight.delete(root));
  inFlight.set(root, p);
  return p;
}

async function unpack(image: { sha256: string; rootfsPath: string }, root: string, opts: UnpackOptions): Promise<string> {
  if (await isDir(root)) return root;
  const imageDir = dirname(root);
  await mkdir(imageDir, { recursive: true, mode: 0o755 });
  await removeStaleTemps(imageDir);
  const tool = opts.tool ?? (hasTool('unsquashfs') ? 'unsquashfs' : 'rdsquashfs');
  if (!hasTool(tool)) {
    throw new DroverError('DROVER_INTERNAL', `${tool} is not installed; NFS root needs it to unpack images (apt-get install ${tool === 'unsquashfs' ? 'squashfs-tools' : 'squashfs-tools-ng'}).`);
  }
  await stat(image.rootfsPath); // a clear ENOENT before any work
  const asRoot = process.getuid?.() === 0;
  const tmp = join(imageDir, `.unpack-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(tmp, { mode: 0o700 });
  const started = Date.now();
  try {
    const target = join(tmp, 'root');
    const { args, lost } = unpackArgs(tool, asRoot, image.rootfsPath, target);
    const r = await run(tool, args, opts.signal);
    // unsquashfs: 0 ok, 2 = "non-fatal errors" (what a non-root user cannot restore), 1 fatal.
    // As root -strict-errors makes every error fatal, so 2 is accepted only without root.
    const complete = r.code === 0;
    if (!(complete || (tool === 'unsquashfs' && !asRoot && r.code === 2)) || !(await isDir(target))) {
      throw new DroverError('DROVER_INTERNAL', `${tool} could not unpack ${image.rootfsPath} (exit ${r.code}): ${r.stderr.trim().slice(-600) || 'no message'}`);
    }
    const info: UnpackInfo = {
      format: 'drover-nfs-root',
      sha256: image.sha256,
      tool,
      asRoot,
      complete,
      lost,
      warnings: r.stderr.split('\n').map((l) => l.trim()).filter(Boolean).slice(0, 20),
      ms: Date.now() - started,
      unpackedAt: new Date().toISOString(),
    };
    await writeFile(join(tmp, 'unpack.json'), `${JSON.stringify(info, null, 2)}\n`);
    try {
      await rename(target, root);
    } catch (e) {
      // Another process finished first: its tree is as good as ours.
      if (isCode(e, 'ENOTEMPTY', 'EEXIST') && (await isDir(root))) return root;
      throw e;
    }
    await rename(join(tmp, 'unpack.json'), join(imageDir, 'unpack.json'));
    return root;
  } finally {
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
  }
}

function unpackArgs(tool: UnpackTool, asRoot: boolean, squashfs: string, target: string): { args: string[]; lost: string[] } {
  if (tool === 'unsquashfs') {
    // -d creates the target; xattrs are extracted by default, all of them as root.
    const args = ['-no-progress', '-quiet', '-dest', target];
    if (asRoot) return { args: [...args, '-strict-errors', squashfs], lost: [] };
    return {
      args: [...args, '-user-xattrs', squashfs],
      lost: ['ownership (every file belongs to the unpacking user)', 'setuid/setgid bits of files owned by others', 'device nodes', 'security.* and trusted.* xattrs'],
    };
  }
  // rdsquashfs: --chmod/--chown/--set-times/--set-xattr restore what the image stores.
  const args = ['--quiet', '--unpack-path', '/', '--unpack-root', target, '--chmod', '--set-times'];
  if (asRoot) {
    return {
      args: [...args, '--chown', '--set-xattr', squashfs],
      lost: ['security.capability xattrs (rdsquashfs sets xattrs before chown, and chown clears file capabilities; install squashfs-tools for unsquashfs)'],
    };
  }
  return {
    args: [...args, '--no-dev', squashfs],
    lost: ['ownership (every file belongs to the unpacking user)', 'device nodes', 'all xattrs'],
  };
}

/** Temp dirs of unpacks whose process is gone (a crash or a kill mid-unpack). */
async function removeStaleTemps(imageDir: string): Promise<void> {
  for (const name of await readdir(imageDir).catch(() => [] as string[])) {
    const m = /^\.unpack-(\d+)-[0-9a-f]+$/.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid !== process.pid && pidAlive(pid)) continue;
    if (pid === process.pid && [...inFlight.keys()].some((k) => dirname(k) === imageDir)) continue;
    await rm(join(imageDir, name), { recursive: true, force: true }).catch(() => {});
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return isCode(e, 'EPERM');
  }
}

function run(cmd: string, args: string[], signal?: AbortSignal): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], ...(signal ? { signal } : {}) });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      if (stderr.length < 64 * 1024) stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code, sig) => resolve({ code: code ?? (sig ? 128 : 1), stderr }));
  });
}

// ---------------------------------------------------------------------------------------------
// A device's writable layer

export const LAYER_FILE = 'layer.ext4';
const GiB = 1024 * 1024 * 1024;

export interface DeviceLayerOptions {
  /**
   * The image the device boots. The layer is stamped with it; when the device has moved to
   * another image the old layer is set aside in devices-old/ (not exported) and a fresh one is
   * made, since files copied up from one image would shadow the next image's.
   */
  imageSha256?: string;
  /** Size of a new layer filesystem (sparse: it takes only what the device writes). Default 8 GiB. */
  sizeBytes?: number;
}

/**
 * Creates EXPORT_ROOT/devices/<deviceId>/ (exported rw to the device) holding layer.ext4, the
 * device's writable layer, and returns the directory.
 *
 * Why a filesystem in a file and not upper/ and work/ directories on the export: overlayfs
 * refuses a remote upper dir that lacks RENAME_WHITEOUT, d_type or xattrs ("upper fs missing
 * required features"), and NFS has no RENAME_WHITEOUT at all (nor trusted.* xattrs): seen with
 * Debian's 6.1 arm64 kernel against NFSv4.2. The Pi loop-mounts layer.ext4 from the NFS mount
 * and puts upper/ and work/ inside it, which overlayfs accepts, with whiteouts, opaque dirs,
 * owners and device nodes kept across reboots. The server needs mkfs.ext4 (e2fsprogs), not
 * root: the filesystem's root directory is made root-owned with -E root_owner=0:0.
 */
export async function deviceLayer(exportRoot: string, deviceId: string, opts: DeviceLayerOptions = {}): Promise<string> {
  const dir = deviceLayerPath(exportRoot, deviceId);
  const { imageSha256, sizeBytes = 8 * GiB } = opts;
  if (imageSha256 !== undefined) assertSha(imageSha256);
  if (!(Number.isSafeInteger(sizeBytes) && sizeBytes >= 64 * 1024 * 1024)) throw new DroverError('DROVER_VALIDATION', `A device layer of ${sizeBytes} bytes is too small (at least 64 MiB).`);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const layer = join(dir, LAYER_FILE);
  const stampPath = join(dir, 'image');
  let was = '';
  if (imageSha256 !== undefined) {
    was = (await readFile(stampPath, 'utf8').catch(() => '')).trim();
    if (was && was !== imageSha256 && existsSync(layer)) {
      const old = join(exportRoot, 'devices-old');
      await mkdir(old, { recursive: true, mode: 0o700 });
      await rename(layer, join(old, `${deviceId}-${SHA256.test(was) ? was.slice(0, 12) : 'unknown'}-${Date.now()}.ext4`));
    }
  }
  if (!existsSync(layer)) await makeLayerFile(layer, sizeBytes);
  // Every NFS boot passes here: rewrite (and fsync) the stamp only when it changes.
  if (imageSha256 !== undefined && was !== imageSha256) await writeExportsFile(stampPath, `${imageSha256}\n`);
  return dir;
}

/** mkfs.ext4 on a sparse temp file, renamed into place: a layer file is whole or absent. */
async function makeLayerFile(layer: string, sizeBytes: number): Promise<void> {
  const mkfs = ['mkfs.ext4', 'mke2fs'].map((c) => findTool(c)).find((p) => p !== null);
  if (!mkfs) throw new DroverError('DROVER_INTERNAL', 'mkfs.ext4 is not installed; NFS root needs it for device layers (apt-get install e2fsprogs).');
  const tmp = join(dirname(layer), `.${LAYER_FILE}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.truncate(sizeBytes);
    } finally {
      await fh.close();
    }
    // orphan_file (e2fsprogs >= 1.47 default) needs Linux >= 5.15; leave it off for older Pi
    // kernels. root_owner: the layer's root (and so the upper dir's parent) belongs to root.
    const base = ['-q', '-F', '-t', 'ext4', '-L', 'drover-layer', '-m', '0', '-E', 'root_owner=0:0'];
    let r = await run(mkfs, [...base, '-O', '^orphan_file', tmp]);
    if (r.code !== 0 && /orphan_file/.test(r.stderr)) r = await run(mkfs, [...base, tmp]); // e2fsprogs < 1.47
    if (r.code !== 0) throw new DroverError('DROVER_INTERNAL', `mkfs.ext4 failed on ${tmp} (exit ${r.code}): ${r.stderr.trim().slice(-400)}`);
    await chmod(tmp, 0o600);
    await rename(tmp, layer);
  } finally {
    await rm(tmp, { force: true }).catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------
// Exports

export interface NfsExportEntry {
  deviceId: string;
  ip: string;
  imageSha256: string;
}

interface PlannedExport {
  path: string;
  access: 'ro' | 'rw';
  clients: string[];
}

const ipKey = (ip: string) => ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);

/** Image roots (ro, every device on that image) and device layers (rw, that device only). */
function planExports(entries: readonly NfsExportEntry[], exportRoot: string): PlannedExport[] {
  assertExportRoot(exportRoot);
  const byDevice = new Map<string, NfsExportEntry>();
  const byIp = new Map<string, string>();
  for (const e of entries) {
    assertDeviceId(e.deviceId);
    assertHostIPv4(e.ip, `Device ${e.deviceId}'s address`);
    assertSha(e.imageSha256);
    const seen = byDevice.get(e.deviceId);
    if (seen && (seen.ip !== e.ip || seen.imageSha256 !== e.imageSha256)) {
      throw new DroverError('DROVER_VALIDATION', `Device ${e.deviceId} is listed twice with different addresses or images.`);
    }
    const owner = byIp.get(e.ip);
    if (owner && owner !== e.deviceId) {
      throw new DroverError('DROVER_VALIDATION', `Devices ${owner} and ${e.deviceId} both have address ${e.ip}; each device needs its own address (a DHCP reservation) to get its own writable layer.`);
    }
    byDevice.set(e.deviceId, e);
    byIp.set(e.ip, e.deviceId);
  }
  const images = new Map<string, Set<string>>();
  const out: PlannedExport[] = [];
  for (const e of byDevice.values()) {
    const root = imageRootPath(exportRoot, e.imageSha256);
    images.set(root, (images.get(root) ?? new Set()).add(e.ip));
    out.push({ path: deviceLayerPath(exportRoot, e.deviceId), access: 'rw', clients: [e.ip] });
  }
  for (const [path, ips] of images) out.push({ path, access: 'ro', clients: [...ips].sort((a, b) => ipKey(a) - ipKey(b)) });
  for (const x of out) assertSafePath(x.path, 'An export path');
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** A stable, per-path fsid for the kernel server (a UUID form of sha256(path)). */
export function exportFsid(path: string): string {
  const h = createHash('sha256').update(`drover-nfs-fsid:${path}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/**
 * /etc/exports.d/drover.exports for the kernel NFS server (nfs-kernel-server). Per path one
 * line, each client an exact address with its own options:
 *   ro / rw             the image is shared and immutable; the layer is the device's own.
 *   sync                replies only after data is on disk (the default, spelled out: a root
 *                       filesystem must not lose acknowledged writes when the server crashes).
 *   no_subtree_check    subtree checking breaks on renames and buys nothing for directories
 *                       exported to exactly the hosts that own them.
 *   no_root_squash      required for a root filesystem, ro included: with root squashed, the
 *                       Pi's root is "nobody" and cannot read 0600/0700 root files (shadow,
 *                       ssh host keys, sudoers.d, /root) nor, on the layer, create root-owned
 *                       files, device-node whiteouts or chown anything.
 *   fsid=<uuid>         stable file handles across server reboots even when the export root
 *                       is on a filesystem without a UUID (tmpfs, overlay, some btrfs setups).
 * `secure` (the default) stays: the Linux client uses a privileged source port.
 */
export function renderExports(entries: readonly NfsExportEntry[], exportRoot: string): string {
  const lines = [
    '# Generated by Drover (NFS root boot mode): do not edit, it is rewritten when devices change.',
    '# Each OS image root is exported read-only and each device layer read-write, only to the',
    '# addresses of the devices that boot from them. Apply with: exportfs -ra',
  ];
  for (const x of planExports(entries, exportRoot)) {
    const opts = `${x.access},sync,no_subtree_check,no_root_squash,fsid=${exportFsid(x.path)}`;
    lines.push(`${x.path} ${x.clients.map((ip) => `${ip}(${opts})`).join(' ')}`);
  }
  return `${lines.join('\n')}\n`;
}

export interface GaneshaOptions {
  /** NFS_Port (default 2049). Clients on another port need `port=N` in their mount options. */
  port?: number;
  /** Bind_addr: the server address to listen on (default all). */
  bindAddr?: string;
  /** Also serve NFSv3 (needs rpcbind and, for locks, rpc.statd); default NFSv4 only. */
  nfsv3?: boolean;
  /** NFSv4 recovery state directory (default /var/lib/nfs/ganesha). */
  recoveryRoot?: string;
  /**
   * Skip the NFSv4 grace period after a (re)start. Clients then cannot reclaim their opens and
   * locks; tests use it to be served at once. Default false (Grace_Period below applies).
   */
  graceless?: boolean;
  /** Seconds (default 90, ganesha's range 0..180). */
  gracePeriod?: number;
}

/**
 * Export_Id per export path: 1024 + sha256(path) mod 64512, probing upwards in path order on a
 * collision, so an export keeps its id (and the clients' file handles stay valid) when other
 * devices come and go, except in the rare case of a collision with a new path that sorts first.
 */
export function ganeshaExportIds(paths: readonly string[]): Map<string, number> {
  const ids = new Map<string, number>();
  const used = new Set<number>();
  for (const path of [...paths].sort()) {
    let id = 1024 + (createHash('sha256').update(path).digest().readUInt32BE(0) % 64512);
    while (used.has(id)) id = id === 65535 ? 1024 : id + 1;
    used.add(id);
    ids.set(path, id);
  }
  return ids;
}

/**
 * The same exports for nfs-ganesha (FSAL_VFS). Ganesha must run as root: FSAL_VFS opens files by
 * handle (CAP_DAC_READ_SEARCH) and switches to each caller's uid; run as another user it starts
 * but answers NFS4ERR_PERM, and aborts on the first write.
 * Pseudo = Path, so the same SERVER:/path works against both servers.
 */
export function renderGaneshaConfig(entries: readonly NfsExportEntry[], exportRoot: string, opts: GaneshaOptions = {}): string {
  const plan = planExports(entries, exportRoot);
  if (opts.port !== undefined && !(Number.isInteger(opts.port) && opts.port > 0 && opts.port < 65536)) {
    throw new DroverError('DROVER_VALIDATION', `NFS port ${opts.port} is not a TCP port.`);
  }
  if (opts.bindAddr !== undefined) assertHostIPv4(opts.bindAddr, 'The NFS server address');
  if (opts.recoveryRoot !== undefined) assertSafePath(opts.recoveryRoot, 'The ganesha recovery directory');
  const grace = opts.gracePeriod ?? 90;
  if (!(Number.isInteger(grace) && grace >= 0 && grace <= 180)) throw new DroverError('DROVER_VALIDATION', `Grace period ${grace} must be 0..180 seconds.`);
  const protocols = opts.nfsv3 ? '3, 4' : '4';
  const ids = ganeshaExportIds(plan.map((x) => x.path));
  const out = [
    '# Generated by Drover (NFS root boot mode): do not edit, it is rewritten when devices change.',
    '# Each OS image root is exported read-only and each device layer read-write, only to the',
    '# addresses of the devices that boot from them.',
    'NFS_CORE_PARAM {',
    `    Protocols = ${protocols};`,
    `    NFS_Port = ${opts.port ?? 2049};`,
    ...(opts.bindAddr ? [`    Bind_addr = ${opts.bindAddr};`] : []),
    '    # TCP only: no UDP listeners and no UDP registrations with rpcbind.',
    '    Enable_UDP = false;',
    '    # NFSv4 has locking in the protocol; NLM would need rpc.statd.',
    '    Enable_NLM = false;',
    '    Enable_RQUOTA = false;',
    ...(opts.nfsv3 ? ['    # v3 clients mount the same path as v4 ones.', '    mount_path_pseudo = true;'] : []),
    '}',
    'NFS_KRB5 {',
    '    Active_krb5 = false;',
    '}',
    'NFSV4 {',
    '    # Owners as bare uid/gid numbers, as the kernel server does for sec=sys: a Pi without an',
    '    # idmapper (its initramfs, early boot) would otherwise see every file owned by nobody.',
    '    Only_Numeric_Owners = true;',
    `    Graceless = ${opts.graceless ? 'true' : 'false'};`,
    `    Grace_Period = ${grace};`,
    ...(opts.recoveryRoot ? ['    RecoveryBackend = fs;', `    RecoveryRoot = "${opts.recoveryRoot}";`] : []),
    '}',
    'EXPORT_DEFAULTS {',
    '    Access_Type = None;',
    '    Squash = Root_Squash;',
    '    SecType = sys;',
    '    Transports = TCP;',
    `    Protocols = ${protocols};`,
    '}',
  ];
  for (const x of plan) {
    out.push(
      'EXPORT {',
      `    Export_Id = ${ids.get(x.path)};`,
      `    Path = "${x.path}";`,
      `    Pseudo = "${x.path}";`,
      `    Protocols = ${protocols};`,
      '    Transports = TCP;',
      '    SecType = sys;',
      '    Access_Type = None;',
      '    Squash = Root_Squash;',
      '    CLIENT {',
      `        Clients = ${x.clients.join(', ')};`,
      `        Access_Type = ${x.access === 'ro' ? 'RO' : 'RW'};`,
      '        Squash = No_Root_Squash;',
      `        Protocols = ${protocols};`,
      '    }',
      '    FSAL {',
      '        Name = VFS;',
      '    }',
      '}',
    );
  }
  return `${out.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// Kernel command line

/**
 * Arguments for a device booting in `nfs` mode:
 *   root=/dev/nfs nfsroot=SERVER:IMAGE_ROOT,vers=4,tcp ro ip=dhcp
 *     the conventional NFS-root arguments. Drover's initramfs always runs /init, so the kernel
 *     itself never mounts them: its /init reads nfsroot= and mounts it (busybox mount, text
 *     options, no mount.nfs helper needed). They matter only to a kernel booted without an
 *     initramfs, which needs NFS_FS=y, ROOT_NFS=y and IP_PNP(_DHCP)=y built in (Raspberry Pi
 *     OS kernels have them; Debian's arm64 kernel has NFS as modules and no IP_PNP, so there
 *     they are inert). With IP_PNP built in, ip=dhcp makes the kernel take a DHCP lease before
 *     /init (the initramfs' udhcpc then asks again and gets the same address).
 *   drover.nfs.rw=SERVER:LAYER
 *     the device's layer directory; the initramfs mounts it rw, loop-mounts layer.ext4 from it
 *     and uses upper/ and work/ in that ext4 as overlayfs' upper and work dirs over the image
 *     root (data/initramfs/nfs-root.sh). Without layer.ext4 it falls back to a tmpfs upper.
 */
export function nfsCmdlineArgs(serverIp: string, exportRoot: string, imageSha256: string, deviceId: string): string[] {
  assertHostIPv4(serverIp, 'The NFS server address');
  const root = imageRootPath(exportRoot, imageSha256);
  const layer = deviceLayerPath(exportRoot, deviceId);
  return ['root=/dev/nfs', `nfsroot=${serverIp}:${root},vers=4,tcp`, 'ro', 'ip=dhcp', `drover.nfs.rw=${serverIp}:${layer}`];
}

// ---------------------------------------------------------------------------------------------
// Files

/**
 * Writes `text` to `path` atomically: a temp file in the same directory, fsync, rename, and an
 * fsync of the directory, so readers (exportfs, ganesha) see the old file or the new one.
 */
export async function writeExportsFile(path: string, text: string): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const mode = await stat(path).then((s) => s.mode & 0o7777, () => 0o644);
  const tmp = join(dir, `.${posix.basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  try {
    await chmod(tmp, mode);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  const d = await open(dir, 'r').catch(() => null);
  if (d) await d.sync().catch(() => {}).finally(() => d.close());
}

async function isDir(p: string): Promise<boolean> {
  return stat(p).then((s) => s.isDirectory(), () => false);
}

function isCode(e: unknown, ...codes: string[]): boolean {
  return typeof e === 'object' && e !== null && codes.includes(String((e as { code?: unknown }).code));
}
