// Gossip wired end to end on loopback: a controller started with --gossip-listen and three real
// device agents (src/agent) each with its gossip member. The controller is their first seed,
// they find each other, report their views, and the controller's own member sees them all.
// One agent crashes (no leave, no goodbye on its socket): the group declares it dead and the
// controller follows the group. The agents' buffers are untouched by any of it.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Agent, type MetricsSource } from '../agent/agent.js';
import { AgentGossip } from '../agent/gossip.js';
import { silentLogger } from '../agent/log.js';
import type { Metrics } from '../agent/protocol.js';
import { loadConfig } from '../config/load.js';
import type { GossipTimings } from '../gossip/config.js';
import { startServer, type RunningServer } from '../server/serve.js';
import { CONTROLLER_MEMBER } from './controller-gossip.js';
import { until } from '../../test/helpers/wait.js';

const FAST: GossipTimings = { probeIntervalMs: 200, probeTimeoutMs: 100, gossipIntervalMs: 50, pushPullIntervalMs: 2000, suspicionMult: 3, leaveTimeoutMs: 500 };

function synthetic(bootId: string): MetricsSource {
  let n = 0;
  return {
    sample: async (): Promise<Metrics> => ({ cpu: [0.1 + (n++ % 5) / 10], load: [0.1, 0.1, 0.1], mem: [1e9, 5e8], disk: [1e10, 5e9], net: [n, n], uptime: n }),
    bootId: async () => bootId,
    imageId: async () => null,
  };
}


describe('controller and agents in one gossip group (loopback)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'drover-cgossip-'));
  let server: RunningServer;
  const nodes: { id: string; agent: Agent; gossip: AgentGossip }[] = [];

  before(async () => {
    const config = loadConfig({ flags: { dataDir: dir, listen: '127.0.0.1:0', gossipListen: '127.0.0.1:0', agentHeartbeat: 1 }, env: {} });
    server = await startServer(config, { webRoot: null, announce: () => {}, logger: pino({ level: 'silent' }), gossipTimings: FAST, healthTickMs: 100 });
    const group = await server.services.groups.create({ name: 'rack', policy: { health: { deadAfterSeconds: 30, remediate: false } } }, 'test');
    for (let i = 0; i < 3; i++) {
      const device = await server.services.devices.create({ serial: `0000000${i}`, hostname: `pi-${i}`, groupId: group.id, state: 'accepted' }, 'test');
      const token = await server.services.deviceTokens.tokenFor(device);
      const agent = new Agent({ server: server.url, node: device.id, token, stateDir: join(dir, `agent-${i}`), metrics: synthetic(`boot-${i}`), log: silentLogger, viewIntervalMs: 100 });
      const gossip = new AgentGossip(agent, { name: device.id, bindAddr: '127.0.0.1', bindPort: 0, timings: FAST, refreshMs: 500, log: silentLogger });
      nodes.push({ id: device.id, agent, gossip });
    }
  });

  after(async () => {
    for (const n of nodes) {
      await n.gossip.crash().catch(() => undefined);
      await n.agent.stop().catch(() => undefined);
    }
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('joins through the controller seed, and the controller sees every member', async () => {
    for (const n of nodes) {
      await n.gossip.start();
      await n.agent.start();
    }
    const own = server.gossip!.gossip!;
    await until('the controller member sees all three agents alive', () => nodes.every((n) => own.stateOf(n.id) === 'alive'));
    await until('every agent sees the other two and the controller', () => nodes.every((n) => n.gossip.gossip!.members().filter((m) => m.state === 'alive').length === 4));
    for (const n of nodes) await until(`${n.id} alive`, async () => (await server.store.health.get(n.id))?.health === 'alive');
    assert.ok(nodes.every((n) => n.gossip.gossip!.member(CONTROLLER_MEMBER)?.state === 'alive'));
  });

  it('a crashed agent is declared dead by the group, and the controller follows the group', async () => {
    const victim = nodes[2]!;
    const sentBefore = victim.agent.status.lastSeq;
    await victim.gossip.crash();
    await victim.agent.stop(); // closes its socket: the controller's own detector has nothing more to say for 30 s (deadAfterSeconds)
    const started = Date.now();
    await until('peers see it dead', () => nodes.slice(0, 2).every((n) => n.gossip.gossip!.stateOf(victim.id) === 'dead'));
    const h = await until('the controller marks it dead', async () => {
      const row = await server.store.health.get(victim.id);
      return row?.health === 'dead' ? row : null;
    });
    assert.match(h.reason ?? '', /gossip group/);
    assert.ok(Date.now() - started < 15_000, 'well before the 30 s the controller alone would wait');
    // The survivors stay alive in everyone's eyes.
    for (const n of nodes.slice(0, 2)) assert.equal((await server.store.health.get(n.id))?.health, 'alive');
    assert.ok(victim.agent.status.lastSeq >= sentBefore);
  });

  it('the controller stops promptly while agents are still connected', async () => {
    const t0 = Date.now();
    await server.close();
    assert.ok(Date.now() - t0 < 10_000, `closed in ${Date.now() - t0} ms`);
  });
});
