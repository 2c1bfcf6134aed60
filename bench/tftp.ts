// TFTP throughput, side by side in one run: Drover vs dnsmasq, atftpd and tftpd-hpa serving the
// same 8 MiB kernel to 1, 50 and 200 concurrent clients on loopback (curl at blksize 1024 and
// 1468, no windowsize, as Pis fetch), plus atftp clients with windowsize 16 and 64.
// Needs root (port 69). Every client makes one bounded fetch.
//   node --import tsx bench/tftp.ts [--quick] [--servers drover,dnsmasq] [--out bench/results]
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../src/server/free-port.js';

const root = new URL('../', import.meta.url).pathname;
const quick = process.argv.includes('--quick');
const outDir = process.argv.includes('--out') ? process.argv[process.argv.indexOf('--out') + 1]! : join(root, 'bench', 'results');
const only = process.argv.includes('--servers') ? process.argv[process.argv.indexOf('--servers') + 1]!.split(',') : null;
const SIZE = 8 * 1024 * 1024;
const CLIENT_TIMEOUT_MS = 180_000;

interface Server {
  name: string;
  host: string;
  start(dir: string): Promise<ChildProcess>;
}

const peers = execFileSync('bash', [join(root, 'bench/peers.sh')], { encoding: 'utf8' }).trim();

async function waitForTftp(host: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      execFileSync('curl', ['-s', '-o', '/dev/null', '--max-time', '2', `tftp://${host}/kernel8.img`]);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  throw new Error(`no TFTP server answers on ${host}`);
}

const SERVERS: Server[] = [
  {
    name: 'drover',
    host: '127.0.0.5',
    async start(dir) {
      const data = mkdtempSync(join(tmpdir(), 'drover-bench-data-'));
      const api = `127.0.0.1:${await freePort()}`;
      const p = spawn(process.execPath, [join(root, 'bin/drover.js'), 'serve', '--data-dir', data, '--listen', api, '--tftp-listen', '127.0.0.5:69', '--log-level', 'warn'], { stdio: 'ignore' });
      for (let i = 0; i < 100; i++) {
        try {
          readFileSync(join(data, 'initial-admin-token'));
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      await new Promise((r) => setTimeout(r, 1000));
      const token = readFileSync(join(data, 'initial-admin-token'), 'utf8').trim();
      execFileSync(process.execPath, [join(root, 'bin/drover.js'), 'image', 'add-boot-dir', 'bench', dir, '--default'], { env: { ...process.env, DROVER_SERVER: `http://${api}`, DROVER_TOKEN: token } });
      p.once('exit', () => rmSync(data, { recursive: true, force: true }));
      return p;
    },
  },
  {
    name: 'dnsmasq',
    host: '127.0.0.2',
    async start(dir) {
      return spawn('dnsmasq', ['--no-daemon', '--port=0', '--conf-file=/dev/null', '--enable-tftp', `--tftp-root=${dir}`, '--tftp-max=1000', '--listen-address=127.0.0.2', '--bind-interfaces', `--pid-file=${join(dir, '..', 'dnsmasq.pid')}`], { stdio: 'ignore' });
    },
  },
  {
    name: 'atftpd',
    host: '127.0.0.3',
    async start(dir) {
      return spawn(join(peers, 'usr/sbin/atftpd'), ['--daemon', '--no-fork', '--bind-address', '127.0.0.3', '--port', '69', '--user', 'root', '--group', 'root', '--maxthread', '1000', '--logfile', '/dev/null', dir], { stdio: 'ignore' });
    },
  },
  {
    name: 'tftpd-hpa',
    host: '127.0.0.4',
    async start(dir) {
      return spawn(join(peers, 'usr/sbin/in.tftpd'), ['-L', '-a', '127.0.0.4:69', '-u', 'root', '-s', dir], { stdio: 'ignore' });
    },
  },
];

interface Result {
  server: string;
  client: string;
  clients: number;
  blksize: number;
  windowsize: number | null;
  seconds: number;
  mbPerS: number;
  p50: number;
  p99: number;
  failures: number;
}

function fetchOnce(host: string, blksize: number, windowsize: number | null, out: string): Promise<{ ok: boolean; ms: number }> {
  const t0 = Date.now();
  const [cmd, args] =
    windowsize === null
      ? ['curl', ['-s', '-o', out, '--max-time', String(CLIENT_TIMEOUT_MS / 1000), '--tftp-blksize', String(blksize), `tftp://${host}/kernel8.img`]]
      : ['atftp', ['--get', '-r', 'kernel8.img', '-l', out, '--option', `blksize ${blksize}`, '--option', `windowsize ${windowsize}`, host, '69']];
  return new Promise((resolve) => {
    const p = spawn(cmd, args as string[], { stdio: 'ignore' });
    const t = setTimeout(() => p.kill('SIGKILL'), CLIENT_TIMEOUT_MS);
    p.on('exit', (code) => {
      clearTimeout(t);
      let ok = code === 0;
      try {
        ok &&= statSync(out).size === SIZE;
      } catch {
        ok = false;
      }
      rmSync(out, { force: true });
      resolve({ ok, ms: Date.now() - t0 });
    });
  });
}

const pct = (xs: number[], p: number) => xs.sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

async function scenario(server: Server, clients: number, blksize: number, windowsize: number | null, scratch: string): Promise<Result> {
  const t0 = Date.now();
  const runs = await Promise.all(Array.from({ length: clients }, (_, i) => fetchOnce(server.host, blksize, windowsize, join(scratch, `${server.name}-${i}`))));
  const seconds = (Date.now() - t0) / 1000;
  const ok = runs.filter((r) => r.ok);
  return {
    server: server.name,
    client: windowsize === null ? 'curl' : 'atftp',
    clients,
    blksize,
    windowsize,
    seconds,
    mbPerS: (ok.length * SIZE) / 1e6 / seconds,
    p50: pct(runs.map((r) => r.ms), 50) / 1000,
    p99: pct(runs.map((r) => r.ms), 99) / 1000,
    failures: clients - ok.length,
  };
}

async function main() {
  if (process.getuid?.() !== 0) throw new Error('the TFTP benchmark needs root (every server listens on port 69 of its own loopback address)');
  const dir = mkdtempSync(join(tmpdir(), 'drover-bench-tftp-'));
  const tree = join(dir, 'boot');
  const scratch = join(dir, 'scratch');
  mkdirSync(tree);
  mkdirSync(scratch);
  writeFileSync(join(tree, 'kernel8.img'), randomBytes(SIZE));
  writeFileSync(join(tree, 'config.txt'), '[all]\narm_64bit=1\n');
  const matrix: [number, number, number | null][] = quick
    ? [[1, 1024, null], [50, 1024, null], [200, 1024, null]]
    : [[1, 1024, null], [50, 1024, null], [200, 1024, null], [1, 1468, null], [50, 1468, null], [200, 1468, null], [50, 1024, 16], [50, 1468, 64]];
  const results: Result[] = [];
  for (const s of SERVERS.filter((x) => !only || only.includes(x.name))) {
    const proc = await s.start(tree);
    try {
      await waitForTftp(s.host);
      for (const [n, b, w] of matrix) {
        // dnsmasq and tftpd-hpa do not implement windowsize (RFC 7440): skip, not fail.
        if (w !== null && (s.name === 'dnsmasq' || s.name === 'tftpd-hpa')) continue;
        const r = await scenario(s, n, b, w, scratch);
        results.push(r);
        process.stderr.write(`${s.name.padEnd(10)} ${String(n).padStart(3)} clients blksize ${b}${w ? ` windowsize ${w}` : ''}: ${r.mbPerS.toFixed(1)} MB/s, p50 ${r.p50.toFixed(2)} s, p99 ${r.p99.toFixed(2)} s, ${r.failures} failed\n`);
      }
    } finally {
      proc.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 500));
      if (proc.exitCode === null) proc.kill('SIGKILL');
    }
  }
  rmSync(dir, { recursive: true, force: true });

  const rows = results.map((r) => {
    const peersSame = results.filter((x) => x.server !== 'drover' && x.clients === r.clients && x.blksize === r.blksize && x.windowsize === r.windowsize);
    const best = Math.max(...peersSame.map((x) => x.mbPerS), 0);
    return { ...r, vsBestPeer: r.server === 'drover' && best > 0 ? r.mbPerS / best : null };
  });
  const md = [
    `# TFTP benchmark (${new Date().toISOString()}, ${process.arch}, ${execFileSync('nproc', { encoding: 'utf8' }).trim()} cores)`,
    '',
    'One 8 MiB file per client over loopback; curl clients (tsize + blksize, no windowsize) unless a windowsize is shown (atftp).',
    '',
    '| server | client | clients | blksize | windowsize | MB/s | p50 s | p99 s | failed | Drover ÷ best peer |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.server} | ${r.client} | ${r.clients} | ${r.blksize} | ${r.windowsize ?? '-'} | ${r.mbPerS.toFixed(1)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.failures} | ${r.vsBestPeer === null ? '' : r.vsBestPeer.toFixed(2)} |`),
    '',
  ].join('\n');
  mkdirSync(outDir, { recursive: true });
  const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-');
  writeFileSync(join(outDir, `tftp-${stamp}.json`), JSON.stringify(rows, null, 2));
  writeFileSync(join(outDir, `tftp-${stamp}.md`), md);
  process.stdout.write(md);
}

await main();
