// SWIM + Lifeguard end to end on the simulated network in virtual time: the production
// GossipMember code with only the wire and the clock replaced. Seeds are fixed, so each run
// replays exactly.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeMessage, encodePacket } from './codec.js';
import { SIM_PORT, SimCluster, simAddr } from './sim-cluster.js';
import { suspicionTimeout } from './suspicion.js';
import type { GossipLogger } from './config.js';
import { GossipMember } from './swim.js';

/** Times (virtual ms) at which the group saw `name` change: first suspicion, first death, and per member the death. */
function watch(c: SimCluster, name: string) {
  const w = { firstSuspect: Infinity, firstDead: Infinity, deadAt: new Map<number, number>(), deadEvents: 0 };
  c.members.forEach((m, i) =>
    m.on('change', (info) => {
      if (info.name !== name) return;
      const t = c.sched.now();
      if (info.state === 'suspect') w.firstSuspect = Math.min(w.firstSuspect, t);
      if (info.state === 'dead') {
        w.deadEvents++;
        w.firstDead = Math.min(w.firstDead, t);
        if (!w.deadAt.has(i)) w.deadAt.set(i, t);
      }
    }),
  );
  return w;
}

const liveCount = (c: SimCluster) => c.up.filter(Boolean).length;

describe('SWIM in virtual time', () => {
  it('50 members converge, everyone alive at incarnation 1, with phi for peers heard from', async () => {
    const c = await SimCluster.create({ size: 50, seed: 11 });
    assert.ok(
      c.runUntil(() => c.converged(), 30_000),
      'converged within 30 s',
    );
    for (const m of c.members) {
      const view = m.members();
      assert.equal(view.length, 50);
      assert.ok(view.every((v) => v.state === 'alive' && v.incarnation === 1));
    }
    c.sched.runFor(60_000);
    const phis = c.members[0]!.members().filter((v) => v.phi !== undefined);
    assert.ok(phis.length > 10, `phi for ${phis.length} peers`);
    assert.ok(phis.every((v) => Number.isFinite(v.phi) && v.phi! >= 0 && v.phi! <= 1000), 'finite (JSON-safe) and non-negative');
    assert.equal(c.members[0]!.phi('m0'), undefined, 'no phi for ourselves');
    assert.ok(c.converged(), 'no false suspicion on a clean network');
    for (const m of c.members) assert.equal(m.stats().malformed, 0);
  });

  it('a killed member is suspected within seconds, declared dead within [min, max], known by all soon after', async () => {
    const c = await SimCluster.create({ size: 50, seed: 12 });
    assert.ok(c.runUntil(() => c.converged(), 30_000));
    const victim = 17;
    const w = watch(c, `m${victim}`);
    const killedAt = c.sched.now();
    c.kill(victim);
    const min = suspicionTimeout(4, 50, 1000);
    const max = 6 * min;
    assert.ok(
      c.runUntil(() => w.deadAt.size === liveCount(c), 10_000 + max + 5000),
      `all ${liveCount(c)} live members marked it dead (${w.deadAt.size} did)`,
    );
    const firstSuspect = w.firstSuspect - killedAt;
    const firstDead = w.firstDead - w.firstSuspect;
    const allKnow = Math.max(...w.deadAt.values()) - w.firstDead;
    assert.ok(firstSuspect <= 10_000, `first suspicion after ${firstSuspect} ms`);
    assert.ok(firstDead >= min && firstDead <= max, `first death ${firstDead} ms after the first suspicion, expected within [${min}, ${max}]`);
    assert.ok(allKnow <= 5000, `dissemination to all took ${allKnow} ms`);
    // And it stays dead, then is reaped after gossipToTheDead.
    c.sched.runFor(60_000);
    assert.ok(c.members.every((m, i) => !c.up[i] || m.member(`m${victim}`) === undefined || m.member(`m${victim}`)!.state === 'dead'));
  });

  it('a suspected member that is alive refutes with a higher incarnation and is never declared dead', async () => {
    for (const lifeguard of [true, false]) {
      const c = await SimCluster.create({ size: 30, seed: 13, lifeguard });
      assert.ok(c.runUntil(() => c.converged(), 30_000));
      const x = 5;
      const w = watch(c, `m${x}`);
      // Cut it off long enough for probes of it to fail, short of the suspicion timeout.
      c.net.partition([simAddr(x)], c.members.map((_, i) => simAddr(i)).filter((_, i) => i !== x));
      assert.ok(c.runUntil(() => w.firstSuspect < Infinity, 10_000), 'someone suspected it');
      c.sched.runFor(500);
      c.net.heal();
      const member = c.members[x]!;
      assert.ok(
        c.runUntil(() => c.converged(), 20_000),
        `lifeguard=${lifeguard}: everyone sees it alive again`,
      );
      assert.equal(w.deadEvents, 0, 'nobody declared it dead');
      assert.ok(member.stats().refutes >= 1);
      assert.ok(member.incarnation >= 2);
      for (const m of c.members) assert.equal(m.member(`m${x}`)!.incarnation, member.incarnation);
    }
  });

  it('validates every datagram: garbage is counted and dropped; a forged suspicion is refuted', async () => {
    const c = await SimCluster.create({ size: 5, seed: 14 });
    assert.ok(c.runUntil(() => c.converged(), 10_000));
    const rogue = c.net.transport('10.99.0.1', 1);
    await rogue.start({ packet: () => {}, pushPull: () => null });
    const target = { addr: simAddr(0), port: SIM_PORT };
    for (const junk of [Buffer.alloc(0), Buffer.from('hello'), Buffer.alloc(2000, 0xd7), encodePacket('m3', [encodeMessage({ type: 'ack', seq: 1 })]).subarray(0, 9)]) rogue.sendPacket(target, junk);
    rogue.pushPull(target, Buffer.from('not a push-pull'), 1000, () => {});
    c.sched.runFor(2000);
    assert.equal(c.members[0]!.stats().malformed, 5);
    rogue.sendPacket(target, encodePacket('m3', [encodeMessage({ type: 'suspect', node: 'm0', incarnation: 1, from: 'm3' })]));
    c.sched.runFor(3000);
    assert.equal(c.members[0]!.stats().refutes, 1);
    assert.equal(c.members[0]!.incarnation, 2);
    assert.ok(c.runUntil(() => c.converged() && c.members.every((m) => m.member('m0')!.incarnation === 2), 10_000));
  });

  it('a partition heals through push-pull: updates gossip missed reach the other side', async () => {
    // A member joins side B while the halves cannot talk; its alive news is gossiped out within B
    // before the heal. Afterwards only push-pull carries it across, so without push-pull side A
    // never learns of it.
    for (const pushPull of [true, false]) {
      const c = await SimCluster.create({ size: 20, seed: 15, timings: { pushPullIntervalMs: pushPull ? 30_000 : 0 } });
      assert.ok(c.runUntil(() => c.converged(), 20_000));
      const a = [...Array(10).keys()].map(simAddr);
      const b = [...Array(10).keys()].map((i) => simAddr(i + 10));
      const newcomerAddr = '10.200.0.1';
      c.net.partition(a, [...b, newcomerAddr]);
      const newcomer = new GossipMember({ name: 'late', bindAddr: newcomerAddr, bindPort: SIM_PORT, transport: c.net.transport(newcomerAddr, SIM_PORT), scheduler: c.sched, random: c.random, pushPullIntervalMs: pushPull ? 30_000 : 0 });
      await newcomer.start();
      const joined = newcomer.join([{ addr: b[0]!, port: SIM_PORT }]);
      c.sched.runFor(100);
      assert.equal(await joined, 1);
      c.sched.runFor(2500);
      assert.ok(c.members.slice(10).every((m) => m.member('late')?.state === 'alive'), 'side B knows the newcomer');
      c.net.heal();
      c.sched.runFor(100);
      const sideAKnows = () => c.members.slice(0, 10).filter((m) => m.member('late')?.state === 'alive').length;
      assert.equal(sideAKnows(), 0, 'side A has not heard of it at the heal');
      const healed = c.runUntil(() => sideAKnows() === 10, 120_000);
      assert.equal(healed, pushPull, pushPull ? 'push-pull carried it across' : 'without push-pull nothing does');
      await newcomer.stop();
    }
  });

  it('a long partition: both sides declare the other dead and forget it; reconnect push-pulls merge them after the heal', async () => {
    // memberlist alone never talks to reaped members again; the reconnect loop (Serf's idea)
    // push-pulls with a random failed member now and then. Without it the halves stay apart.
    for (const reconnectIntervalMs of [30_000, 0]) {
      const c = await SimCluster.create({ size: 16, seed: 16, timings: { reconnectIntervalMs } });
      assert.ok(c.runUntil(() => c.converged(), 20_000));
      const a = [...Array(8).keys()].map(simAddr);
      const b = [...Array(8).keys()].map((i) => simAddr(i + 8));
      c.net.partition(a, b);
      assert.ok(
        c.runUntil(() => c.members[0]!.member('m12')?.state === 'dead', 120_000),
        'side A declared side B dead',
      );
      c.sched.runFor(60_000); // past gossipToTheDead: the dead are reaped from the member lists
      assert.equal(c.members[0]!.members().length, 8);
      c.net.heal();
      const merged = c.runUntil(() => c.converged(), 300_000);
      assert.equal(merged, reconnectIntervalMs > 0, reconnectIntervalMs > 0 ? 'merged again' : 'stays split without reconnect');
    }
  });

  it("Lifeguard's suspicion timeout shrinks with confirmations; plain SWIM uses the fixed minimum", async () => {
    for (const lifeguard of [true, false]) {
      const timeouts: { member: string; confirmations: number }[] = [];
      const logger: GossipLogger = {
        debug: () => {},
        warn: () => {},
        info: (o, msg) => {
          if (msg.startsWith('suspicion timed out')) timeouts.push(o as { member: string; confirmations: number });
        },
      };
      const c = await SimCluster.create({ size: 50, seed: 17, lifeguard, logger });
      assert.ok(c.runUntil(() => c.converged(), 30_000));
      const w = watch(c, 'm30');
      c.kill(30);
      assert.ok(c.runUntil(() => w.firstDead < Infinity, 120_000));
      const took = w.firstDead - w.firstSuspect;
      const min = suspicionTimeout(4, 50, 1000);
      const first = timeouts.find((t) => t.member === 'm30');
      assert.ok(first);
      if (lifeguard) {
        assert.ok(took >= min && took < 0.5 * 6 * min, `lifeguard: ${took} ms, between min ${min} and half of max ${6 * min}`);
        assert.ok(first.confirmations >= 2, `${first.confirmations} independent confirmations shortened it`);
      } else {
        assert.ok(took >= min && took < min + 50, `plain SWIM: ${took} ms ≈ min ${min}`);
        assert.equal(first.confirmations, 0);
      }
    }
  });

  it("Lifeguard's local health: helpers' nacks arrive in time, so a dead target does not hurt the prober's score; an isolated prober's score climbs", async () => {
    const c = await SimCluster.create({ size: 20, seed: 20 });
    assert.ok(c.runUntil(() => c.converged(), 20_000));
    c.kill(7);
    const w = watch(c, 'm7');
    assert.ok(c.runUntil(() => w.firstDead < Infinity, 60_000));
    const probers = c.members.filter((m, i) => c.up[i] && m.stats().probesFailed > 0);
    assert.ok(probers.length > 0);
    for (const m of probers) assert.equal(m.stats().health, 0, `${m.name}: every helper nacked before the deadline`);
    // Now the prober is the problem: cut member 3 off from everyone.
    c.net.partition([simAddr(3)], c.members.map((_, i) => simAddr(i)).filter((_, i) => i !== 3));
    c.sched.runFor(10_000);
    const isolated = c.members[3]!.stats();
    assert.ok(isolated.health >= 5, `isolated member's health score ${isolated.health}`);
    const before = isolated.probesSent;
    c.sched.runFor(16_000);
    assert.ok(c.members[3]!.stats().probesSent - before <= 4, 'it probes every (score + 1) s, not every second');
  });

  it('a graceful leave is seen as left (not dead) by everyone', async () => {
    const c = await SimCluster.create({ size: 20, seed: 18 });
    assert.ok(c.runUntil(() => c.converged(), 20_000));
    const w = watch(c, 'm4');
    const leaving = c.members[4]!.leave();
    c.sched.runFor(6000);
    await leaving;
    await c.members[4]!.stop();
    c.up[4] = false;
    assert.ok(c.members.every((m, i) => i === 4 || m.member('m4')?.state === 'left'));
    assert.equal(w.deadEvents, 0);
    assert.ok(c.runUntil(() => c.converged(), 5000));
  });

  it('meta changes are gossiped with a new incarnation and reported as changes', async () => {
    const c = await SimCluster.create({ size: 20, seed: 21 });
    assert.ok(c.runUntil(() => c.converged(), 20_000));
    const seen: string[] = [];
    c.members[0]!.on('change', (m) => seen.push(`${m.name}:${m.meta.role}`));
    c.members[2]!.setMeta({ role: 'drained' });
    assert.ok(c.runUntil(() => c.members.every((m) => m.member('m2')!.meta.role === 'drained'), 3000));
    assert.ok(c.members.every((m) => m.member('m2')!.incarnation === 2));
    assert.deepEqual(seen, ['m2:drained']);
  });

  it('join reports how many seeds answered', async () => {
    const c = await SimCluster.create({ size: 3, seed: 19 });
    const m = new GossipMember({ name: 'x', bindAddr: '10.9.9.9', bindPort: SIM_PORT, transport: c.net.transport('10.9.9.9', SIM_PORT), scheduler: c.sched, random: c.random });
    await m.start();
    const n = m.join([
      { addr: simAddr(0), port: SIM_PORT },
      { addr: simAddr(1), port: SIM_PORT },
      { addr: '10.9.9.8', port: SIM_PORT }, // nobody there: times out
      { addr: '10.9.9.9', port: SIM_PORT }, // ourselves: skipped
    ]);
    c.sched.runFor(15_000);
    assert.equal(await n, 2);
    assert.equal(m.members().length, 4);
    await m.stop();
  });
});
