// The initramfs builder on small ext4 roots made here with mke2fs -d: Wi-Fi for SD stub cards
// (wpa_supplicant, the Pi chips' firmware through Raspberry Pi OS's cypress symlinks, the
// brcmfmac modules kept out of the autoload list) goes in only when the image has it, and the
// NFS helper and modules are always there. The arm64 busybox is Debian's busybox-static from the
// fixture cache; the stand-in wpa_supplicant is a copy of it (any arm64 ELF does for packing).
// Whether a real Pi then joins a network cannot be run here: no Wi-Fi hardware, and no
// mac80211_hwsim access point in this test's reach.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { buildPiImage, imagePrereq } from '../../test/helpers/pi-image.js';
import { Ext4 } from './ext4.js';
import { buildInitramfs } from './initramfs.js';

const KVER = '6.1.0-50-arm64';
const debs = join(process.env.DROVER_FIXTURE_CACHE ?? join(homedir(), '.cache', 'drover-fixtures'), 'debs-arm64');

describe('initramfs builder', imagePrereq(), () => {
  const dir = mkdtempSync(join(tmpdir(), 'drover-initramfs-'));
  const fds: number[] = [];
  let busybox = '';
  after(() => {
    for (const fd of fds) closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  });

  before(() => {
    const deb = () => (existsSync(debs) ? readdirSync(debs).find((f) => /^busybox-static_.*_arm64\.deb$/.test(f)) : undefined);
    if (!deb()) buildPiImage(join(dir, 'fixture.img')); // fills the deb cache
    busybox = join(dir, 'busybox');
    writeFileSync(busybox, execFileSync('sh', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -x -O ./bin/busybox', 'sh', join(debs, deb()!)], { maxBuffer: 64 * 1024 * 1024 }));
  });

  /** An ext4 root with busybox, a module tree and whatever `extra` adds; opened with our reader. */
  async function root(name: string, extra: (r: string) => void): Promise<Ext4> {
    const r = join(dir, name);
    const mod = join(r, 'lib/modules', KVER);
    for (const d of ['usr/bin', 'usr/sbin', 'kernel/fs/overlayfs', 'kernel/drivers/net/wireless/broadcom/brcm80211/brcmfmac', 'kernel/net/wireless']) mkdirSync(d.startsWith('kernel') ? join(mod, d) : join(r, d), { recursive: true });
    execFileSync('cp', [busybox, join(r, 'usr/bin/busybox')]);
    chmodSync(join(r, 'usr/bin/busybox'), 0o755);
    const ko = (p: string) => writeFileSync(join(mod, p), Buffer.from(`\x7fELF module ${p}`));
    ko('kernel/fs/overlayfs/overlay.ko');
    ko('kernel/drivers/net/wireless/broadcom/brcm80211/brcmfmac/brcmfmac.ko');
    ko('kernel/net/wireless/cfg80211.ko');
    writeFileSync(join(mod, 'modules.dep'), [
      'kernel/fs/overlayfs/overlay.ko:',
      'kernel/drivers/net/wireless/broadcom/brcm80211/brcmfmac/brcmfmac.ko: kernel/net/wireless/cfg80211.ko',
      'kernel/net/wireless/cfg80211.ko:',
      '',
    ].join('\n'));
    extra(r);
    const img = join(dir, `${name}.ext4`);
    execFileSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', r, img, '32M'], { env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } });
    const fd = openSync(img, 'r');
    fds.push(fd);
    return Ext4.open(async (offset, length) => {
      const b = Buffer.allocUnsafe(length);
      return b.subarray(0, readSync(fd, b, 0, length, offset));
    }, 0, statSync(img).size);
  }

  const listOf = (data: Buffer) => spawnSync('cpio', ['-it', '--quiet'], { input: gunzipSync(data), encoding: 'utf8' }).stdout.split('\n');
  const fileOf = (data: Buffer, path: string) => spawnSync('cpio', ['-i', '--quiet', '--to-stdout', path], { input: gunzipSync(data) }).stdout;

  it('without wpa_supplicant in the image: no Wi-Fi, and says why', async () => {
    const r = await buildInitramfs(await root('wired', () => undefined), KVER, 'arm64', { version: 'test' });
    assert.deepEqual(r.wifi, { included: false, reason: 'the image has no wpa_supplicant' });
    const list = listOf(r.data);
    assert.ok(!list.includes('usr/sbin/wpa_supplicant') && !list.includes('etc/drover/wifi-modules'));
    assert.ok(list.includes('etc/drover/nfs-root.sh'), 'the NFS root helper is always there');
    assert.ok(!list.some((f) => f.includes('brcmfmac')), 'no Wi-Fi driver either');
  });

  it('with wpa_supplicant and the Pi firmware: both go in, the driver loads only for Wi-Fi', async () => {
    const fs = await root('wifi', (r) => {
      execFileSync('cp', [busybox, join(r, 'usr/sbin/wpa_supplicant')]);
      mkdirSync(join(r, 'lib/firmware/brcm'), { recursive: true });
      mkdirSync(join(r, 'lib/firmware/cypress'), { recursive: true });
      // Raspberry Pi OS: the brcm names are links into ../cypress.
      writeFileSync(join(r, 'lib/firmware/cypress/cyfmac43455-sdio-standard.bin'), Buffer.alloc(4096, 0x43));
      symlinkSync('../cypress/cyfmac43455-sdio-standard.bin', join(r, 'lib/firmware/brcm/brcmfmac43455-sdio.bin'));
      writeFileSync(join(r, 'lib/firmware/brcm/brcmfmac43455-sdio.txt'), 'boardflags=0x00480201\n');
      writeFileSync(join(r, 'lib/firmware/brcm/brcmfmac43430-sdio.bin'), Buffer.alloc(2048, 0x30));
      writeFileSync(join(r, 'lib/firmware/brcm/brcmfmac4356-pcie.bin'), Buffer.alloc(2048, 0x56)); // not a Pi chip
      symlinkSync('../cypress/gone.bin', join(r, 'lib/firmware/brcm/brcmfmac43436-sdio.bin')); // dangling
      writeFileSync(join(r, 'lib/firmware/regulatory.db'), Buffer.alloc(100, 1));
    });
    const r = await buildInitramfs(fs, KVER, 'arm64', { version: 'test' });
    assert.equal(r.wifi.included, true, JSON.stringify(r.wifi));
    if (!r.wifi.included) return;
    assert.equal(r.wifi.wpaSupplicant, '/usr/sbin/wpa_supplicant');
    assert.deepEqual(r.wifi.firmware, ['brcmfmac43430-sdio.bin', 'brcmfmac43455-sdio.bin', 'brcmfmac43455-sdio.txt']);
    assert.deepEqual(r.wifi.modules, ['brcmfmac', 'cfg80211'], 'brcmfmac_wcc is not in this kernel');
    const list = listOf(r.data);
    for (const f of ['usr/sbin/wpa_supplicant', 'lib/firmware/brcm/brcmfmac43455-sdio.bin', 'lib/firmware/regulatory.db', 'etc/drover/wifi-modules', `lib/modules/${KVER}/kernel/net/wireless/cfg80211.ko`]) assert.ok(list.includes(f), f);
    assert.ok(!list.includes('lib/firmware/brcm/brcmfmac4356-pcie.bin'));
    assert.equal(fileOf(r.data, 'lib/firmware/brcm/brcmfmac43455-sdio.bin').length, 4096, 'the link target\'s bytes');
    assert.equal(fileOf(r.data, 'etc/drover/wifi-modules').toString(), 'brcmfmac\ncfg80211\n');
    assert.ok(!fileOf(r.data, 'etc/drover/modules').toString().includes('brcmfmac'), 'not loaded on wired boots');
  });
});
