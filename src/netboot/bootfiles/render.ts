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
}

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
    .filter((a) => a && !a.startsWith('drover.'));
  // cmdline.txt must be a single line.
  return `${[...base, ...droverArgs(c)].join(' ')}\n`;
}

export function renderConfigTxt(original: string | null, c: RenderContext): string {
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
