// The simulation substrate: the virtual-time scheduler's ordering and cancellation, and the
// simulated network's latency, loss, partitions, NAT forwards, push-pull and byte counting.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { seededRandom } from './rng.js';
import { SimNetwork } from './sim-network.js';
import type { Endpoint, TransportHandlers } from './transport.js';
import { VirtualScheduler } from './virtual-scheduler.js';

describe('virtual scheduler', () => {
  it('fires in due order, FIFO among equals, skips cancelled timers, jumps idle time', () => {
    const s = new VirtualScheduler();
    const log: string[] = [];
    s.setTimeout(() => log.push(`b@${s.now()}`), 20);
    s.setTimeout(() => log.push(`a@${s.now()}`), 10);
    s.setTimeout(() => log.push(`a2@${s.now()}`), 10);
    const c = s.setTimeout(() => log.push('cancelled'), 15);
    s.setTimeout(() => s.setTimeout(() => log.push(`nested@${s.now()}`), 0), 30);
    c.cancel();
    s.runUntil(25);
    assert.deepEqual(log, ['a@10', 'a2@10', 'b@20']);
    assert.equal(s.now(), 25);
    s.runFor(3_600_000);
    assert.deepEqual(log.slice(3), ['nested@30']);
    assert.equal(s.now(), 3_600_025);
    assert.equal(s.runUntilCondition(() => log.length === 5, 1000), false);
  });
});

function listen(net: SimNetwork, addr: string, port: number) {
  const got: { data: string; from: Endpoint; at: number }[] = [];
  const t = net.transport(addr, port);
  const handlers: TransportHandlers = {
    packet: (data, from) => got.push({ data: data.toString(), from, at: net.scheduler.now() }),
    pushPull: (data) => (data.toString() === 'refuse' ? null : Buffer.from(`re:${data.toString()}`)),
  };
  void t.start(handlers);
  return { t, got };
}

describe('sim network', () => {
  it('delivers after latency + jitter and counts bytes both ways', () => {
    const s = new VirtualScheduler();
    const net = new SimNetwork(s, { latencyMs: 5, jitterMs: 2, random: seededRandom(1) });
    const a = listen(net, '10.0.0.1', 1);
    const b = listen(net, '10.0.0.2', 1);
    a.t.sendPacket({ addr: '10.0.0.2', port: 1 }, Buffer.from('hello'));
    s.runFor(100);
    assert.equal(b.got.length, 1);
    assert.equal(b.got[0]!.data, 'hello');
    assert.deepEqual(b.got[0]!.from, { addr: '10.0.0.1', port: 1 });
    assert.ok(b.got[0]!.at >= 5 && b.got[0]!.at < 7);
    assert.equal(net.stats('10.0.0.1', 1).bytesSent, 5);
    assert.equal(net.stats('10.0.0.2', 1).bytesReceived, 5);
    assert.equal(a.got.length, 0);
  });

  it('loses about the configured fraction, globally or per link', () => {
    const s = new VirtualScheduler();
    const net = new SimNetwork(s, { loss: 0.1, random: seededRandom(2) });
    listen(net, '10.0.0.1', 1);
    const b = listen(net, '10.0.0.2', 1);
    const c = listen(net, '10.0.0.3', 1);
    const a = net.transport('10.0.0.9', 1);
    void a.start({ packet: () => {}, pushPull: () => null });
    net.setLinkLoss('10.0.0.9', '10.0.0.3', 0.5);
    for (let i = 0; i < 10_000; i++) {
      a.sendPacket({ addr: '10.0.0.2', port: 1 }, Buffer.from('x'));
      a.sendPacket({ addr: '10.0.0.3', port: 1 }, Buffer.from('x'));
    }
    s.runFor(1000);
    assert.ok(Math.abs(b.got.length - 9000) < 200, `${b.got.length}`);
    assert.ok(Math.abs(c.got.length - 5000) < 200, `${c.got.length}`);
    assert.equal(net.stats('10.0.0.9', 1).packetsDropped, 20_000 - b.got.length - c.got.length);
  });

  it('partitions block datagrams and push-pull until healed; forwards act as a NAT', () => {
    const s = new VirtualScheduler();
    const net = new SimNetwork(s, { random: seededRandom(3) });
    const a = listen(net, '10.0.0.1', 1);
    const b = listen(net, '10.0.0.2', 1);
    net.partition(['10.0.0.1'], ['10.0.0.2']);
    a.t.sendPacket({ addr: '10.0.0.2', port: 1 }, Buffer.from('lost'));
    const results: string[] = [];
    a.t.pushPull({ addr: '10.0.0.2', port: 1 }, Buffer.from('state'), 3000, (err, reply) => results.push(err ? `err@${s.now()}` : String(reply)));
    s.runFor(5000);
    assert.equal(b.got.length, 0);
    assert.deepEqual(results, ['err@3000']);
    net.heal();
    a.t.pushPull({ addr: '10.0.0.2', port: 1 }, Buffer.from('state'), 3000, (err, reply) => results.push(err ? 'err' : String(reply)));
    a.t.pushPull({ addr: '10.0.0.2', port: 1 }, Buffer.from('refuse'), 3000, (err) => results.push(err ? 'refused' : 'ok'));
    net.forward({ addr: '198.51.100.1', port: 17946 }, { addr: '10.0.0.2', port: 1 });
    a.t.sendPacket({ addr: '198.51.100.1', port: 17946 }, Buffer.from('via nat'));
    s.runFor(100);
    assert.deepEqual(results.slice(1).sort(), ['re:state', 'refused']);
    assert.deepEqual(b.got.map((g) => g.data), ['via nat']);
    assert.equal(net.stats('10.0.0.1', 1).pushPullsSent, 3);
  });
});
