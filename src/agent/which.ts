// Finding a program on PATH without spawning a shell: the agent checks once whether vcgencmd,
// journalctl and systemctl exist, so a missing tool is a clear message, not an ENOENT per call.
// The controller uses the synchronous form for its tools (mkfs.ext4, dnsmasq, ip).
import { accessSync, constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, isAbsolute, join } from 'node:path';

export async function findOnPath(name: string, path = process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'): Promise<string | null> {
  if (isAbsolute(name)) return (await executable(name)) ? name : null;
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    if (await executable(p)) return p;
  }
  return null;
}

async function executable(p: string): Promise<boolean> {
  try {
    await access(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** findOnPath, synchronously, also looking in `extraDirs` (e.g. the sbin directories a user's PATH may lack). */
export function findOnPathSync(name: string, extraDirs: string[] = [], path = process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin'): string | null {
  const dirs = isAbsolute(name) ? [''] : [...path.split(delimiter), ...extraDirs];
  for (const dir of dirs) {
    if (!isAbsolute(name) && !dir) continue;
    const p = isAbsolute(name) ? name : join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return null;
}
