// Secrets of power settings (SNMP community, BMC and plug passwords) come inline or from a file;
// a file is read at each action so a rotated secret needs no restart. Its first line is the
// secret, so `echo secret > file` works as expected.
import { readFileSync } from 'node:fs';
import { configError } from './failures.js';

export function readSecret(inline: string | undefined, file: string | undefined, field: string): string | undefined {
  if (file === undefined) return inline;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw configError(`power.${field}`, `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const line = text.split(/\r?\n/, 1)[0] ?? '';
  if (line === '') throw configError(`power.${field}`, `${file} is empty; its first line must hold the secret`);
  return line;
}
