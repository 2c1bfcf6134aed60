// Small helpers shared by the repositories.
import { DroverError } from '../../domain/errors.js';

/** True when a database error is a unique/primary-key violation in SQLite or PostgreSQL. */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string } | undefined;
  return e?.code === '23505' || e?.code === 'SQLITE_CONSTRAINT_UNIQUE' || e?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

export function parseJson<T>(text: string, fallback: T): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
}

/** Cursors are opaque to clients: base64url of the last key on the page. */
export function encodeCursor(key: string | number): string {
  return Buffer.from(String(key), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): string {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!text || text.length > 200 || encodeCursor(text) !== cursor) {
    throw new DroverError('DROVER_INVALID_CURSOR');
  }
  return text;
}

/** Escapes LIKE wildcards so user search text matches literally. */
export function likeEscape(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}
