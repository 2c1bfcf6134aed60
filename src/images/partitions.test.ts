// Partition tables written by real sfdisk (util-linux), with real mkfs.vfat and mke2fs
// filesystems in them, read back without loop devices.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, openSync, readSync, closeSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { prereq, which } from '../../test/helpers/prereq.js';
import { bootAndRoot, readPartitionTable, type ReadAt } from './partitions.js';

const tools = which('sfdisk') !== null && which('mkfs.vfat') !== null && which('mke2fs') !== null;
const MiB = 1024 * 1024;

function reader(path: string): ReadAt {
  return async (offset, length) => {
    const fd = openSync(path, 'r');
    try {
      const b = Buffer.alloc(length);
      const n = readSync(fd, b, 0, length, offset);
      return b.subarray(0, n);
    } finally {
      closeSync(fd);
    }
  };
}

/** Puts a filesystem made in a separate file into the image at `offset`. */
function place(img: string, fsFile: string, offset: number) {
  execFileSync('dd', [`if=${fsFile}`, `of=${img}`, 'bs=512', `seek=${offset / 512}`, 'conv=notrunc', 'status=none']);
}

describe('partition tables', prereq('sfdisk, mkfs.vfat and mke2fs', tools, 'fdisk dosfstools e2fsprogs'), () => {
  const dir = mkdtempSync(join(tmpdir(), 'drover-parts-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const fat = join(dir, 'fs-fat.bin');
  const ext = join(dir, 'fs-ext4.bin');
  truncateSync((writeFileSync(fat, ''), fat), 8 * MiB);
  execFileSync('mkfs.vfat', ['-F', '32', '-n', 'bootfs', fat], { stdio: 'ignore' });
  execFileSync('mke2fs', ['-q', '-t', 'ext4', '-F', ext, '8M'], { stdio: 'ignore' });

  const make = (name: string, script: string, placeAt: [string, number][]) => {
    const img = join(dir, name);
    writeFileSync(img, '');
    truncateSync(img, 40 * MiB);
    execFileSync('sfdisk', ['--quiet', '--no-reread', '--no-tell-kernel', img], { input: script });
    for (const [f, off] of placeAt) place(img, f, off);
    return img;
  };

  it('reads an MBR image laid out like Raspberry Pi OS (FAT32 LBA + Linux)', async () => {
    const img = make('mbr.img', 'label: dos\nstart=8192, size=16384, type=c\nstart=24576, size=16384, type=83\n', [[fat, 8192 * 512], [ext, 24576 * 512]]);
    const t = await readPartitionTable(reader(img), statSync(img).size);
    assert.equal(t.scheme, 'mbr');
    assert.deepEqual(t.partitions.map((p) => [p.number, p.offset, p.size, p.type, p.fs]), [[1, 4 * MiB, 8 * MiB, '0c', 'fat'], [2, 12 * MiB, 8 * MiB, '83', 'ext4']]);
    const { boot, root } = bootAndRoot(t);
    assert.equal(boot.number, 1);
    assert.equal(root.number, 2);
  });

  it('reads logical partitions in an extended partition', async () => {
    const img = make('extended.img', 'label: dos\nstart=2048, size=16384, type=c\nstart=20480, size=40960, type=5\nstart=22528, size=16384, type=83\n', [[fat, 2048 * 512], [ext, 22528 * 512]]);
    const t = await readPartitionTable(reader(img), statSync(img).size);
    assert.deepEqual(t.partitions.map((p) => [p.number, p.fs]), [[1, 'fat'], [5, 'ext4']]);
  });

  it('reads GPT with names and type GUIDs, and checks its checksums', async () => {
    const img = make('gpt.img', 'label: gpt\nstart=2048, size=16384, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="boot"\nstart=18432, size=16384, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="rootfs"\n', [[fat, 2048 * 512], [ext, 18432 * 512]]);
    const t = await readPartitionTable(reader(img), statSync(img).size);
    assert.equal(t.scheme, 'gpt');
    assert.deepEqual(t.partitions.map((p) => [p.number, p.type, p.name, p.fs]), [
      [1, 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B', 'boot', 'fat'],
      [2, '0FC63DAF-8483-4772-8E79-3D69D8477DE4', 'rootfs', 'ext4'],
    ]);
    // One flipped byte in the partition array: refused, not misread.
    const fd = openSync(img, 'r+');
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, 1024 + 40);
    b[0] = b[0]! ^ 0xff;
    execFileSync('true');
    const { writeSync } = await import('node:fs');
    writeSync(fd, b, 0, 1, 1024 + 40);
    closeSync(fd);
    await assert.rejects(readPartitionTable(reader(img), statSync(img).size), { code: 'DROVER_IMAGE_CORRUPT', message: /checksum/ });
  });

  it('refuses a truncated image, a bare filesystem, and an image without a root', async () => {
    const img = make('trunc.img', 'label: dos\nstart=8192, size=16384, type=c\nstart=24576, size=16384, type=83\n', [[fat, 8192 * 512]]);
    await assert.rejects(readPartitionTable(reader(img), 16 * MiB), { code: 'DROVER_IMAGE_CORRUPT', message: /truncated/ });
    await assert.rejects(readPartitionTable(reader(ext), statSync(ext).size), { code: 'DROVER_IMAGE_FORMAT', message: /no partition table/ });
    const t = await readPartitionTable(reader(img), statSync(img).size);
    assert.throws(() => bootAndRoot(t), { code: 'DROVER_IMAGE_NO_ROOT', message: /no ext4 root/ });
  });
});
