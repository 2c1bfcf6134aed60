// Identifiers: a short type prefix, then a time-ordered part and a random part, so ids sort by
// creation time (cursor paging relies on that) and are safe to type in a shell.
import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'; // Crockford base32, lowercase

function base32(bytes: Uint8Array, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += ALPHABET[bytes[i % bytes.length]! % 32];
  return out;
}

export function newId(prefix: 'dev' | 'grp' | 'img' | 'tok' | 'usr' | 'ing' | 'job', now = Date.now()): string {
  const time = now.toString(32).padStart(9, '0');
  return `${prefix}_${time}${base32(randomBytes(8), 8)}`;
}
