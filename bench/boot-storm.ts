// Boot storm: N virtual Pis (default 500, mixed models) power on at once and fetch their whole
// boot set from `drover serve` over loopback TFTP, as the bootloaders do (tsize probe, early
// terminate, lockstep at 1024/1468-byte blocks). Compared with the physical limit here: the same
// bytes over plain loopback TCP. Every Pi makes one bounded boot.
//   node --import tsx bench/boot-storm.ts [--nodes 500]
import { spawn } from 'node:child_process';
import { createConnection, createServer } from 'node:net';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demoFleet } from '../src/demo/demo.js';
import { makeBootTree } from '../src/demo/boot-tree.js';
import { tftpBoot } from '../src/netboot/virtual-pi/boot.js';
import { freePort } from '../src/server/free-port.js';

const root = new URL('../', import.meta.url).pathname;
const N = Number(process.argv.includes('--nodes') ? process.argv[process.argv.indexOf('--nodes') + 1] : 500);

async function tcpBaseline(totalBytes: number, streams: number): Promise<number> {
  const chunk = Buffer.alloc(1 << 20, 7);
  const server = createServer((s) => {
    let left = Math.floor(totalBytes / streams);
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        left -= n;
        if (!s.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void s.once('drain', pump);
      }
      s.end();
    };
    pump();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  const t0 = Date.now();
  await Promise.all(
    Array.from({ length: streams }, () => new Promise<void>((resolve) => {
      const c = createConnection(port, '127.0.0.1');
      c.on('data', () => undefined);
      c.on('end', () => resolve());
    })),
  );
  server.close();
  return (Date.now() - t0) / 1000;
}

async function main() {
  const tmp = mkdtempSync(join(tmpdir(), 'drover-bench-storm-'));
  const tree = makeBootTree(join(tmp, 'boot'), 'storm');
  const api = await freePort();
  const tftp = await freePort();
  const data = join(tmp, 'data');
  const server = spawn(process.execPath, [join(root, 'bin/drover.js'), 'serve', '--data-dir', data, '--listen', `127.0.0.1:${api}`, '--tftp-listen', `127.0.0.1:${tftp}`, '--log-level', 'warn'], { stdio: 'ignore' });
  try {
    for (let i = 0; i < 100; i++) {
      try {
        if ((await fetch(`http://127.0.0.1:${api}/readyz`)).ok) break;
      } catch {
        /* starting */
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const token = readFileSync(join(data, 'initial-admin-token'), 'utf8').trim();
    await fetch(`http://127.0.0.1:${api}/api/v1/images/boot-dir`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'storm', path: tree, default: true }),
    });
    const fleet = demoFleet(N);
    process.stderr.write(`boot storm: ${N} virtual Pis at once …\n`);
    const t0 = Date.now();
    const reports = await Promise.all(
      fleet.map((hw) => tftpBoot(hw, { host: '127.0.0.1', port: tftp, blksize: hw.model === 'pi5' ? 1468 : 1024, fileTimeoutMs: 600_000 })),
    );
    const seconds = (Date.now() - t0) / 1000;
    const ok = reports.filter((r) => r.ok);
    const bytes = reports.reduce((n, r) => n + r.bytes, 0);
    const times = reports.map((r) => r.ms / 1000).sort((a, b) => a - b);
    const tcp = await tcpBaseline(bytes, Math.min(N, 64));
    const md = [
      `# Boot storm (${new Date().toISOString()}, ${N} virtual Pis, mixed models, loopback)`,
      '',
      '| metric | value |',
      '|---|---|',
      `| Pis booted | ${ok.length} / ${N} (${N - ok.length} failed) |`,
      `| bytes served | ${(bytes / 1e6).toFixed(0)} MB |`,
      `| time until the last Pi finished | ${seconds.toFixed(1)} s |`,
      `| per-Pi boot time p50 / p99 | ${times[Math.floor(N * 0.5)]!.toFixed(1)} s / ${times[Math.min(N - 1, Math.floor(N * 0.99))]!.toFixed(1)} s |`,
      `| aggregate TFTP rate | ${(bytes / 1e6 / seconds).toFixed(1)} MB/s |`,
      `| same bytes over plain loopback TCP | ${tcp.toFixed(1)} s |`,
      `| ratio (storm ÷ TCP) | ${(seconds / tcp).toFixed(1)}× |`,
      '',
    ].join('\n');
    const out = join(root, 'bench', 'results');
    mkdirSync(out, { recursive: true });
    const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-');
    writeFileSync(join(out, `boot-storm-${stamp}.md`), md);
    process.stdout.write(md);
  } finally {
    server.kill('SIGTERM');
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
