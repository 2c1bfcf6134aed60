// Real sockets on loopback: five members on ephemeral UDP/TCP ports of 127.0.0.1 with shortened
// timings converge, notice a stopped member within seconds, drop malformed datagrams, and a
// member behind a relay hop (advertising the relay's port, like a NAT port forward) is reached
// only through it.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import type { GossipTimings } from './config.js';
import { GossipMember } from './swim.js';
import { waitFor } from '../../test/helpers/wait.js';

const fast: GossipTimings = {
  probeIntervalMs: 200,
  probeTimeoutMs: 80,
  gossipIntervalMs: 50,
  pushPullIntervalMs: 2000,
  suspicionMult: 2,
  gossipToTheDeadMs: 5000,
  leaveTimeoutMs: 1000,
};


/** Forwards UDP datagrams and TCP connections from its own port to `target` (a one-way NAT hop). */
async function relay(targetPort: number): Promise<{ port: number; close: () => Promise<void> }> {
  const udp = dgram.createSocket('udp4');
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
  const port = udp.address().port;
  udp.on('message', (msg) => udp.send(msg, targetPort, '127.0.0.1'));
  const sockets = new Set<net.Socket>();
  const tcp = net.createServer((inbound) => {
    const outbound = net.connect(targetPort, '127.0.0.1');
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((r) => tcp.listen(port, '127.0.0.1', () => r()));
  return {
    port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await Promise.all([new Promise<void>((r) => udp.close(() => r())), new Promise<void>((r) => tcp.close(() => r()))]);
    },
  };
}

describe('gossip over real UDP on 127.0.0.1', () => {
  const members: GossipMember[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const m of members) await m.stop();
    for (const c of cleanups) await c();
  });

  const make = (name: string, extra: Partial<ConstructorParameters<typeof GossipMember>[0]> = {}) => {
    const m = new GossipMember({ name, bindAddr: '127.0.0.1', bindPort: 0, ...fast, ...extra });
    members.push(m);
    return m;
  };
  const aliveCount = (m: GossipMember) => m.members().filter((v) => v.state === 'alive').length;

  it('5 members converge, detect a stopped one in seconds, and ignore garbage', async () => {
    const group = ['a', 'b', 'c', 'd', 'e'].map((n) => make(n));
    for (const m of group) await m.start();
    const seed = group[0]!.address!;
    assert.equal(seed.addr, '127.0.0.1');
    assert.ok(seed.port > 0);
    for (const m of group.slice(1)) assert.equal(await m.join([seed]), 1);
    assert.ok(await waitFor(() => group.every((m) => aliveCount(m) === 5), 5000, 25), 'converged');

    const junk = dgram.createSocket('udp4');
    for (const bytes of [Buffer.from('not gossip'), Buffer.alloc(1500, 0xd7), Buffer.from([0xd7, 1, 1, 0])]) {
      await new Promise<void>((r) => junk.send(bytes, seed.port, '127.0.0.1', () => r()));
    }
    junk.close();
    assert.ok(await waitFor(() => group[0]!.stats().malformed === 3, 2000, 25), `malformed ${group[0]!.stats().malformed}`);

    const victim = group[3]!;
    const stoppedAt = Date.now();
    await victim.stop();
    const rest = group.filter((m) => m !== victim);
    assert.ok(await waitFor(() => rest.every((m) => m.member('d')?.state === 'dead'), 5000, 25), 'all four marked it dead');
    const took = Date.now() - stoppedAt;
    assert.ok(took < 5000, `${took} ms`);
    for (const m of rest) {
      const s = m.stats();
      assert.ok(s.packetsSent > 0 && s.bytesReceived > 0 && s.pushPullsSent + s.pushPullsReceived > 0, JSON.stringify(s));
      assert.ok((m.phi('a') ?? m.phi('b') ?? 0) >= 0);
    }
    // A graceful leave is seen as 'left'.
    const leaver = rest[3]!;
    await leaver.leave();
    await leaver.stop();
    assert.ok(await waitFor(() => rest.slice(0, 3).every((m) => m.member(leaver.name)?.state === 'left'), 3000, 25));
  });

  it('a member behind a relay hop advertises the relay and is reached only through it', async () => {
    const seed = make('seed');
    const other = make('other');
    await seed.start();
    await other.start();
    await other.join([seed.address!]);
    // Bind first to learn the port, then put the relay in front of it.
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const hidden = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const hop = await relay(hidden);
    cleanups.push(hop.close);
    const natted = make('natted', { bindPort: hidden, advertiseAddr: '127.0.0.1', advertisePort: hop.port });
    await natted.start();
    assert.deepEqual(natted.address, { addr: '127.0.0.1', port: hop.port });
    assert.equal(await natted.join([seed.address!]), 1);
    assert.ok(await waitFor(() => [seed, other].every((m) => m.member('natted')?.state === 'alive' && m.member('natted')?.port === hop.port), 3000, 25));
    // Probes keep succeeding through the hop...
    await new Promise((r) => setTimeout(r, 1500));
    assert.ok([seed, other].every((m) => m.member('natted')?.state === 'alive'));
    // ...and fail once it is gone, although the member itself still runs.
    await hop.close();
    cleanups.pop();
    assert.ok(await waitFor(() => [seed, other].every((m) => m.member('natted')?.state !== 'alive'), 5000, 25), 'suspected once the relay is down');
  });
});
