// A gossip member that joins through mDNS, as its own process: mdns.test.ts runs one inside each
// network namespace it creates (Node cannot enter a namespace itself). Reports JSON lines on
// stdout ({"members": [...]} whenever its view changes); stops cleanly on SIGTERM.
// (`.suite.ts`: kept out of the build and not run by itself.)
//   node --import tsx src/gossip/mdns-peer.suite.ts <name> <interface IPv4>
import { joinViaMdns } from './mdns.js';
import { GossipMember } from './swim.js';

const [name, iface] = process.argv.slice(2);
if (!name || !iface) throw new Error('usage: mdns-peer.suite.ts <name> <interface IPv4>');

const member = new GossipMember({ name, bindAddr: iface, bindPort: 0, probeIntervalMs: 300, probeTimeoutMs: 100, gossipIntervalMs: 50, pushPullIntervalMs: 2000 });
await member.start();
const report = () => process.stdout.write(`${JSON.stringify({ members: member.members().map((m) => ({ name: m.name, state: m.state, addr: m.addr })) })}\n`);
member.on('change', report);
const discovery = await joinViaMdns(member, { interface: iface, queryIntervalMs: 1000, onError: (err) => process.stderr.write(`mdns: ${err.message}\n`) });
report();
process.once('SIGTERM', () => {
  void discovery
    .stop()
    .then(() => member.stop())
    .then(() => process.exit(0));
});
