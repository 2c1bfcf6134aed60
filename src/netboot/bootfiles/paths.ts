// Boot-tree path rules: every request path is normalised and confined to its tree. Refused:
// NUL, backslashes, `..` segments, control characters, symlinks that lead out of the tree.
// A leading `/` is normalised away (some TFTP clients send one); the result stays inside.
import { realpath, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';

export class BootPathError extends Error {
  constructor(readonly reason: 'invalid' | 'not-found' | 'outside') {
    super(reason === 'not-found' ? 'File not found' : 'Access violation');
  }
}

/** Returns the path as `a/b/c` (no leading slash, no empty or `.` segments) or throws. */
export function normalizeBootPath(input: string): string {
  if (input.length === 0 || input.length > 1024) throw new BootPathError('invalid');
  if (/[\u0000-\u001f\u007f\\]/.test(input)) throw new BootPathError('invalid');
  const parts = input.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..')) throw new BootPathError('outside');
  if (parts.length === 0) throw new BootPathError('invalid');
  return parts.join('/');
}

/** The real path of `rel` inside `root`, refusing anything that resolves outside it. */
export async function confine(root: string, rel: string): Promise<string> {
  const realRoot = await realpath(root);
  let real: string;
  try {
    real = await realpath(join(realRoot, rel));
  } catch {
    throw new BootPathError('not-found');
  }
  if (real !== realRoot && !real.startsWith(realRoot + sep)) throw new BootPathError('outside');
  const st = await stat(real);
  if (!st.isFile()) throw new BootPathError('not-found');
  return real;
}
