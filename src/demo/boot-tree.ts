// A small synthetic Pi boot tree (firmware, kernels, DTBs, overlays, config.txt, cmdline.txt)
// with the right names and plausible sizes, for the demo and fast tests. It boots virtual Pis
// only; the realistic tree from Debian packages is test/fixtures/build-boot-tree.sh.
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Deterministic pseudo-random bytes, so trees built twice are identical. */
function bytes(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(seed).digest();
  for (let off = 0; off < size; off += block.length) {
    block.copy(out, off);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

export const SYNTHETIC_FILES: Record<string, number> = {
  'bootcode.bin': 52_000,
  'start.elf': 2_900_000,
  'fixup.dat': 7_300,
  'start4.elf': 2_250_000,
  'fixup4.dat': 5_400,
  'kernel8.img': 8_500_000,
  'kernel_2712.img': 9_100_000,
  'initramfs8': 1_200_000,
  'bcm2710-rpi-3-b.dtb': 32_000,
  'bcm2710-rpi-3-b-plus.dtb': 33_000,
  'bcm2711-rpi-4-b.dtb': 52_000,
  'bcm2712-rpi-5-b.dtb': 76_000,
  'overlays/vc4-kms-v3d.dtbo': 3_000,
  'overlays/disable-bt.dtbo': 1_200,
};

export function makeBootTree(dir: string, variant = 'a'): string {
  for (const [name, size] of Object.entries(SYNTHETIC_FILES)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), bytes(`${variant}:${name}`, size));
  }
  writeFileSync(join(dir, 'config.txt'), '# Raspberry Pi firmware settings\n[all]\narm_64bit=1\nenable_uart=1\n[pi4]\narm_boost=1\n');
  writeFileSync(join(dir, 'cmdline.txt'), 'console=serial0,115200 console=tty1 root=PARTUUID=deadbeef-02 rootfstype=ext4 fsck.repair=yes rootwait drover.stale=1\n');
  return dir;
}
