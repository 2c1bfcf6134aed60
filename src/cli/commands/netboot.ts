import { writeFileSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { Option, type Command } from 'commander';
import { printJson } from '../output.js';
import { action, client, globals } from '../run.js';

export function registerNetboot(program: Command): void {
  const netboot = program.command('netboot').description('netboot tools');
  netboot
    .command('dnsmasq-config')
    .description('write a TFTP tree for dnsmasq (per-device directories with rendered cmdline.txt/config.txt, linked into Drover\'s boot files) on the controller host, and print the dnsmasq configuration that serves it')
    .requiredOption('--interface <iface>', 'the interface dnsmasq serves')
    .requiredOption('--range <range>', 'proxy mode: the subnet address (e.g. 192.168.1.0); full mode: FIRST,LAST')
    .addOption(new Option('--mode <mode>', 'proxy beside the LAN\'s DHCP server, or full on an isolated network').choices(['proxy', 'full']).default('proxy'))
    .option('--dir <dir>', 'where to write the TFTP tree (default DATA_DIR/dnsmasq-tftp)')
    .option('--user <user>', 'the user dnsmasq runs as (it must be able to read the data dir)', 'drover')
    .option('--out <file>', 'write the configuration to this file instead of standard output')
    .action(
      action(async (o: { interface: string; range: string; mode: string; dir?: string; user: string; out?: string }, cmd: Command) => {
        const r: { config: string; dir: string; devices: number; defaultImage: string | null } = await client(cmd).request('POST', '/api/v1/netboot/dnsmasq-export', {
          interface: o.interface,
          range: o.range,
          mode: o.mode,
          user: o.user,
          ...(o.dir ? { dir: resolvePath(o.dir) } : {}),
        });
        if (globals(cmd).json) return printJson(r);
        if (o.out) writeFileSync(o.out, r.config);
        else process.stdout.write(r.config);
        process.stderr.write(`TFTP tree in ${r.dir}: ${r.devices} device(s), default image ${r.defaultImage ?? '(none)'}${o.out ? `; configuration in ${o.out}` : ''}\n`);
      }),
    );
}
