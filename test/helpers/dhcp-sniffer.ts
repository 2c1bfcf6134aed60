// Runs inside a test namespace: prints every DHCP reply seen on an interface as a JSON line.
// Usage: node --import tsx test/helpers/dhcp-sniffer.ts IFACE SECONDS
import { OPT, parseDhcp } from '../../src/netboot/dhcp/packet.js';
import { ipOf } from '../../src/netboot/dhcp/proxy.js';
import { bindToInterface } from '../../src/netboot/netsock.js';

const [iface, seconds] = process.argv.slice(2);
const sock = await bindToInterface(iface!, 68);
sock.on('message', (msg) => {
  try {
    const p = parseDhcp(msg);
    if (p.op !== 2) return;
    const sid = p.options.get(OPT.serverId);
    process.stdout.write(
      `${JSON.stringify({
        xid: p.xid,
        type: p.options.get(OPT.messageType)?.[0],
        yiaddr: p.yiaddr,
        server: sid ? ipOf(sid) : null,
        menu: p.options.get(OPT.vendorOptions)?.toString('latin1').includes('Raspberry Pi Boot') ?? false,
        file: p.file,
      })}\n`,
    );
  } catch {
    /* not DHCP */
  }
});
process.stdout.write('ready\n');
setTimeout(() => process.exit(0), Number(seconds) * 1000);
