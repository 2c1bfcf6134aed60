// OS image ingest on the Pi-like fixture image (Debian kernel, raspi-firmware, busybox-static
// arm64 root with a capability, a hard link, device nodes, a user home): every format, the
// squashfs checked with squashfs-tools-ng, the initramfs with cpio, and bad files refused with
// a coded error and nothing left behind.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { buildPiImage, imagePrereq } from '../../test/helpers/pi-image.js';
import { ingestOsImage, type IngestProgress } from './ingest.js';

const MiB = 1024 * 1024;

describe('OS image ingest', imagePrereq(), () => {
  const dir = mkdtempSync(join(tmpdir(), 'drover-ingest-'));
  const store = join(dir, 'store');
  const img = join(dir, 'pi.img');
  after(() => rmSync(dir, { recursive: true, force: true }));
  before(() => {
    buildPiImage(img, 'a');
  });

  /** The store holds only finished images: no work directories, no half images. */
  const storeEntries = () => (existsSync(store) ? readdirSync(store).sort() : []);

  let first: Awaited<ReturnType<typeof ingestOsImage>>;

  it('ingests an .img.xz: boot files, kernel and modules, initramfs, squashfs with owners, links, devices, xattrs', async () => {
    const xz = `${img}.xz`;
    execFileSync('xz', ['-T0', '-1', '-k', '-f', img]);
    const seen = new Set<string>();
    const progress: IngestProgress[] = [];
    // The agent install has its own suite (agent-install.test.ts): off here, so this stays offline.
    first = await ingestOsImage({ source: xz, storeDir: store, agent: false, onProgress: (p) => (seen.add(p.phase), progress.push(p)) });
    assert.equal(first.reused, false);
    assert.deepEqual([...seen], ['decompress', 'partitions', 'boot-files', 'initramfs', 'rootfs', 'store']);
    const last = progress.filter((p) => p.phase === 'decompress').at(-1)!;
    assert.equal(last.done, last.total, 'decompress progress reaches its total');
    const info = first.info;
    assert.equal(info.sourceFormat, 'xz');
    assert.equal(info.sha256, execFileSync('sha256sum', [img], { encoding: 'utf8' }).split(' ')[0], 'content address = sha256 of the decompressed disk image');
    assert.equal(info.kernels.length, 1);
    assert.equal(info.kernels[0]!.file, 'kernel8.img');
    assert.match(info.kernels[0]!.version, /^6\.\d+\.\d+-\d+-arm64$/);
    assert.equal(info.kernels[0]!.arch, 'arm64');
    assert.equal(info.kernels[0]!.initramfs, 'drover-initramfs8');
    for (const m of ['squashfs', 'overlay', 'loop', 'virtio_net', 'genet', 'lan78xx', 'smsc95xx', 'vfat']) assert.ok(info.kernels[0]!.modules.includes(m), `initramfs has ${m}`);
    assert.ok(info.models.includes('pi4') && info.models.includes('pi3b'), `models ${info.models}`);
    assert.ok(info.boot.dtbs.includes('bcm2711-rpi-4-b.dtb'));
    assert.match(info.osName ?? '', /Drover fixture a/);
    assert.deepEqual(storeEntries(), [info.sha256]);

    // Boot files, byte for byte from the FAT partition, plus Drover's initramfs.
    const boot = join(first.dir, 'boot');
    for (const f of ['config.txt', 'cmdline.txt', 'kernel8.img', 'start4.elf', 'bcm2711-rpi-4-b.dtb', 'drover-initramfs8']) assert.ok(existsSync(join(boot, f)), f);
    const mtype = execFileSync('mtype', ['-i', `${img}@@${info.partitions.find((p) => p.fs === 'fat')!.offset}`, '::config.txt']);
    assert.deepEqual(readFileSync(join(boot, 'config.txt')), mtype);

    // The initramfs: busybox from the image, modules with dependencies, Drover's /init.
    const cpio = gunzipSync(readFileSync(join(boot, 'drover-initramfs8')));
    const list = spawnSync('cpio', ['-it', '--quiet'], { input: cpio, encoding: 'utf8' }).stdout.split('\n');
    const kver = info.kernels[0]!.version;
    for (const f of ['init', 'bin/busybox', 'dev/console', 'etc/drover/modules', 'etc/drover/udhcpc.script', `lib/modules/${kver}/modules.dep`, `lib/modules/${kver}/kernel/fs/squashfs/squashfs.ko`, `lib/modules/${kver}/kernel/fs/overlayfs/overlay.ko`, `lib/modules/${kver}/kernel/drivers/net/virtio_net.ko`, `lib/modules/${kver}/kernel/drivers/net/net_failover.ko`]) {
      assert.ok(list.includes(f), `initramfs holds ${f}`);
    }

    // The squashfs, as squashfs-tools-ng sees it.
    const sq = join(first.dir, 'rootfs.squashfs');
    assert.equal(statSync(sq).size, info.rootfs.bytes);
    const stat = (p: string) => execFileSync('rdsquashfs', ['-s', p, sq], { encoding: 'utf8' });
    const ping = stat('/bin/ping');
    const linkA = stat('/usr/lib/drover-fixture/linked-a');
    const linkB = stat('/usr/lib/drover-fixture/linked-b');
    const inode = (s: string) => /^Inode number: (\d+)$/m.exec(s)?.[1];
    assert.ok(inode(linkA));
    assert.equal(inode(linkA), inode(linkB), 'hard link: one inode');
    assert.match(linkA, /^Hard link count: 2$/m);
    assert.match(stat('/dev/console'), /^Inode type: character device$[\s\S]*^Device number: 5:1 /m);
    const home = stat('/home/pi');
    assert.match(home, /^Access: 0750$/m);
    assert.match(home, /^UID: 1000 /m);
    assert.match(home, /^GID: 1000 /m);
    assert.match(stat('/usr/bin/fixture-suid'), /^Access: 04755$/m);
    assert.match(ping, /^Access: 0755$/m);
    assert.match(ping, /^Last modified: .*\(1704067200\)$/m, 'timestamps kept');
    // security.capability (cap_net_raw+ep) as a pax record in the tar sqfs2tar writes back.
    const tar = execFileSync('sqfs2tar', [sq], { maxBuffer: 512 * MiB });
    const cap = Buffer.from('SCHILY.xattr.security.capability=');
    const at = tar.indexOf(cap);
    assert.ok(at > 0, 'security.capability survives into the squashfs');
    const value = tar.subarray(at + cap.length, at + cap.length + 20);
    assert.equal(value.readUInt32LE(0), 0x02000001, 'VFS_CAP_REVISION_2 | effective');
    assert.equal(value.readUInt32LE(4), 1 << 13, 'permitted: cap_net_raw');
    assert.ok(info.rootfs.xattrs >= 2);
  });

  it('stores the same disk image once, whatever the container (.img.gz, .zip, raw .img)', async () => {
    const gz = `${img}.gz`;
    execFileSync('sh', ['-c', `gzip -1 -c "${img}" > "${gz}"`]);
    const again = await ingestOsImage({ source: gz, storeDir: store });
    assert.equal(again.reused, true);
    assert.equal(again.dir, first.dir);
    const zip = join(dir, 'pi.zip');
    execFileSync('python3', ['-c', 'import sys,zipfile; z=zipfile.ZipFile(sys.argv[1],"w",zipfile.ZIP_DEFLATED,compresslevel=1); z.writestr("README.txt","x"); z.write(sys.argv[2],"raspios.img"); z.close()', zip, img]);
    assert.equal((await ingestOsImage({ source: zip, storeDir: store })).info.sha256, first.info.sha256);
    assert.equal((await ingestOsImage({ source: img, storeDir: store })).reused, true);
    assert.deepEqual(storeEntries(), [first.info.sha256]);
  });

  it('refuses damaged or wrong files with a coded error and leaves nothing behind', async () => {
    const before = storeEntries();
    const cases: [string, () => string, string, RegExp][] = [
      ['truncated .xz', () => {
        const p = join(dir, 'cut.img.xz');
        copyFileSync(`${img}.xz`, p);
        truncateSync(p, Math.floor(statSync(p).size / 2));
        return p;
      }, 'DROVER_IMAGE_CORRUPT', /xz|truncated|damaged/i],
      ['truncated .gz', () => {
        const p = join(dir, 'cut.img.gz');
        copyFileSync(`${img}.gz`, p);
        truncateSync(p, Math.floor(statSync(p).size / 2));
        return p;
      }, 'DROVER_IMAGE_CORRUPT', /gz|truncated|damaged/i],
      ['not an image', () => {
        const p = join(dir, 'notes.txt');
        writeFileSync(p, 'hello\n'.repeat(1000));
        return p;
      }, 'DROVER_IMAGE_FORMAT', /neither|partition table/i],
      ['truncated disk image', () => {
        const p = join(dir, 'short.img');
        copyFileSync(img, p);
        truncateSync(p, 64 * MiB);
        return p;
      }, 'DROVER_IMAGE_CORRUPT', /truncated|past the end/i],
      ['no kernels on the boot partition', () => {
        const p = join(dir, 'nokernel.img');
        copyFileSync(img, p);
        execFileSync('mdel', ['-i', `${p}@@${first.info.partitions.find((x) => x.fs === 'fat')!.offset}`, '::kernel8.img']);
        return p;
      }, 'DROVER_IMAGE_NO_KERNEL', /kernel/i],
      ['no FAT boot partition', () => {
        const p = join(dir, 'noboot.img');
        copyFileSync(img, p);
        // Partition 1 becomes "not a filesystem": wipe its boot sector.
        const fat = first.info.partitions.find((x) => x.fs === 'fat')!;
        execFileSync('dd', ['if=/dev/zero', `of=${p}`, 'bs=512', `seek=${fat.offset / 512}`, 'count=8', 'conv=notrunc', 'status=none']);
        return p;
      }, 'DROVER_IMAGE_NO_BOOT', /FAT boot/i],
      ['no ext4 root', () => {
        const p = join(dir, 'noroot.img');
        copyFileSync(img, p);
        const root = first.info.partitions.find((x) => x.fs === 'ext4')!;
        execFileSync('dd', ['if=/dev/zero', `of=${p}`, 'bs=1024', `seek=${root.offset / 1024 + 1}`, 'count=1', 'conv=notrunc', 'status=none']);
        return p;
      }, 'DROVER_IMAGE_NO_ROOT', /ext4 root/i],
    ];
    for (const [what, make, code, message] of cases) {
      await assert.rejects(ingestOsImage({ source: make(), storeDir: store, agent: false }), { code, message }, what);
      assert.deepEqual(storeEntries(), before, `${what}: nothing left in the store`);
    }
  });
});
