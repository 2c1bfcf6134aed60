// AgentsService without sockets: hello answers with the stored ack and gossip seeds (other
// agents' members, never the agent itself, never one that left), and a newer connection of the
// same device replaces the older.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ControllerMessage } from '../agent/protocol.js';
import { newId } from '../domain/ids.js';
import { systemClock } from '../domain/time.js';
import { Store } from '../store/store.js';
import { AgentsService, type AgentSession } from './agents.service.js';
import { EventBus } from './event-bus.js';

describe('AgentsService', () => {
  const dir = mkdtempSync(join(tmpdir(), 'drover-agents-'));
  let store: Store;
  let agents: AgentsService;
  const ids: string[] = [];
  before(async () => {
    store = await Store.open(join(dir, 'drover.db'));
    agents = new AgentsService({ store, bus: new EventBus(), clock: systemClock, dataDir: dir }, { heartbeatMs: 1000 });
    for (let i = 0; i < 5; i++) {
      const id = newId('dev');
      ids.push(id);
      await store.devices.create({ id, serial: `0000000${i}`, macs: [], model: null, boardRevision: null, hostname: null, labels: {}, groupId: null, imageId: null, bootMode: null, state: 'running', ipAddresses: [], firstSeen: null, lastSeen: null, createdAt: new Date().toISOString() });
    }
  });
  after(async () => {
    await agents?.close();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function session(deviceId: string): AgentSession & { sent: ControllerMessage[]; closed: number | null } {
    const s = { deviceId, remote: null, sent: [] as ControllerMessage[], closed: null as number | null, send: (m: ControllerMessage) => void s.sent.push(m), close: (code: number) => void (s.closed = code) };
    return s;
  }
  async function hello(deviceId: string, port: number) {
    const s = session(deviceId);
    agents.attach(s);
    await agents.receive(s, { t: 'hello', v: 1, node: deviceId, bootId: 'b', imageId: null, version: 't', stream: 's', gossip: { addr: '127.0.0.1', port } });
    const w = s.sent.find((m) => m.t === 'welcome');
    assert.ok(w && w.t === 'welcome');
    return { s, seeds: w.seeds.map((x) => x.node) };
  }

  it('seeds are other agents with a gossip member, never the agent itself or one that left', async () => {
    const sessions = [];
    for (let i = 0; i < 4; i++) sessions.push((await hello(ids[i]!, 7000 + i)).s);
    await agents.detach(sessions[1]!);
    const { seeds } = await hello(ids[4]!, 7004);
    assert.deepEqual(new Set(seeds), new Set([ids[0], ids[2], ids[3]]));
  });

  it('a newer connection replaces the older one', async () => {
    const first = session(ids[0]!);
    agents.attach(first);
    const second = session(ids[0]!);
    agents.attach(second);
    assert.equal(first.closed, 4000);
  });
});
