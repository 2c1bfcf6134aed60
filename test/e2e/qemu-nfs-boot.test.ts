// Boot mode nfs end to end with a real Linux kernel: QEMU (aarch64 virt) boots the ingested
// fixture's kernel with Drover's initramfs and the cmdline Drover rendered (nfsroot=…) for a
// device in boot mode nfs. Its config request makes `drover serve` unpack the image root once,
// make the device's ext4 layer, write nfs-ganesha's exports naming only the address the device
// asked from, and reload ganesha (SIGHUP); the initramfs mounts the root over NFSv4 with the
// layer as overlayfs' upper and switch_roots. The second boot sees what the first one wrote.
// QEMU user networking maps the guest's 10.0.2.2 to this host's loopback, where the controller
// and ganesha (bound to 127.0.0.1 only) listen; the guest reaches nothing else.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { renderGaneshaConfig } from '../../src/images/nfs-root.js';
import { buildPiImage, imagePrereq } from '../helpers/pi-image.js';
import { freePort } from '../helpers/postgres.js';
import { prereq, which } from '../helpers/prereq.js';
import { netbootFiles as netbootFilesOf, qemuAarch64 as qemu, qemuBoot } from '../helpers/qemu.js';
import { drover, spawnServer, type ServerProcess } from '../helpers/server.js';

const SBIN = ['/usr/sbin', '/sbin'];
const ganesha = which('ganesha.nfsd', SBIN);
const fsalVfs = ['/usr/lib/x86_64-linux-gnu/ganesha', '/usr/lib/aarch64-linux-gnu/ganesha', '/usr/lib/ganesha', '/usr/lib64/ganesha'].some((d) => existsSync(join(d, 'libfsalvfs.so')));
const isRoot = process.getuid?.() === 0;
const SERIAL = '10000002';
const HOSTNAME = 'nfs-node-1';
const BOOT_TIMEOUT_MS = 120_000;

/** Whether something already listens on 127.0.0.1:2049 (then this test cannot run ganesha). */
const portTaken = (port: number) => new Promise<boolean>((resolve) => {
  const s = createConnection({ host: '127.0.0.1', port }, () => { s.destroy(); resolve(true); });
  s.on('error', () => resolve(false));
});

const ok = prereq(
  'qemu-system-aarch64, ganesha.nfsd with FSAL_VFS, unsquashfs, mkfs.ext4, root',
  qemu !== null && ganesha !== null && fsalVfs && which('unsquashfs', SBIN) !== null && which('mkfs.ext4', SBIN) !== null && isRoot,
  'qemu-system-arm nfs-ganesha nfs-ganesha-vfs squashfs-tools e2fsprogs (and run as root: ganesha serves files by handle)',
);

describe('QEMU: a real kernel boots an image over NFS (boot mode nfs, nfs-ganesha)', ok, () => {
  const skip = imagePrereq();
  const dir = mkdtempSync(join(tmpdir(), 'drover-qemu-nfs-'));
  const data = join(dir, 'data');
  const exportRoot = join(dir, 'export');
  const ganeshaConf = join(dir, 'ganesha.conf');
  const ganeshaPid = join(dir, 'ganesha.pid');
  let server: ServerProcess | undefined;
  let g: ChildProcess | undefined;
  let env: NodeJS.ProcessEnv = {};
  let deviceId = '';
  const children = new Set<ChildProcess>();

  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    if (g && g.exitCode === null) {
      const gone = new Promise((r) => g!.once('exit', r));
      g.kill('SIGTERM');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))]);
      if (g.exitCode === null) g.kill('SIGKILL');
    }
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const api = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(`${server!.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${env.DROVER_TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await r.text();
    assert.ok(r.ok, `${method} ${path}: ${r.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  };

  const boot = (name: string, o: { kernel: string; initrd: string; cmdline: string }) => qemuBoot({ name, ...o, dir, timeoutMs: BOOT_TIMEOUT_MS, children });
  const netbootFiles = async (tag: string) => {
    const { config: _config, ...files } = await netbootFilesOf(server!.url, SERIAL, dir, tag);
    return files;
  };

  before(async () => {
    if (skip.skip) return;
    assert.ok(!(await portTaken(2049)), 'something already listens on 127.0.0.1:2049; this test runs nfs-ganesha there');
    // ganesha starts with no exports, bound to loopback, without a grace period; Drover rewrites
    // the exports and reloads it when the device asks for its config.
    mkdirSync(exportRoot, { recursive: true });
    writeFileSync(ganeshaConf, renderGaneshaConfig([], exportRoot, { graceless: true, bindAddr: '127.0.0.1', recoveryRoot: join(dir, 'recovery') }));
    g = spawn(ganesha!, ['-F', '-f', ganeshaConf, '-L', join(dir, 'ganesha.log'), '-p', ganeshaPid, '-N', 'NIV_EVENT'], { stdio: 'ignore' });
    for (let t = 0; t < 100 && !(await portTaken(2049)); t++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(await portTaken(2049), `ganesha did not start: ${existsSync(join(dir, 'ganesha.log')) ? readFileSync(join(dir, 'ganesha.log'), 'utf8').slice(-1500) : ''}`);

    const port = await freePort();
    server = await spawnServer({
      dataDir: data,
      port,
      extraArgs: [
        '--public-url', `http://10.0.2.2:${port}`, '--boot-retry', '5',
        '--nfs-export-root', exportRoot, '--nfs-exports-file', join(dir, 'drover.exports'), '--nfs-ganesha-config', ganeshaConf,
        '--nfs-reload-command', `kill -HUP "$(cat ${ganeshaPid})"`,
      ],
    });
    env = { DROVER_SERVER: server.url, DROVER_TOKEN: server.adminToken() };
    const a = buildPiImage(join(dir, 'a.img'), 'a');
    const add = drover(['--json', 'image', 'add', a, '--name', 'fixture:a', '--default', '--on-server'], env);
    assert.equal(add.code, 0, add.stderr);
    const dev = drover(['--json', 'node', 'add', SERIAL, '--hostname', HOSTNAME], env);
    assert.equal(dev.code, 0, dev.stderr);
    deviceId = dev.json.id;
    await api('PATCH', `/api/v1/devices/${deviceId}`, { bootMode: 'nfs' });
  });

  it('1: the config request exports the image root and the device layer to the device alone; the kernel mounts them over NFS and switches root', { skip: skip.skip }, async () => {
    const files = await netbootFiles('1');
    assert.match(files.cmdline, new RegExp(`nfsroot=10\\.0\\.2\\.2:${exportRoot}/images/[0-9a-f]{64}/root,vers=4,tcp`), 'cmdline.txt carries nfsroot=');
    assert.match(files.cmdline, new RegExp(`drover\\.nfs\\.rw=10\\.0\\.2\\.2:${exportRoot}/devices/${deviceId}`));
    assert.match(files.cmdline, /drover\.boot=nfs/);
    const out = await boot('boot1', files);
    assert.match(out, /phase rootfs-nfs/);
    assert.match(out, /root: 10\.0\.2\.2:\S+\/images\/[0-9a-f]{64}\/root \(ro, NFSv4\.\d\) \+ 10\.0\.2\.2:\S+ \(persistent layer\) as overlayfs/);
    assert.doesNotMatch(out, /phase rootfs-download/, 'nothing is downloaded in nfs mode');
    assert.match(out, /^DROVER-FIXTURE: init variant=a\r?$/m, "switch_root into the image's init");
    assert.match(out, new RegExp(`^DROVER-FIXTURE: hostname=${HOSTNAME}\\r?$`, 'm'), 'the overlay applied over the NFS root');
    assert.match(out, /^DROVER-FIXTURE: root=overlay \/ overlay .*lowerdir=\/run\/drover\/lower/m);
    assert.match(out, /^DROVER-FIXTURE: boots=1\r?$/m);

    // What the controller wrote: exports naming only the address the device came from.
    const conf = readFileSync(ganeshaConf, 'utf8');
    assert.match(conf, /Clients = 127\.0\.0\.1;/);
    assert.doesNotMatch(conf, /Clients = (\*|[0-9.]+\/\d+)/, 'no wildcard or subnet');
    const exportsText = readFileSync(join(dir, 'drover.exports'), 'utf8');
    const lines = exportsText.split('\n').filter((l) => l && !l.startsWith('#'));
    assert.equal(lines.length, 2, exportsText);
    assert.ok(lines.some((l) => /\/images\/[0-9a-f]{64}\/root 127\.0\.0\.1\(ro,/.test(l)), exportsText);
    assert.ok(lines.some((l) => l.startsWith(`${exportRoot}/devices/${deviceId} 127.0.0.1(rw,`)), exportsText);
    const events = (await api('GET', `/api/v1/events?device=${deviceId}&type=boot.rootfs-nfs&limit=10`)).items as { data: Record<string, unknown> }[];
    assert.ok(events.some((e) => e.data.status === 'ok' && e.data.layer === 'persistent'), JSON.stringify(events));
    assert.equal((await api('GET', `/api/v1/devices/${deviceId}`)).state, 'running');
  });

  it('2: the next boot keeps what the first wrote (the device layer), and the image stays untouched', { skip: skip.skip }, async () => {
    const out = await boot('boot2', await netbootFiles('2'));
    assert.match(out, /^DROVER-FIXTURE: boots=2\r?$/m, 'the first boot\'s write survived in the device layer');
    assert.match(out, new RegExp(`^DROVER-FIXTURE: hostname=${HOSTNAME}\\r?$`, 'm'));
    const sha = /[0-9a-f]{64}/.exec(readFileSync(join(exportRoot, 'clients.json'), 'utf8'))![0];
    assert.ok(!existsSync(join(exportRoot, 'images', sha, 'root', 'var/lib/drover-fixture/boots')), 'the shared image root holds no device writes');
  });
});
