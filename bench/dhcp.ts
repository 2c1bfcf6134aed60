// DHCP proxy storm, side by side in one run: ISC perfdhcp (Debian kea-admin) sends Pi-shaped
// DISCOVERs (option 60 PXEClient…, 93 = 0, 97 = a Pi 4 GUID; Pi MAC prefix) at rising rates to
// Drover's proxy and to dnsmasq's proxy (`dhcp-range=…,proxy` + `pxe-service`), each in network
// namespaces this benchmark creates. Reports replies/s, drops and delay as perfdhcp measures them.
// Needs root. Every run is bounded by perfdhcp's test period.
//   node --import tsx bench/dhcp.ts [--rates 2000,5000,10000,20000] [--seconds 10] [--servers drover,dnsmasq] [--profile DIR]
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab } from '../src/demo/lab.js';
import { VENDOR_CLASS } from '../src/netboot/virtual-pi/models.js';

const root = new URL('../', import.meta.url).pathname;
const arg = (name: string, dflt: string) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1]! : dflt);
const RATES = arg('--rates', '2000,5000,10000,20000,30000').split(',').map(Number);
const SECONDS = Number(arg('--seconds', '10'));
/** A directory for a CPU profile of Drover's run (node --cpu-prof). */
const PROFILE = arg('--profile', '');
const hex = (s: string) => Buffer.from(s, 'latin1').toString('hex');
// A Pi 4 GUID ("RPi4", rev c03111, MAC low bytes, serial 1a2b3c4d), little-endian fields.
const OPT97 = '00' + '52506934' + '1131c000' + '00000000' + '4d3c2b1a';

interface Row {
  server: string;
  rate: number;
  sent: number;
  received: number;
  dropPct: number;
  avgDelayMs: number;
  repliesPerS: number;
}

function parsePerfdhcp(out: string, rate: number, server: string): Row {
  // perfdhcp prints, per exchange type: "sent packets: N", "received packets: N",
  // "drops ratio: X %", "avg delay: Y ms" (first block is DISCOVER-OFFER).
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? NaN);
  const sent = num(/sent packets:\s*(\d+)/);
  const received = num(/received packets:\s*(\d+)/);
  return {
    server,
    rate,
    sent,
    received,
    dropPct: num(/drops ratio:\s*([\d.]+)\s*%/),
    avgDelayMs: num(/avg delay:\s*([\d.]+)\s*ms/),
    repliesPerS: received / SECONDS,
  };
}

async function main() {
  if (process.getuid?.() !== 0) throw new Error('the DHCP benchmark needs root (network namespaces)');
  const tmp = mkdtempSync(join(tmpdir(), 'drover-bench-dhcp-'));
  const rows: Row[] = [];
  for (const server of (['drover', 'dnsmasq'] as const).filter((s) => arg('--servers', 'drover,dnsmasq').split(',').includes(s))) {
    const lab = await Lab.create();
    let proc: ReturnType<Lab['spawn']> | undefined;
    try {
      await lab.host('srv', { ifname: 'lan0', addr: '198.18.0.1/24' });
      await lab.host('cli', { addr: '198.18.0.50/24', mac: 'dc:a6:32:00:00:01' });
      proc =
        server === 'drover'
          ? lab.spawn('srv', process.execPath, [...(PROFILE ? ['--cpu-prof', '--cpu-prof-dir', PROFILE] : []), join(root, 'bin/drover.js'), 'serve', '--data-dir', join(tmp, 'data'), '--listen', '127.0.0.1:8080', '--tftp-listen', 'off', '--dhcp-interface', 'lan0', '--pi3-reply-delay', '0', '--log-level', 'warn'])
          : lab.spawn('srv', 'dnsmasq', ['--no-daemon', '--port=0', '--conf-file=/dev/null', '--interface=lan0', '--bind-interfaces', '--dhcp-range=198.18.0.0,proxy', '--pxe-service=0,"Raspberry Pi Boot   "', `--pid-file=${join(tmp, 'dnsmasq.pid')}`]);
      proc.stdout?.on('data', () => undefined);
      proc.stderr?.on('data', () => undefined);
      await new Promise((r) => setTimeout(r, 3000));
      for (const rate of RATES) {
        const r = await lab.exec('cli', 'perfdhcp', [
          '-4', '-l', 'eth0', '-i', '-r', String(rate), '-p', String(SECONDS), '-R', '1000', '-b', 'mac=dc:a6:32:00:00:00',
          '-o', `60,${hex(VENDOR_CLASS)}`, '-o', '93,0000', '-o', `97,${OPT97}`, '-B',
        ], { timeout: (SECONDS + 20) * 1000 });
        const row = parsePerfdhcp(r.stdout + r.stderr, rate, server);
        rows.push(row);
        process.stderr.write(`${server.padEnd(8)} ${String(rate).padStart(6)}/s: ${row.received}/${row.sent} answered, drops ${row.dropPct}%, avg delay ${row.avgDelayMs} ms\n`);
      }
    } finally {
      // A graceful stop first (Drover writes its CPU profile on exit), then the namespaces go.
      if (proc && proc.exitCode === null) {
        proc.kill('SIGTERM');
        await new Promise((r) => setTimeout(r, 5000).unref() && proc!.once('exit', r));
      }
      await lab.destroy();
    }
  }
  rmSync(tmp, { recursive: true, force: true });
  const md = [
    `# DHCP proxy storm (${new Date().toISOString()}, ${SECONDS} s per rate, 1000 Pi-shaped clients)`,
    '',
    '| server | offered rate /s | sent | answered | replies/s | drops % | avg delay ms | Drover ÷ dnsmasq (replies/s) |',
    '|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => {
      const peer = rows.find((x) => x.server === 'dnsmasq' && x.rate === r.rate);
      return `| ${r.server} | ${r.rate} | ${r.sent} | ${r.received} | ${r.repliesPerS.toFixed(0)} | ${r.dropPct} | ${r.avgDelayMs} | ${r.server === 'drover' && peer ? (r.repliesPerS / peer.repliesPerS).toFixed(2) : ''} |`;
    }),
    '',
  ].join('\n');
  const out = join(root, 'bench', 'results');
  mkdirSync(out, { recursive: true });
  const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-');
  writeFileSync(join(out, `dhcp-${stamp}.md`), md);
  writeFileSync(join(out, `dhcp-${stamp}.json`), JSON.stringify(rows, null, 2));
  process.stdout.write(md);
}

await main();
