import { Option, type Command } from 'commander';
import { normalizeMac, normalizeSerial } from '../../domain/device.js';
import { runVirtualPi } from '../../netboot/virtual-pi/run.js';
import { printJson } from '../output.js';
import { action, bad, globals } from '../run.js';

export function registerVirtualPi(program: Command): void {
  program
    .command('virtual-pi')
    .description("behave like a Raspberry Pi bootloader: DHCP (optional) and the TFTP boot sequence; prints what was fetched. For testing a netboot setup")
    .addOption(new Option('--model <model>', 'bootloader to imitate').choices(['pi3b', 'pi3b+', 'pi4', 'pi5']).default('pi4'))
    .requiredOption('--serial <serial>', '8 hex digits')
    .option('--mac <mac>', 'MAC address', 'dc:a6:32:00:00:01')
    .option('--board-revision <rev>', 'board revision code', 'c03111')
    .option('--dhcp <interface>', 'do DHCP on this interface first (inside a network namespace; needs root)')
    .option('--dhcp-timeout <ms>', 'give up DHCP after one DISCOVER and this long (default: the bootloader\'s own retries)')
    .option('--tftp-server <ip>', 'TFTP server when not using DHCP', '127.0.0.1')
    .option('--tftp-port <port>', 'TFTP port', '69')
    .option('--blksize <n>', 'TFTP block size (the Pi uses 1024, newer EEPROMs up to 1468)')
    .action(
      action(async (o: { model: 'pi4'; serial: string; mac: string; boardRevision: string; dhcp?: string; dhcpTimeout?: string; tftpServer: string; tftpPort: string; blksize?: string }, cmd: Command) => {
        let serial: string;
        let mac: string;
        try {
          serial = normalizeSerial(o.serial);
          mac = normalizeMac(o.mac);
        } catch (err) {
          throw bad((err as Error).message);
        }
        const report = await runVirtualPi({
          hw: { model: o.model, serial, mac, boardRevision: o.boardRevision },
          dhcpInterface: o.dhcp,
          dhcpTimeoutMs: o.dhcpTimeout ? Number(o.dhcpTimeout) : undefined,
          tftpServer: o.tftpServer,
          tftpPort: Number(o.tftpPort),
          blksize: o.blksize ? Number(o.blksize) : undefined,
        });
        if (globals(cmd).json) printJson(report);
        else {
          if (report.dhcp) process.stdout.write(`dhcp: ${report.dhcp.ip} from ${report.dhcp.addressServer}, boot server ${report.dhcp.tftpServer} (${report.dhcp.ms} ms)\n`);
          for (const f of report.tftp?.files ?? []) process.stdout.write(`${f.status.padEnd(9)} ${String(f.bytes).padStart(10)}  ${f.path}${f.optional && f.status !== 'ok' ? ' (probe)' : ''}\n`);
          process.stdout.write(report.ok ? `booted in ${report.ms} ms\n` : `FAILED: ${report.reason}\n`);
        }
        if (!report.ok) process.exitCode = 1;
      }),
    );
}
