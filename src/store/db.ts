// Opens the database named by a URL (SQLite file or postgres://) and applies migrations.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, type Migration, type MigrationProvider } from 'kysely';
import pg from 'pg';
import { DroverError } from '../domain/errors.js';
import { initial } from './migrations/0001_initial.js';
import { health } from './migrations/0002_health.js';
import type { Database } from './schema.js';

export type Dialect = 'sqlite' | 'postgres';

export interface OpenedDatabase {
  db: Kysely<Database>;
  dialect: Dialect;
  /** Human-readable location with any password removed. */
  location: string;
}

export function dialectOf(url: string): Dialect {
  return /^postgres(ql)?:\/\//i.test(url) ? 'postgres' : 'sqlite';
}

export function redactUrl(url: string): string {
  return url.replace(/(\/\/[^:/@]+:)[^@]*@/, '$1***@');
}

/** A SQLite URL is a plain path, `sqlite:PATH` or `file:PATH`. */
function sqlitePath(url: string): string {
  return url.replace(/^(sqlite|file):(\/\/)?/i, '');
}

export async function openDatabase(url: string): Promise<OpenedDatabase> {
  const dialect = dialectOf(url);
  try {
    if (dialect === 'sqlite') {
      const file = sqlitePath(url);
      if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
      const sqlite = new SQLite(file);
      // WAL for concurrent readers; FULL sync because Pis and their controllers lose power.
      sqlite.pragma('journal_mode = WAL');
      sqlite.pragma('synchronous = FULL');
      sqlite.pragma('busy_timeout = 5000');
      sqlite.pragma('foreign_keys = ON');
      const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
      return { db, dialect, location: file };
    }
    const pool = new pg.Pool({
      connectionString: url,
      max: 10,
      connectionTimeoutMillis: 5000,
      // int8 (event ids, counts) as numbers: they stay far below 2^53.
      types: { getTypeParser: (oid: number, format?: any) => (oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) },
    } as pg.PoolConfig);
    // An idle client that loses its server emits 'error'; without a listener that would crash.
    pool.on('error', () => undefined);
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    return { db, dialect, location: redactUrl(url) };
  } catch (err) {
    throw new DroverError('DROVER_DATABASE_UNREACHABLE', `Cannot open database ${redactUrl(url)}: ${(err as Error).message}`);
  }
}

export function migrationsFor(dialect: Dialect): Record<string, Migration> {
  return { '0001_initial': initial(dialect), '0002_health': health(dialect) };
}

export async function migrate(db: Kysely<Database>, dialect: Dialect): Promise<void> {
  const provider: MigrationProvider = { getMigrations: async () => migrationsFor(dialect) };
  const migrator = new Migrator({ db, provider });
  let result;
  try {
    result = await migrator.migrateToLatest();
  } catch (err) {
    throw new DroverError('DROVER_DATABASE_UNREACHABLE', `Database migration failed: ${(err as Error).message}`);
  }
  if (result.error) {
    const failed = result.results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new DroverError('DROVER_DATABASE_UNREACHABLE', `Migration ${failed} failed: ${(result.error as Error).message}`);
  }
}
