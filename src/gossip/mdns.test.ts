// mDNS join inside network namespaces this test creates: two namespaces joined by a veth pair,
// one gossip member process in each, announcing `_drover._udp` on its veth address only. They
// find each other and form a two-member group. Nothing here touches the host's interfaces; the
// namespaces are deleted in after(), also when a test fails.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { netnsAvailable } from '../demo/lab.js';
import { prereq } from '../../test/helpers/prereq.js';
import { MdnsDiscovery } from './mdns.js';
import { waitFor } from '../../test/helpers/wait.js';

const root = new URL('../../', import.meta.url).pathname;
const tag = randomBytes(3).toString('hex');
const nsA = `drover-mdns-${tag}-a`;
const nsB = `drover-mdns-${tag}-b`;
const addrA = '10.77.0.1';
const addrB = '10.77.0.2';

function ip(...args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
}

interface Peer {
  child: ChildProcess;
  views: { name: string; state: string; addr: string }[][];
  stderr: string;
}

function runPeer(ns: string, name: string, iface: string): Peer {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', 'src/gossip/mdns-peer.suite.ts', name, iface], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  const peer: Peer = { child, views: [], stderr: '' };
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        peer.views.push((JSON.parse(line) as { members: Peer['views'][number] }).members);
      } catch {
        peer.stderr += `bad line: ${line}\n`;
      }
    }
  });
  child.stderr!.on('data', (d: Buffer) => (peer.stderr += d.toString()));
  return peer;
}


describe('mDNS join in network namespaces', prereq('root and network namespaces (ip netns)', netnsAvailable(), 'iproute2 (and run as root)'), () => {
  const peers: Peer[] = [];

  before(() => {
    ip('netns', 'add', nsA);
    ip('netns', 'add', nsB);
    ip('link', 'add', `dmA${tag}`, 'netns', nsA, 'type', 'veth', 'peer', 'name', `dmB${tag}`, 'netns', nsB);
    for (const [ns, dev, addr] of [
      [nsA, `dmA${tag}`, addrA],
      [nsB, `dmB${tag}`, addrB],
    ] as const) {
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', dev);
      ip('-n', ns, 'link', 'set', dev, 'up', 'multicast', 'on');
      ip('-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', dev);
    }
  });

  after(async () => {
    for (const p of peers) {
      if (p.child.exitCode === null) {
        p.child.kill('SIGTERM');
        await waitFor(() => p.child.exitCode !== null, 3000, 50);
        if (p.child.exitCode === null) p.child.kill('SIGKILL');
      }
    }
    spawnSync('ip', ['netns', 'del', nsA]);
    spawnSync('ip', ['netns', 'del', nsB]);
  });

  it('two members find each other through _drover._udp and form a group', async () => {
    peers.push(runPeer(nsA, 'pi-a', addrA), runPeer(nsB, 'pi-b', addrB));
    const [a, b] = peers as [Peer, Peer];
    const both = (p: Peer) => {
      const v = p.views.at(-1) ?? [];
      return v.length === 2 && v.every((m) => m.state === 'alive');
    };
    const ok = await waitFor(() => both(a) && both(b), 20_000, 50);
    assert.ok(ok, `views: a=${JSON.stringify(a.views.at(-1))} b=${JSON.stringify(b.views.at(-1))}\nstderr a: ${a.stderr}\nstderr b: ${b.stderr}`);
    assert.deepEqual(
      a.views.at(-1)!.map((m) => `${m.name}@${m.addr}`).sort(),
      ['pi-a@10.77.0.1', 'pi-b@10.77.0.2'],
    );
  });

  it('refuses an interface address this host does not have', async () => {
    // 192.0.2.1 (TEST-NET-1) is on no interface here, so start() fails before any socket exists.
    const d = new MdnsDiscovery({ interface: '192.0.2.1', name: 'x', port: 1 });
    await assert.rejects(d.start(), /no local interface/);
    assert.throws(() => new MdnsDiscovery({ interface: 'eth0', name: 'x', port: 1 }), /IPv4/);
  });
});
