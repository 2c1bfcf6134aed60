// SD-stub cards built by buildSdCard, checked with tools that did not write them: sfdisk reads the
// MBR, mtools reads the files back, fsck.fat checks each filesystem, and our own partition reader
// must agree with all of them.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { prereq, which } from '../../test/helpers/prereq.js';
import { DroverError } from '../domain/errors.js';
import { readPartitionTable, type ReadAt } from './partitions.js';
import { buildSdCard, type CardFile, type CardOptions } from './sdcard.js';

const MiB = 1024 * 1024;
const mtoolsThere = ['mformat', 'mcopy', 'mmd', 'mdir', 'mlabel', 'minfo'].every((t) => which(t) !== null);
// Every missing package gets its own loud line; the first one decides the skip.
const checks = [
  prereq('mformat, mcopy, mmd, mdir, mlabel and minfo', mtoolsThere, 'mtools'),
  prereq('sfdisk', which('sfdisk') !== null, 'fdisk'),
  prereq('fsck.fat', which('fsck.fat') !== null, 'dosfstools'),
];
const tools = checks.find((c) => c.skip) ?? { skip: false as const };

const root = mkdtempSync(join(tmpdir(), 'drover-sdcard-'));
after(() => rmSync(root, { recursive: true, force: true }));

function reader(path: string): ReadAt {
  return async (offset, length) => {
    const fd = openSync(path, 'r');
    try {
      const b = Buffer.alloc(length);
      return b.subarray(0, readSync(fd, b, 0, length, offset));
    } finally {
      closeSync(fd);
    }
  };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C', MTOOLS_SKIP_CHECK: '1' } });
/** A fresh, empty directory per case, so "nothing left beside out" is checked exactly. */
let n = 0;
const freshDir = () => {
  const d = join(root, `case-${++n}`);
  mkdirSync(d);
  return d;
};

async function rejectsWith(p: Promise<unknown>, code: string, re: RegExp) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof DroverError, `expected a DroverError, got ${String(e)}`);
    assert.equal(e.code, code);
    assert.match(e.message, re);
    return true;
  });
}

describe('SD stub card', tools, () => {
  const src = join(root, 'src');
  mkdirSync(join(src, 'overlays'), { recursive: true });
  const blob = randomBytes(3 * MiB);
  const files: Record<string, Buffer> = {
    'kernel_2712.img': blob,
    'config.txt': Buffer.from('arm_64bit=1\nkernel=kernel_2712.img\ninitramfs drover-initramfs.cpio.zst followkernel\n'),
    'cmdline.txt': Buffer.from('console=serial0,115200 drover.server=http://10.0.0.1:8080\n'),
    'overlays/a.dtbo': randomBytes(1500),
    'drover/Drover Config With A Long Name.json': Buffer.from('{"server":"http://10.0.0.1:8080"}\n'),
  };
  // The blob's host name differs from its card name (copied alone); config.txt, cmdline.txt and
  // a.dtbo keep theirs (copied in batches per directory); the JSON comes from a Buffer via stdin.
  writeFileSync(join(src, 'blob.bin'), blob);
  for (const name of ['config.txt', 'cmdline.txt', 'overlays/a.dtbo']) writeFileSync(join(src, name), files[name]!);
  const cardFiles: CardFile[] = [
    { path: 'kernel_2712.img', source: join(src, 'blob.bin') },
    { path: 'config.txt', source: join(src, 'config.txt') },
    { path: 'cmdline.txt', source: join(src, 'cmdline.txt') },
    { path: 'overlays/a.dtbo', source: join(src, 'overlays/a.dtbo') },
    { path: 'drover/Drover Config With A Long Name.json', source: files['drover/Drover Config With A Long Name.json']! },
  ];

  const dir = join(root, 'card');
  const img = join(dir, 'card.img');
  let layout: Awaited<ReturnType<typeof buildSdCard>>;
  const phases: string[] = [];
  before(async () => {
    mkdirSync(dir);
    // A small cache keeps fsck of the extracted partition quick; the default size is checked below.
    layout = await buildSdCard({
      out: img,
      files: cardFiles,
      cacheSizeMiB: 128,
      diskId: '0xD40E5EED',
      onProgress: (p) => {
        if (phases.at(-1) !== p.phase) phases.push(p.phase);
        assert.ok(p.done <= p.total);
      },
    });
  });
  const at = (i: number) => `${img}@@${layout.partitions[i]!.offset}`;

  it('returns the layout: FAT32 LBA partitions at 4 MiB boundaries, the boot one 256 MiB by default', () => {
    assert.deepEqual(layout, {
      sizeBytes: (8192 + 256 * 2048 + 128 * 2048) * 512,
      partitions: [
        { number: 1, offset: 4 * MiB, size: 256 * MiB, type: 0x0c, label: 'DROVERBOOT' },
        { number: 2, offset: 260 * MiB, size: 128 * MiB, type: 0x0c, label: 'DROVERCACHE' },
      ],
      diskId: '0xd40e5eed',
    });
    assert.equal(statSync(img).size, layout.sizeBytes);
    assert.deepEqual(phases, ['layout', 'format', 'copy', 'done']);
    assert.deepEqual(readdirSync(dir), ['card.img']);
  });

  it('has an MBR that sfdisk reads as written', () => {
    const t = JSON.parse(run('sfdisk', ['--json', img])).partitiontable;
    assert.equal(t.label, 'dos');
    assert.equal(t.id, '0xd40e5eed');
    assert.deepEqual(t.partitions.map((p: { start: number; size: number; type: string }) => [p.start, p.size, p.type]), [[8192, 256 * 2048, 'c'], [(260 * MiB) / 512, 128 * 2048, 'c']]);
    const mbr = readFileSync(img).subarray(0, 512);
    for (const e of [446, 462]) assert.deepEqual([...mbr.subarray(e, e + 8)], [0, 0xfe, 0xff, 0xff, 0x0c, 0xfe, 0xff, 0xff]);
    assert.equal(mbr.readUInt16LE(510), 0xaa55);
  });

  it('is read the same by our partition reader, with FAT on both partitions', async () => {
    const t = await readPartitionTable(reader(img), statSync(img).size);
    assert.equal(t.scheme, 'mbr');
    assert.deepEqual(t.partitions.map((p) => [p.number, p.offset, p.size, p.type, p.fs]), layout.partitions.map((p) => [p.number, p.offset, p.size, '0c', 'fat']));
  });

  it('holds the files byte for byte, long names and directories included', () => {
    const listed = run('mdir', ['-/', '-b', '-i', at(0), '::/']).split('\n').filter(Boolean).sort();
    assert.deepEqual(listed, ['::/cmdline.txt', '::/config.txt', '::/drover/', '::/drover/Drover Config With A Long Name.json', '::/kernel_2712.img', '::/overlays/', '::/overlays/a.dtbo']);
    for (const [path, content] of Object.entries(files)) {
      const back = execFileSync('mcopy', ['-i', at(0), `::${path}`, '-'], { maxBuffer: 16 * MiB });
      assert.equal(sha(back), sha(content), path);
    }
    assert.equal(run('mtype', ['-i', at(0), '::config.txt']), files['config.txt']!.toString());
    // The cache starts empty (mdir -b errors on an empty root, so read the long listing).
    assert.match(run('mdir', ['-i', at(1), '::/']), /No files/);
  });

  it('labels both filesystems, FAT32 with the partition start as hidden sectors', () => {
    assert.match(run('mlabel', ['-s', '-i', at(0), '::']), /Volume label is DROVERBOOT\s*$/);
    assert.match(run('mlabel', ['-s', '-i', at(1), '::']), /Volume label is DROVERCACHE\s*$/);
    for (const [i, p] of layout.partitions.entries()) {
      const info = run('minfo', ['-i', at(i), '::']);
      assert.match(info, /disk type="FAT32 {3}"/);
      assert.match(info, new RegExp(`hidden sectors: ${p.offset / 512}\\n`));
    }
  });

  it('passes fsck.fat on each partition', () => {
    for (const p of layout.partitions) {
      const part = join(root, `part${p.number}.img`);
      execFileSync('dd', [`if=${img}`, `of=${part}`, 'bs=1M', `skip=${p.offset / MiB}`, `count=${p.size / MiB}`, 'conv=sparse', 'status=none']);
      // -n: check only; exit status 0 means no errors found.
      const out = execFileSync('fsck.fat', ['-n', part], { encoding: 'utf8' });
      assert.doesNotMatch(out, /dirty|error|lost|fix/i, out);
      rmSync(part);
    }
  });

  it('defaults to a sparse 4096 MiB cache, and 0 leaves the cache out', async () => {
    const d = freshDir();
    const full = await buildSdCard({ out: join(d, 'full.img'), files: [{ path: 'config.txt', source: Buffer.from('x') }] });
    assert.deepEqual(full.partitions.map((p) => [p.offset / MiB, p.size / MiB]), [[4, 256], [260, 4096]]);
    assert.match(full.diskId, /^0x[0-9a-f]{8}$/);
    assert.ok(statSync(join(d, 'full.img')).blocks * 512 < 64 * MiB, 'the image is sparse');
    const t = JSON.parse(run('sfdisk', ['--json', join(d, 'full.img')])).partitiontable;
    assert.equal(t.partitions[1].size, 4096 * 2048);

    const lone = await buildSdCard({ out: join(d, 'lone.img'), files: [], cacheSizeMiB: 0, bootSizeMiB: 66 });
    assert.deepEqual(lone.partitions.map((p) => [p.number, p.size / MiB]), [[1, 66]]);
    assert.equal(JSON.parse(run('sfdisk', ['--json', join(d, 'lone.img')])).partitiontable.partitions.length, 1);
    rmSync(d, { recursive: true });
  });

  describe('a failed build leaves nothing behind', () => {
    it('a missing source file', async () => {
      const d = freshDir();
      await rejectsWith(buildSdCard({ out: join(d, 'c.img'), files: [{ path: 'kernel8.img', source: join(d, 'nope.img') }] }), 'DROVER_VALIDATION', /does not exist.*nope\.img/);
      assert.deepEqual(readdirSync(d), []);
    });

    it('files that fit the partition but not its FAT32 filesystem', async () => {
      const d = freshDir();
      const big = join(root, 'sparse-63M.bin');
      writeFileSync(big, '');
      truncateSync(big, 63 * MiB);
      await rejectsWith(buildSdCard({ out: join(d, 'c.img'), files: [{ path: 'big.bin', source: big }], bootSizeMiB: 64, cacheSizeMiB: 0 }), 'DROVER_VALIDATION', /need \d+ MiB on the boot partition but its FAT32 filesystem holds \d+ MiB.*bootSizeMiB/);
      assert.deepEqual(readdirSync(d), []);
      await rejectsWith(buildSdCard({ out: join(d, 'c.img'), files: [{ path: 'big.bin', source: big }, { path: 'more.bin', source: big }], bootSizeMiB: 64 }), 'DROVER_VALIDATION', /total 126 MiB, more than the 64 MiB/);
      assert.deepEqual(readdirSync(d), []);
    });

    it('a failure halfway through copying, and an existing card stays as it was', async () => {
      const d = freshDir();
      const out = join(d, 'c.img');
      writeFileSync(out, 'the previous card');
      const o: CardOptions = {
        out,
        files: cardFiles,
        cacheSizeMiB: 0,
        onProgress: (p) => {
          if (p.phase === 'copy' && p.done > 0) throw new Error('interrupted');
        },
      };
      await assert.rejects(buildSdCard(o), /interrupted/);
      assert.deepEqual(readdirSync(d), ['c.img']);
      assert.equal(readFileSync(out, 'utf8'), 'the previous card');
    });

    it('mtools missing: the error names the Debian package', async () => {
      const d = freshDir();
      const path = process.env.PATH;
      process.env.PATH = join(root, 'no-such-dir');
      try {
        await rejectsWith(buildSdCard({ out: join(d, 'c.img'), files: [], cacheSizeMiB: 0 }), 'DROVER_INTERNAL', /mformat is not installed.*'mtools'/);
      } finally {
        process.env.PATH = path;
      }
      assert.deepEqual(readdirSync(d), []);
    });
  });
});

describe('SD stub card input checks', () => {
  const build = (o: Partial<CardOptions>) => buildSdCard({ out: join(root, 'refused.img'), files: [], ...o });
  const file = (path: string): CardFile => ({ path, source: Buffer.from('x') });

  it('refuses paths that leave the FAT root or are not plain relative paths', async () => {
    for (const p of ['../evil', 'overlays/../../evil', '/etc/passwd', 'a//b', 'a/./b', 'a/', '', '.', 'a\\b', 'C:x', 'x*', 'tab\there', 'größe.txt', 'dot.', ' lead']) {
      await rejectsWith(build({ files: [file(p)] }), 'DROVER_VALIDATION', /path/);
    }
  });

  it('refuses paths FAT would merge, and a file that is also a directory', async () => {
    await rejectsWith(build({ files: [file('config.txt'), file('CONFIG.TXT')] }), 'DROVER_VALIDATION', /same FAT file/);
    await rejectsWith(build({ files: [file('overlays'), file('overlays/a.dtbo')] }), 'DROVER_VALIDATION', /also needed as a directory/);
    await rejectsWith(build({ files: [file('Overlays/a.dtbo'), file('overlays/b.dtbo')] }), 'DROVER_VALIDATION', /two ways/);
  });

  it('refuses bad labels, sizes and disk identifiers', async () => {
    await rejectsWith(build({ bootLabel: 'droverboot' }), 'DROVER_VALIDATION', /bootLabel/);
    await rejectsWith(build({ cacheLabel: 'TWELVE_CHARS' }), 'DROVER_VALIDATION', /cacheLabel/);
    await rejectsWith(build({ bootLabel: 'SAME', cacheLabel: 'SAME' }), 'DROVER_VALIDATION', /different labels/);
    await rejectsWith(build({ bootSizeMiB: 32 }), 'DROVER_VALIDATION', /bootSizeMiB/);
    await rejectsWith(build({ cacheSizeMiB: 1.5 }), 'DROVER_VALIDATION', /cacheSizeMiB/);
    await rejectsWith(build({ diskId: '0x00000000' }), 'DROVER_VALIDATION', /diskId/);
    await rejectsWith(build({ diskId: 'xyz' }), 'DROVER_VALIDATION', /diskId/);
    await rejectsWith(build({ out: join(root, 'a@@b.img') }), 'DROVER_VALIDATION', /@@/);
  });
});
