// NfsService: what a boot-mode-nfs config request does on the controller. The exports (kernel
// nfsd and ganesha) name exactly the address each device asked from, an address moves with
// DHCP, a slow first unpack answers "retry", a failing reload is a coded error, and the
// cmdline rendering carries nfsroot= in place of the image's own NFS arguments.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DroverError } from '../domain/errors.js';
import type { Device, Image } from '../domain/records.js';
import { renderCmdline } from '../netboot/bootfiles/render.js';
import { nfsCmdlineArgs } from '../images/nfs-root.js';
import { prereq, which } from '../../test/helpers/prereq.js';
import { systemClock } from '../domain/time.js';
import { Store } from '../store/store.js';
import { DevicesService } from './devices.service.js';
import { EventBus } from './event-bus.js';
import { NfsService } from './nfs.service.js';

const SBIN = ['/usr/sbin', '/sbin'];
const tools = which('mksquashfs', SBIN) !== null && which('unsquashfs', SBIN) !== null && which('mkfs.ext4', SBIN) !== null;
const SHA = 'b'.repeat(64);
const device = (id: string) => ({ id, serial: '1234abcd' }) as Device;
const image = { id: 'img_1', name: 'os', tag: 'latest' } as Image;

describe('NfsService', prereq('mksquashfs, unsquashfs, mkfs.ext4', tools, 'squashfs-tools e2fsprogs'), () => {
  const dir = mkdtempSync(join(tmpdir(), 'drover-nfs-svc-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const src = join(dir, 'src');
  mkdirSync(join(src, 'etc'), { recursive: true });
  writeFileSync(join(src, 'etc/hostname'), 'image\n');
  const sqfs = join(dir, 'rootfs.squashfs');
  execFileSync('mksquashfs', [src, sqfs, '-quiet', '-noappend', '-no-progress'], { env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } });
  const exportRoot = join(dir, 'export');
  const exportsFile = join(dir, 'etc', 'drover.exports');
  const ganesha = join(dir, 'ganesha.conf');
  const reloads = join(dir, 'reloads');
  const svc = new NfsService({ exportRoot, server: undefined, exportsFile, ganeshaConfig: ganesha, reloadCommand: `echo reload >> ${reloads}`, layerBytes: 64 * 1024 * 1024 });
  const clientsOf = (text: string) => text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(' ').slice(1).map((c) => c.split('(')[0]).join(','));

  it('prepares the root, the layer and exports for the asking address, and says where to mount', async () => {
    const r = await svc.prepare(device('dev_a'), image, sqfs, SHA, '::ffff:198.18.0.10', 'http://198.18.0.1:8080');
    assert.deepEqual(r, { root: `198.18.0.1:${exportRoot}/images/${SHA}/root`, rw: `198.18.0.1:${exportRoot}/devices/dev_a` });
    assert.equal(readFileSync(join(exportRoot, 'images', SHA, 'root', 'etc/hostname'), 'utf8'), 'image\n');
    assert.ok(existsSync(join(exportRoot, 'devices', 'dev_a', 'layer.ext4')));
    assert.deepEqual(clientsOf(readFileSync(exportsFile, 'utf8')), ['198.18.0.10', '198.18.0.10']);
    assert.match(readFileSync(ganesha, 'utf8'), /Clients = 198\.18\.0\.10;/);
    assert.equal(readFileSync(reloads, 'utf8'), 'reload\n');
    // The same device from the same address: nothing rewritten, no reload.
    await svc.prepare(device('dev_a'), image, sqfs, SHA, '198.18.0.10', 'http://198.18.0.1:8080');
    assert.equal(readFileSync(reloads, 'utf8'), 'reload\n');
  });

  it('moves an address to the device that now has it, and shares the image root', async () => {
    await svc.prepare(device('dev_b'), image, sqfs, SHA, '198.18.0.11', 'http://198.18.0.1:8080');
    assert.deepEqual((await svc.list()).map((c) => `${c.deviceId}@${c.ip}`).sort(), ['dev_a@198.18.0.10', 'dev_b@198.18.0.11']);
    // DHCP gave dev_a's address to dev_b: dev_a's exports go with it.
    await svc.prepare(device('dev_b'), image, sqfs, SHA, '198.18.0.10', 'http://198.18.0.1:8080');
    assert.deepEqual((await svc.list()).map((c) => `${c.deviceId}@${c.ip}`), ['dev_b@198.18.0.10']);
    assert.deepEqual(clientsOf(readFileSync(exportsFile, 'utf8')), ['198.18.0.10', '198.18.0.10']);
    assert.ok(!readFileSync(exportsFile, 'utf8').includes('devices/dev_a'));
    // A fresh service reads the same list back.
    const again = new NfsService({ exportRoot, server: undefined, exportsFile: null, ganeshaConfig: null, reloadCommand: null });
    assert.deepEqual((await again.list()).map((c) => c.deviceId), ['dev_b']);
  });

  it('refuses addresses that are not one IPv4 host, and a URL without an IPv4 server', async () => {
    await assert.rejects(svc.prepare(device('dev_c'), image, sqfs, SHA, '::1', 'http://198.18.0.1:8080'), (e: DroverError) => e.code === 'DROVER_VALIDATION');
    await assert.rejects(svc.prepare(device('dev_c'), image, sqfs, SHA, '198.18.0.12', 'http://controller.lan:8080'), (e: DroverError) => e.code === 'DROVER_NFS_FAILED' && /nfsServer/.test(e.message));
    const named = new NfsService({ exportRoot, server: '198.18.0.5', exportsFile: null, ganeshaConfig: null, reloadCommand: null, layerBytes: 64 * 1024 * 1024 });
    assert.equal(named.serverAddress('http://controller.lan:8080'), '198.18.0.5');
  });

  it('a failing reload is DROVER_NFS_FAILED with the command and its message', async () => {
    const bad = new NfsService({ exportRoot, server: undefined, exportsFile: null, ganeshaConfig: null, reloadCommand: 'echo ganesha is not running >&2; exit 3', layerBytes: 64 * 1024 * 1024 });
    await assert.rejects(bad.prepare(device('dev_d'), image, sqfs, SHA, '198.18.0.13', 'http://198.18.0.1:8080'), (e: DroverError) => e.code === 'DROVER_NFS_FAILED' && /ganesha is not running/.test(e.message));
  });

  it('a damaged squashfs is DROVER_NFS_FAILED and leaves no image root', async () => {
    const broken = join(dir, 'broken.squashfs');
    writeFileSync(broken, Buffer.alloc(8192, 7));
    const other = 'c'.repeat(64);
    await assert.rejects(svc.prepare(device('dev_e'), image, broken, other, '198.18.0.14', 'http://198.18.0.1:8080'), (e: DroverError) => e.code === 'DROVER_NFS_FAILED');
    assert.ok(!existsSync(join(exportRoot, 'images', other, 'root')));
  });
});

describe('NfsService follows devices', prereq('mksquashfs, unsquashfs, mkfs.ext4', tools, 'squashfs-tools e2fsprogs'), () => {
  const dir = mkdtempSync(join(tmpdir(), 'drover-nfs-follow-'));
  let store: Store | undefined;
  after(() => {
    store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('drops the exports of a device that is retired or leaves boot mode nfs, and keeps the others', async () => {
    store = await Store.open(join(dir, 'drover.db'));
    const ctx = { store, bus: new EventBus(), clock: systemClock, dataDir: dir };
    const devices = new DevicesService(ctx);
    const src = join(dir, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'f'), 'x');
    const sqfs = join(dir, 'rootfs.squashfs');
    execFileSync('mksquashfs', [src, sqfs, '-quiet', '-noappend', '-no-progress'], { env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } });
    const exportsFile = join(dir, 'drover.exports');
    const svc = new NfsService({ exportRoot: join(dir, 'export'), server: '198.18.0.1', exportsFile, ganeshaConfig: null, reloadCommand: null, layerBytes: 64 * 1024 * 1024 });
    const errors: unknown[] = [];
    const stop = svc.followDevices(ctx, (e) => errors.push(e));
    try {
      const [a, b, c] = await Promise.all(['aa000001', 'aa000002', 'aa000003'].map((serial) => devices.create({ serial, bootMode: 'nfs', state: 'accepted' }, 'test')));
      for (const [i, d] of [a!, b!, c!].entries()) await svc.prepare(d, image, sqfs, SHA, `198.18.0.${20 + i}`, 'http://198.18.0.1:8080');
      const ids = async () => (await svc.list()).map((x) => x.deviceId).sort();
      const settle = async (want: string[]) => {
        for (let t = 0; t < 50 && JSON.stringify(await ids()) !== JSON.stringify(want); t++) await new Promise((r) => setTimeout(r, 20));
        assert.deepEqual(await ids(), want);
      };
      await devices.patch(a!.id, { hostname: 'renamed' }, 'test'); // nothing NFS about it
      await devices.act(b!.id, 'retire', 'test');
      await settle([a!.id, c!.id].sort());
      await devices.patch(c!.id, { bootMode: 'ramroot' }, 'test');
      await settle([a!.id]);
      assert.ok(!readFileSync(exportsFile, 'utf8').includes(c!.id), 'the exports file no longer names it');
      assert.ok(existsSync(join(dir, 'export', 'devices', c!.id, 'layer.ext4')), 'its layer is kept on disk');
      assert.deepEqual(errors, []);
    } finally {
      stop();
    }
  });
});

describe('cmdline.txt in boot mode nfs', () => {
  it('carries nfsroot= and drover.nfs.rw= in place of the image\'s own root, NFS and ip= arguments', () => {
    const nfsArgs = nfsCmdlineArgs('198.18.0.1', '/srv/drover/nfs', SHA, 'dev_a');
    const text = renderCmdline('console=serial0,115200 root=PARTUUID=1-02 rootfstype=ext4 rw nfsroot=10.9.9.9:/old ip=10.9.9.8 rootwait', {
      serverUrl: 'http://198.18.0.1:8080', deviceId: 'dev_a', serial: '1234abcd', hostname: null, token: 't', bootMode: 'nfs', imageId: 'img_1', initramfs: null,
      osKernels: [{ file: 'kernel8.img', initramfs: 'drover-initramfs8' }], nfsArgs,
    });
    const args = text.trim().split(' ');
    assert.deepEqual(args.filter((a) => /^(root|nfsroot|ip)=|^(ro|rw)$/.test(a)), ['root=/dev/nfs', `nfsroot=198.18.0.1:/srv/drover/nfs/images/${SHA}/root,vers=4,tcp`, 'ro', 'ip=dhcp']);
    assert.ok(args.includes('drover.nfs.rw=198.18.0.1:/srv/drover/nfs/devices/dev_a'));
    assert.ok(args.includes('drover.boot=nfs') && args.includes('console=serial0,115200') && args.includes('rootwait'));
    assert.equal(text.split('\n').length, 2, 'one line');
  });
});
