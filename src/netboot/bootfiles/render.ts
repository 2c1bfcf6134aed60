// Per-device rendering of the two text files the firmware reads: cmdline.txt (kernel arguments)
// and config.txt (firmware settings). Pure: original text + device facts in, text out.

export interface RenderContext {
  serverUrl: string;
  deviceId: string;
  serial: string;
  hostname: string | null;
  token: string;
  bootMode: string;
  imageId: string;
  /** Initramfs file in the image for this kernel, if any. */
  initramfs: string | null;
  /** OS images: Drover's initramfs per kernel file (kernel8.img → drover-initramfs8). */
  osKernels?: { file: string; initramfs: string }[] | undefined;
  /** Boot mode nfs: the kernel arguments naming the image root and the device layer. */
  nfsArgs?: string[] | undefined;
}

/** NFS arguments an image's own cmdline.txt may carry; Drover renders its own in boot mode nfs. */
const NFS_ARGS = /^(nfsroot|ip|nfsrootdebug)(=|$)/;

/** Arguments that point the kernel at the SD card's root; a RAM-booted Pi has none. */
export const SD_ROOT_ARGS = /^(root|rootfstype|init|fsck\.repair|fsck\.mode|resize|splash|plymouth\.[a-z-]+|systemd\.run[a-z_]*)(=|$)/;

/** Drover's own arguments; any `drover.*` already in the original are replaced. */
export function droverArgs(c: RenderContext): string[] {
  return [
    `drover.server=${c.serverUrl}`,
    `drover.node=${c.deviceId}`,
    `drover.serial=${c.serial}`,
    `drover.token=${c.token}`,
    `drover.image=${c.imageId}`,
    `drover.boot=${c.bootMode}`,
    ...(c.hostname ? [`drover.hostname=${c.hostname}`] : []),
  ];
}

export function renderCmdline(original: string | null, c: RenderContext): string {
  const base = (original ?? 'console=serial0,115200 console=tty1 rootwait')
    .replace(/\r?\n/g, ' ')
    .split(/\s+/)
    .filter((a) => a && !a.startsWith('drover.') && !(c.osKernels && SD_ROOT_ARGS.test(a)) && !(c.nfsArgs && (NFS_ARGS.test(a) || a === 'ro' || a === 'rw')));
  // cmdline.txt must be a single line.
  return `${[...base, ...(c.nfsArgs ?? []), ...droverArgs(c)].join(' ')}\n`;
}

/** Which Drover initramfs each model's firmware loads: kernel8 for all, kernel_2712 for the Pi 5. */
export function initramfsLines(kernels: { file: string; initramfs: string }[]): string[] {
  const by = new Map(kernels.map((k) => [k.file, k.initramfs]));
  const first = by.get('kernel8.img') ?? by.get('kernel7l.img') ?? by.get('kernel7.img') ?? kernels[0]?.initramfs;
  const lines = first ? [`initramfs ${first} followkernel`] : [];
  if (by.has('kernel_2712.img')) lines.push('[pi5]', `initramfs ${by.get('kernel_2712.img')} followkernel`, '[all]');
  return lines;
}

/** config.txt without the image's own initramfs lines: that initramfs would boot from the SD card. */
export function withoutInitramfsLines(configTxt: string): string {
  return configTxt.split(/\r?\n/).filter((l) => !/^\s*(auto_initramfs|initramfs)\b/.test(l)).join('\n').replace(/\s*$/, '');
}

export function renderConfigTxt(original: string | null, c: RenderContext): string {
  if (c.osKernels) {
    const text = withoutInitramfsLines(original ?? '');
    return `${[text, '', `# --- rendered by Drover for ${c.deviceId} (serial ${c.serial}); edits here are overwritten ---`, '[all]', ...initramfsLines(c.osKernels)].join('\n')}\n`;
  }
  const text = (original ?? '').replace(/\s*$/, '');
  const lines = [
    text,
    '',
    `# --- rendered by Drover for ${c.deviceId} (serial ${c.serial}); edits here are overwritten ---`,
    '[all]',
  ];
  if (c.initramfs && !/^\s*(initramfs|auto_initramfs)\b/m.test(text)) lines.push(`initramfs ${c.initramfs} followkernel`);
  return `${lines.join('\n')}\n`;
}
