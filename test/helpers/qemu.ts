// QEMU boots for the end-to-end tests: an aarch64 virt machine (cortex-a72) with user networking
// (the guest's 10.0.2.2 is this host's loopback), run until the guest powers off, and the files a
// netbooting Pi gets from the controller's HTTP mirror of its boot tree.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { which } from './prereq.js';

export const qemuAarch64 = which('qemu-system-aarch64');

export interface QemuBoot {
  name: string;
  kernel: string;
  initrd: string;
  cmdline: string;
  /** A raw disk attached as virtio-blk (the SD card). */
  disk?: string | undefined;
  /** Where the console log `<name>.console.log` is written. */
  dir: string;
  timeoutMs: number;
  /** Running QEMUs, for the suite's after() to kill. */
  children: Set<ChildProcess>;
}

/** Boots until the guest powers off (-no-reboot: a reboot ends it too); returns the console. */
export function qemuBoot(o: QemuBoot): Promise<string> {
  const child = spawn(qemuAarch64!, [
    '-M', 'virt', '-cpu', 'cortex-a72', '-m', '1024', '-smp', '2', '-accel', 'tcg,thread=multi',
    '-nographic', '-monitor', 'none', '-no-reboot',
    '-kernel', o.kernel, '-initrd', o.initrd, '-append', `${o.cmdline.trim()} console=ttyAMA0`,
    '-netdev', 'user,id=n0', '-device', 'virtio-net-pci,netdev=n0',
    ...(o.disk ? ['-drive', `file=${o.disk},if=none,id=sd,format=raw`, '-device', 'virtio-blk-pci,drive=sd'] : []),
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  o.children.add(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${o.name}: QEMU did not finish in ${o.timeoutMs / 1000}s. Console:\n${out.slice(-4000)}`));
    }, o.timeoutMs);
    child.on('exit', () => {
      clearTimeout(timer);
      o.children.delete(child);
      writeFileSync(join(o.dir, `${o.name}.console.log`), out);
      resolve(out);
    });
  });
}

/** kernel8.img and drover-initramfs8 saved under `dir`, with the rendered config.txt and cmdline.txt. */
export async function netbootFiles(serverUrl: string, serial: string, dir: string, tag: string): Promise<{ kernel: string; initrd: string; cmdline: string; config: string }> {
  const get = async (f: string) => Buffer.from(await (await fetch(`${serverUrl}/boot/v1/files/${serial}/${f}`)).arrayBuffer());
  const kernel = join(dir, `kernel-${tag}`);
  const initrd = join(dir, `initrd-${tag}`);
  writeFileSync(kernel, await get('kernel8.img'));
  writeFileSync(initrd, await get('drover-initramfs8'));
  return { kernel, initrd, cmdline: (await get('cmdline.txt')).toString(), config: (await get('config.txt')).toString() };
}
