// Bearer tokens: 32 random bytes, shown once, stored only as a sha256 hash. Tokens carry enough
// entropy that a fast hash is safe and lets every request look its token up by index.
import { createHash, randomBytes } from 'node:crypto';

export const TOKEN_PREFIX = 'drv_';

export function generateToken(): { secret: string; hash: string; prefix: string } {
  const secret = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
  return { secret, hash: hashToken(secret), prefix: secret.slice(0, TOKEN_PREFIX.length + 6) };
}

export function hashToken(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Cheap shape check before touching the database. */
export function looksLikeToken(s: string): boolean {
  return s.length === TOKEN_PREFIX.length + 43 && s.startsWith(TOKEN_PREFIX) && /^[\w-]+$/.test(s.slice(TOKEN_PREFIX.length));
}
