// The TFTP half of a Pi's network boot, model by model, in the order the real bootloaders ask
// (docs/pi-netboot.md §3): prefix probe, firmware, config.txt (read and obeyed: kernel=,
// initramfs, dtoverlay=), device tree, overlays, cmdline.txt, kernel, initramfs; with the probes
// that are expected to fail. Reports what was fetched, with checksums and timings.
import { createHash } from 'node:crypto';
import type { PiHardware } from './models.js';
import { piFetch, piProbe, type PiTftpOptions } from './tftp-client.js';

export interface FetchedFile {
  path: string;
  status: 'ok' | 'not-found' | 'error';
  /** Whether a not-found was expected (probes the firmware makes on every boot). */
  optional: boolean;
  bytes: number;
  sha256: string | null;
  ms: number;
  error?: string;
}

export interface TftpBootReport {
  ok: boolean;
  reason?: string;
  prefix: string;
  files: FetchedFile[];
  bytes: number;
  ms: number;
  cmdline: string | null;
  configTxt: string | null;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const DTB: Record<PiHardware['model'], string> = {
  pi3b: 'bcm2710-rpi-3-b.dtb',
  'pi3b+': 'bcm2710-rpi-3-b-plus.dtb',
  pi4: 'bcm2711-rpi-4-b.dtb',
  pi5: 'bcm2712-rpi-5-b.dtb',
};

/** What config.txt tells the firmware to load. */
export function readConfigTxt(text: string, model: PiHardware['model']): { kernel: string | null; initramfs: string | null; overlays: string[] } {
  let kernel: string | null = null;
  let initramfs: string | null = null;
  const overlays: string[] = [];
  let active = true;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const section = /^\[(\w+)\]$/.exec(line);
    if (section) {
      const f = section[1]!;
      active = f === 'all' || f === model.replace('+', '') || (f === 'pi3+' && model === 'pi3b+');
      continue;
    }
    if (!active) continue;
    let m;
    if ((m = /^kernel=(\S+)/.exec(line))) kernel = m[1]!;
    else if ((m = /^initramfs\s+(\S+)/.exec(line))) initramfs = m[1]!;
    else if ((m = /^dtoverlay=([^,\s]+)/.exec(line))) overlays.push(m[1]!);
  }
  return { kernel, initramfs, overlays };
}

export async function tftpBoot(hw: PiHardware, tftp: PiTftpOptions): Promise<TftpBootReport> {
  const t0 = Date.now();
  const files: FetchedFile[] = [];
  let cmdline: string | null = null;
  let configTxt: string | null = null;
  const get = async (path: string, optional = false): Promise<Buffer | null> => {
    const r = await piFetch(tftp, path);
    files.push({
      path,
      status: r.status,
      optional,
      bytes: r.status === 'ok' ? r.data.length : 0,
      sha256: r.status === 'ok' ? sha(r.data) : null,
      ms: r.ms,
      ...(r.status === 'error' ? { error: r.message } : {}),
    });
    return r.status === 'ok' ? r.data : null;
  };
  const fail = (reason: string, prefix: string): TftpBootReport => ({
    ok: false, reason, prefix, files, bytes: files.reduce((n, f) => n + f.bytes, 0), ms: Date.now() - t0, cmdline, configTxt,
  });

  // The prefix probe decides whether every later path carries the serial.
  const serialDir = `${hw.serial}/`;
  let P = '';
  if (hw.model === 'pi3b' || hw.model === 'pi3b+') {
    if (!(await get('bootcode.bin'))) return fail('bootcode.bin not served', P);
    await get('bootsig.bin', true);
  }
  const probeFile = hw.model === 'pi5' ? 'config.txt' : hw.model === 'pi4' ? 'start4.elf' : 'start.elf';
  const probe = await piProbe(tftp, `${serialDir}${probeFile}`);
  files.push({ path: `${serialDir}${probeFile}`, status: probe.status, optional: true, bytes: 0, sha256: null, ms: probe.ms });
  if (probe.status === 'ok') P = serialDir;

  await get(`${P}autoboot.txt`, true);
  const config1 = await get(`${P}config.txt`);
  if (!config1) return fail('config.txt not served', P);
  if (hw.model === 'pi4') {
    await get(`${P}pieeprom.upd`, true);
    await get(`${P}recover4.elf`, true);
    if (!(await get(`${P}start4.elf`)) || !(await get(`${P}fixup4.dat`))) return fail('firmware not served', P);
  } else if (hw.model === 'pi3b' || hw.model === 'pi3b+') {
    await get(`${P}recovery.elf`, true);
    if (!(await get(`${P}start.elf`)) || !(await get(`${P}fixup.dat`))) return fail('firmware not served', P);
  } else {
    await get(`${P}pieeprom.upd`, true);
  }
  // The firmware reads config.txt again once it runs.
  const config = (await get(`${P}config.txt`)) ?? config1;
  configTxt = config.toString('utf8');
  const cfg = readConfigTxt(configTxt, hw.model);
  if (!(await get(`${P}${DTB[hw.model]}`))) return fail(`${DTB[hw.model]} not served`, P);
  for (const o of cfg.overlays) await get(`${P}overlays/${o}.dtbo`, true);
  const cmd = await get(`${P}cmdline.txt`);
  cmdline = cmd ? cmd.toString('utf8') : null;
  if (hw.model === 'pi3b' || hw.model === 'pi3b+') await get(`${P}armstub8-32.bin`, true);
  const kernels = cfg.kernel ? [cfg.kernel] : hw.model === 'pi5' ? ['kernel_2712.img', 'kernel8.img'] : ['kernel8.img'];
  let kernel: Buffer | null = null;
  for (let i = 0; i < kernels.length && !kernel; i++) kernel = await get(`${P}${kernels[i]}`, i < kernels.length - 1);
  if (!kernel) return fail('no kernel served', P);
  if (cfg.initramfs && !(await get(`${P}${cfg.initramfs}`))) return fail(`initramfs ${cfg.initramfs} not served`, P);
  const broken = files.find((f) => f.status === 'error');
  if (broken) return fail(`${broken.path}: ${broken.error}`, P);
  return { ok: true, prefix: P, files, bytes: files.reduce((n, f) => n + f.bytes, 0), ms: Date.now() - t0, cmdline, configTxt };
}
