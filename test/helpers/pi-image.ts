// The Pi-like OS image fixture (test/fixtures/build-pi-image.sh): built once from Debian
// packages, cached, then copied per test. Tools it and the ingest need are checked here.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { prereq, which } from './prereq.js';

const root = new URL('../../', import.meta.url).pathname;

export const imageTools: [string, string][] = [
  ['sfdisk', 'fdisk'], ['mcopy', 'mtools'], ['mformat', 'mtools'], ['mke2fs', 'e2fsprogs'], ['debugfs', 'e2fsprogs'],
  ['tar2sqfs', 'squashfs-tools-ng'], ['rdsquashfs', 'squashfs-tools-ng'], ['xz', 'xz-utils'], ['dpkg-deb', 'dpkg'], ['cpio', 'cpio'],
];

/** The skip option for suites that need the fixture image and the ingest tools. */
export function imagePrereq(): { skip: string | false } {
  const missing = imageTools.filter(([cmd]) => which(cmd, ['/usr/sbin', '/sbin']) === null);
  return prereq(missing.map(([c]) => c).join(', ') || 'image tools', missing.length === 0, [...new Set(missing.map(([, p]) => p))].join(' ') || 'none');
}

/** Builds (or copies from the cache) the fixture disk image variant into `out`. */
export function buildPiImage(out: string, variant = 'a'): string {
  execFileSync('bash', [join(root, 'test/fixtures/build-pi-image.sh'), out, variant], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 600_000 });
  return out;
}
