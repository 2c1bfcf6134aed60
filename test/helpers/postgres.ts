// A private PostgreSQL for one test file: initdb into a temp dir, start on a free loopback
// port, drop everything when stopped. Uses Debian's postgresql package.
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function postgresBinDir(): string | null {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root).sort((a, b) => Number(b) - Number(a));
  for (const v of versions) if (existsSync(join(root, v, 'bin', 'initdb')) && existsSync(join(root, v, 'bin', 'pg_ctl'))) return join(root, v, 'bin');
  return null;
}

export { freePort } from '../../src/server/free-port.js';
import { freePort } from '../../src/server/free-port.js';

export interface PrivatePostgres {
  url: string;
  /** The cluster's data directory (postmaster.pid names the server process). */
  dataDir: string;
  /** A fresh, empty database on the same server. */
  createDatabase(name: string): string;
  stop(): void;
}

export interface PostgresOptions {
  /** Durable commits (fsync, full-page writes), as a production server; default off: tests want speed. */
  fsync?: boolean;
  maxConnections?: number;
}

export async function startPostgres(o: PostgresOptions = {}): Promise<PrivatePostgres> {
  const bin = postgresBinDir();
  if (!bin) throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql');
  const dir = mkdtempSync(join(tmpdir(), 'drover-pg-'));
  const asRoot = process.getuid?.() === 0;
  // initdb refuses to run as root; use the postgres account the Debian package creates.
  const run = (cmd: string, args: string[]) => {
    const full = asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args]] : [join(bin, cmd), args];
    const res = spawnSync(full[0] as string, full[1] as string[], { encoding: 'utf8' });
    if (res.status !== 0) throw new Error(`${cmd} failed: ${res.stderr || res.stdout}`);
    return res.stdout;
  };
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
  }
  const data = join(dir, 'data');
  run('initdb', ['-D', data, '-U', 'drover', '-A', 'trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
  const port = await freePort();
  run('pg_ctl', [
    '-D', data, '-w', '-t', '30', '-l', join(dir, 'log'),
    '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1${o.fsync ? '' : ' -c fsync=off -c full_page_writes=off'} -c max_connections=${o.maxConnections ?? 200}`,
    'start',
  ]);
  const base = `postgres://drover@127.0.0.1:${port}`;
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    try {
      run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
    } catch {
      /* already gone */
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', stop);
  return {
    url: `${base}/postgres`,
    dataDir: data,
    createDatabase(name: string) {
      const psql = join(bin, 'psql');
      execFileSync(psql, ['-h', '127.0.0.1', '-p', String(port), '-U', 'drover', '-d', 'postgres', '-c', `create database "${name}"`], { stdio: 'pipe' });
      return `${base}/${name}`;
    },
    stop,
  };
}
