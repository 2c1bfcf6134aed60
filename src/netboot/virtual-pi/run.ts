// A whole virtual Pi boot: DHCP (optional), then the TFTP boot sequence. Used by
// `drover virtual-pi`, the network-namespace tests, the demo and the benchmarks.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { tftpBoot, type TftpBootReport } from './boot.js';
import { piDhcp, prefixLength, type DhcpLease } from './dhcp-client.js';
import type { PiHardware } from './models.js';

const run = promisify(execFile);

export interface VirtualPiRun {
  hw: PiHardware;
  /** Do DHCP on this interface first (inside a network namespace; needs root). */
  dhcpInterface?: string | undefined;
  dhcpTimeoutMs?: number | undefined;
  /** Without DHCP: where the TFTP server is. */
  tftpServer?: string | undefined;
  tftpPort?: number | undefined;
  blksize?: number | undefined;
}

export interface VirtualPiReport {
  model: string;
  serial: string;
  mac: string;
  ok: boolean;
  reason?: string;
  dhcp: DhcpLease | null;
  tftp: TftpBootReport | null;
  ms: number;
}

export async function runVirtualPi(r: VirtualPiRun): Promise<VirtualPiReport> {
  const t0 = Date.now();
  const base = { model: r.hw.model, serial: r.hw.serial, mac: r.hw.mac };
  let lease: DhcpLease | null = null;
  let server = r.tftpServer ?? '127.0.0.1';
  if (r.dhcpInterface) {
    try {
      lease = await piDhcp(r.hw, {
        interface: r.dhcpInterface,
        ...(r.dhcpTimeoutMs ? { attempts: 1, discoverIntervalMs: r.dhcpTimeoutMs } : {}),
      });
    } catch (err) {
      return { ...base, ok: false, reason: `dhcp: ${(err as Error).message}`, dhcp: null, tftp: null, ms: Date.now() - t0 };
    }
    await run('ip', ['addr', 'replace', `${lease.ip}/${prefixLength(lease.netmask)}`, 'dev', r.dhcpInterface]);
    server = lease.tftpServer;
  }
  const tftp = await tftpBoot(r.hw, {
    host: server,
    port: r.tftpPort ?? 69,
    blksize: r.blksize ?? (r.hw.model === 'pi5' ? 1468 : 1024),
    ...(lease ? { localAddress: lease.ip } : {}),
  });
  return { ...base, ok: tftp.ok, ...(tftp.reason ? { reason: `tftp: ${tftp.reason}` } : {}), dhcp: lease, tftp, ms: Date.now() - t0 };
}
