// The per-device boot tree: image registration, which image a device gets, per-device rendering,
// discovery of unknown Pis, policy, confinement, and the same tree over HTTP.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestApi, type TestApi } from '../../../test/helpers/api.js';
import { makeBootTree, SYNTHETIC_FILES } from '../../demo/boot-tree.js';
import { BootProgress } from '../progress.js';
import { FileCache } from './file-cache.js';
import { BootTree } from './tree.js';

describe('boot trees', () => {
  let t: TestApi;
  let tree: BootTree;
  const src = mkdtempSync(join(tmpdir(), 'drover-boot-src-'));
  const srcA = makeBootTree(join(src, 'a'), 'a');
  const srcB = makeBootTree(join(src, 'b'), 'b');

  before(async () => {
    t = await startTestApi({
      bootTree: (services) => (tree = new BootTree({ services, cache: new FileCache(), serverUrl: () => 'http://192.0.2.1:8080', policy: 'default-image' })),
    });
  });
  after(async () => {
    await t?.close();
    rmSync(src, { recursive: true, force: true });
  });

  it('registers a boot directory: content-addressed, with the models it can boot', async () => {
    const r = await t.call('POST', '/api/v1/images/boot-dir', { name: 'pios', tag: 'a', path: srcA });
    assert.equal(r.status, 201, r.body);
    assert.deepEqual(r.json.metadata.models, ['pi3b', 'pi3b+', 'pi4', 'pi5']);
    assert.equal(r.json.metadata.files, Object.keys(SYNTHETIC_FILES).length + 2);
    assert.deepEqual(r.json.metadata.kernels, ['kernel8.img', 'kernel_2712.img']);
    const again = await t.call('POST', '/api/v1/images/boot-dir', { name: 'pios-copy', path: srcA });
    assert.equal(again.json.sha256, r.json.sha256, 'same tree, same content address');
    const stored = readdirSync(join(t.dataDir, 'images', 'boot'));
    assert.equal(stored.length, 1, 'stored once, and no temporary directory left');
    assert.equal((await t.call('POST', '/api/v1/images/boot-dir', { name: 'pios', tag: 'a', path: srcA })).json.code, 'DROVER_IMAGE_EXISTS');
  });

  it('refuses unusable directories with DROVER_IMAGE_INVALID and leaves nothing behind', async () => {
    const bad = makeBootTree(join(src, 'bad'), 'bad');
    unlinkSync(join(bad, 'config.txt'));
    for (const path of [bad, join(src, 'missing'), join(srcA, 'config.txt')]) {
      const r = await t.call('POST', '/api/v1/images/boot-dir', { name: 'broken', path });
      assert.equal(r.status, 400);
      assert.equal(r.json.code, 'DROVER_IMAGE_INVALID');
    }
    assert.equal(readdirSync(join(t.dataDir, 'images', 'boot')).length, 1);
    assert.equal((await t.call('GET', '/api/v1/images/broken')).status, 404);
  });

  it('serves nothing until there is an image for the device', async () => {
    await assert.rejects(tree.resolve('start4.elf', '192.0.2.50'), { code: 'DROVER_NO_DEFAULT_IMAGE' });
    assert.equal((await t.call('PUT', '/api/v1/images/default', { image: 'pios:a' })).json.image.name, 'pios');
    const r = await tree.resolve('start4.elf', '192.0.2.50');
    assert.equal(r.data.length, SYNTHETIC_FILES['start4.elf']);
    assert.equal(r.device, null);
  });

  it('records an unknown serial as an incoming device and serves it the default image', async () => {
    const r = await tree.resolve('1a2b3c4d/start4.elf', '192.0.2.50');
    assert.equal(r.device?.serial, '1a2b3c4d');
    assert.equal(r.device?.state, 'incoming');
    const ev = await t.call('GET', '/api/v1/events?type=device.discovered');
    assert.equal(ev.json.items[0].data.via, 'tftp');
    await Promise.all([tree.resolve('1a2b3c4d/config.txt', null), tree.resolve('1a2b3c4d/fixup4.dat', null)]);
    assert.equal((await t.call('GET', '/api/v1/devices?q=1a2b3c4d')).json.total, 1, 'parallel requests record it once');
    const cmdline = (await tree.resolve('1a2b3c4d/cmdline.txt', null)).data.toString();
    assert.match(cmdline, /drover\.token=none/, 'no token before a person accepts it');
  });

  it('renders cmdline.txt and config.txt per device, with a working device-scoped token', async () => {
    await t.call('POST', '/api/v1/devices/1a2b3c4d/accept');
    await t.call('PATCH', '/api/v1/devices/1a2b3c4d', { hostname: 'rack1-n1' });
    const cmdline = (await tree.resolve('1a2b3c4d/cmdline.txt', null)).data.toString();
    assert.equal(cmdline.split('\n').length, 2, 'one line');
    assert.match(cmdline, /^console=serial0,115200 console=tty1 root=PARTUUID=deadbeef-02 .* rootwait drover\.server=http:\/\/192\.0\.2\.1:8080 drover\.node=dev_\w+ drover\.serial=1a2b3c4d drover\.token=drv_[\w-]{43} drover\.image=img_\w+ drover\.boot=ramroot drover\.hostname=rack1-n1\n$/);
    assert.ok(!cmdline.includes('drover.stale'), 'old drover.* arguments are replaced');
    const token = /drover\.token=(\S+)/.exec(cmdline)![1]!;
    assert.equal((await tree.resolve('1a2b3c4d/cmdline.txt', null)).data.toString(), cmdline, 'stable across boots');
    const me = await t.call('GET', '/api/v1/me', undefined, token);
    assert.equal(me.json.role, 'device');
    assert.equal((await t.call('GET', '/api/v1/devices/1a2b3c4d', undefined, token)).status, 200);
    assert.equal((await t.call('GET', '/api/v1/devices', undefined, token)).status, 403);
    const config = (await tree.resolve('1a2b3c4d/config.txt', null)).data.toString();
    assert.ok(config.startsWith('# Raspberry Pi firmware settings\n[all]\narm_64bit=1'));
    assert.match(config, /\[all\]\ninitramfs initramfs8 followkernel\n$/);
  });

  it('serves the device image, else the group image, else the default', async () => {
    await t.call('POST', '/api/v1/images/boot-dir', { name: 'pios', tag: 'b', path: srcB });
    const bKernel = readFileSync(join(srcB, 'kernel8.img'));
    const aKernel = readFileSync(join(srcA, 'kernel8.img'));
    assert.deepEqual((await tree.resolve('1a2b3c4d/kernel8.img', null)).data, aKernel);
    await t.call('POST', '/api/v1/groups', { name: 'lab', imageId: 'pios:b' });
    await t.call('PATCH', '/api/v1/devices/1a2b3c4d', { groupId: 'lab' });
    assert.deepEqual((await tree.resolve('1a2b3c4d/kernel8.img', null)).data, bKernel, 'group image');
    await t.call('POST', '/api/v1/devices/1a2b3c4d/assign', { image: 'pios:a' });
    assert.deepEqual((await tree.resolve('1a2b3c4d/kernel8.img', null)).data, aKernel, 'device image wins');
  });

  it('resolves the MAC prefix form and refuses retired devices, traversal and other trees', async () => {
    await t.call('POST', '/api/v1/devices', { serial: 'e4e4e4e4', macs: ['dc:a6:32:01:36:c2'] });
    assert.equal((await tree.resolve('dc-a6-32-01-36-c2/start4.elf', null)).device?.serial, 'e4e4e4e4');
    for (const bad of ['1a2b3c4d/../../../etc/passwd', '../config.txt', '1a2b3c4d/nope.bin', '1a2b3c4d\\config.txt', `1a2b3c4d/${'x'.repeat(2000)}`]) {
      await assert.rejects(tree.resolve(bad, null), (e: any) => e.name === 'Error' && /File not found|Access violation/.test(e.message), bad);
    }
    await t.call('POST', '/api/v1/devices/e4e4e4e4/retire');
    await assert.rejects(tree.resolve('e4e4e4e4/start4.elf', null), /File not found/);
  });

  it('known-only policy serves accepted devices only', async () => {
    const strict = new BootTree({ services: t.services, cache: new FileCache(), serverUrl: () => 'http://x', policy: 'known-only' });
    await assert.rejects(strict.resolve('start4.elf', null), /File not found/);
    await assert.rejects(strict.resolve('99999999/start4.elf', null), /File not found/);
    assert.equal((await t.call('GET', '/api/v1/devices/99999999')).json.state, 'incoming', 'still recorded, so a person can accept it');
    assert.ok((await strict.resolve('1a2b3c4d/start4.elf', null)).data.length > 0);
  });

  it('serves the same tree over HTTP without a token', async () => {
    const r = await t.app.inject({ method: 'GET', url: '/boot/v1/files/1a2b3c4d/cmdline.txt' });
    assert.equal(r.statusCode, 200);
    assert.match(r.body, /drover\.serial=1a2b3c4d/);
    assert.equal(r.headers['cache-control'], 'no-store');
    const k = await t.app.inject({ method: 'GET', url: '/boot/v1/files/1a2b3c4d/kernel8.img' });
    assert.equal(k.rawPayload.length, SYNTHETIC_FILES['kernel8.img']);
    const miss = await t.app.inject({ method: 'GET', url: '/boot/v1/files/1a2b3c4d/..%2F..%2Fsecrets%2Fdevice-token.key' });
    assert.equal(miss.statusCode, 404);
    assert.equal(miss.json().code, 'DROVER_BOOT_FILE_NOT_FOUND');
  });

  it('gives iPXE clients a script: an entry that chains by MAC, then kernel + initrd + rendered cmdline', async () => {
    const entry = await t.app.inject({ method: 'GET', url: '/boot/v1/ipxe' });
    assert.equal(entry.statusCode, 200);
    assert.equal(entry.body, '#!ipxe\nchain /boot/v1/ipxe/${net0/mac:hexhyp}\n');
    // The synthetic Pi tree has no vmlinuz: the script says so and exits to the next boot device.
    const none = await t.app.inject({ method: 'GET', url: '/boot/v1/ipxe/52-54-00-12-34-56' });
    assert.equal(none.statusCode, 200);
    assert.match(none.body, /^#!ipxe\necho Drover: no image with vmlinuz.*\nexit 1\n$/s);
    // A tree with a PC kernel and initrd.
    const pc = makeBootTree(join(src, 'pc'), 'pc');
    writeFileSync(join(pc, 'vmlinuz'), 'kernel');
    writeFileSync(join(pc, 'initrd.img'), 'initrd');
    const img = await t.call('POST', '/api/v1/images/boot-dir', { name: 'pc', path: pc });
    assert.equal(img.status, 201, img.body);
    const dev = await t.call('POST', '/api/v1/devices', { serial: '0c0c0c0c', macs: ['52:54:00:12:34:57'], imageId: img.json.id });
    assert.equal(dev.status, 201, dev.body);
    const s = await t.app.inject({ method: 'GET', url: '/boot/v1/ipxe/52-54-00-12-34-57' });
    assert.match(s.body, /^#!ipxe\necho Drover: booting pc:latest\nkernel \/boot\/v1\/files\/52-54-00-12-34-57\/vmlinuz .*drover\.serial=0c0c0c0c.*\ninitrd \/boot\/v1\/files\/52-54-00-12-34-57\/initrd\.img\nboot\n$/);
    const k = await t.app.inject({ method: 'GET', url: '/boot/v1/files/52-54-00-12-34-57/vmlinuz' });
    assert.equal(k.body, 'kernel');
    assert.equal((await t.app.inject({ method: 'GET', url: '/boot/v1/ipxe/not-a-mac' })).statusCode, 400);
  });

  it('turns a boot\'s transfers into one boot.tftp event and marks the device booting', async () => {
    const progress = new BootProgress(t.services, 50);
    const d = (await t.call('GET', '/api/v1/devices/1a2b3c4d')).json;
    progress.tftp(d, 'start4.elf', 0, 'early-terminate');
    progress.tftp(d, 'start4.elf', 2_250_000, 'complete');
    progress.tftp(d, 'kernel8.img', 8_500_000, 'complete');
    await new Promise((r) => setTimeout(r, 200));
    const ev = (await t.call('GET', '/api/v1/devices/1a2b3c4d/events?type=boot.tftp')).json.items[0];
    assert.equal(ev.data.files, 2);
    assert.equal(ev.data.bytes, 10_750_000);
    assert.deepEqual(ev.data.names, ['start4.elf', 'kernel8.img']);
    assert.equal((await t.call('GET', '/api/v1/devices/1a2b3c4d')).json.state, 'booting');
    progress.stop();
  });
});
