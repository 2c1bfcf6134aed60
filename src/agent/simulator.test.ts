// The fleet simulator against a real controller in this process (services + API on SQLite, real
// WebSocket on loopback): 1,000 real Agents with synthetic metrics become alive, their samples
// are stored, one killed device leaves alive while the rest stay, and revived it is alive again
// with a new boot.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { buildApp } from '../api/app.js';
import { createServices, type Services } from '../services/index.js';
import { Store } from '../store/store.js';
import type { Metrics } from './protocol.js';
import { createSimDevices, startFleetSimulator, SyntheticMetrics, type FleetSimulator, type SimDevice } from './simulator.js';
import { until } from '../../test/helpers/wait.js';

/** 1,000 agents, fewer only where the open-file limit cannot hold three descriptors each (client socket, server socket, buffer file). */
function fleetSize(): number {
  const want = Number(process.env.DROVER_SIM_AGENTS ?? 1000);
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (m && m[1] !== 'unlimited') {
      const fit = Math.floor((Number(m[1]) - 300) / 3);
      if (fit < want) {
        process.stderr.write(`\n*** simulator test: open-file limit ${m[1]} holds ${fit} agents, not ${want}; raise it with ulimit -n\n`);
        return Math.max(10, fit);
      }
    }
  } catch {
    /* not Linux: take the wish */
  }
  return want;
}


describe('SyntheticMetrics', () => {
  it('is deterministic per seed, device and boot, moves between samples, and passes as a Pi sample', async () => {
    const a = new SyntheticMetrics(7, 'dev_a', 0);
    const b = new SyntheticMetrics(7, 'dev_a', 0);
    const other = new SyntheticMetrics(7, 'dev_a', 1);
    assert.equal(await a.bootId(), await b.bootId());
    assert.notEqual(await a.bootId(), await other.bootId(), 'a new boot, a new boot id');
    assert.match(await a.bootId(), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const xs: Metrics[] = [];
    const ys: Metrics[] = [];
    for (let i = 0; i < 50; i++) {
      xs.push(await a.sample());
      ys.push(await b.sample());
    }
    const strip = (m: Metrics) => ({ ...m, uptime: 0 });
    assert.deepEqual(xs.map(strip), ys.map(strip), 'same seed, same walk');
    assert.notDeepEqual(xs[0]!.cpu, xs[49]!.cpu, 'the walk moves');
    for (const m of xs) {
      assert.ok(m.cpu.length >= 1 && m.cpu.every((c) => c >= 0 && c <= 1));
      assert.ok(m.mem[1] > 0 && m.mem[1] < m.mem[0] && m.disk[1] > 0 && m.disk[1] < m.disk[0]);
      assert.ok(m.temp === undefined || (m.temp > 20 && m.temp < 95));
    }
    assert.ok(xs[49]!.net[0] > xs[0]!.net[0], 'counters grow');
  });
});

describe('fleet simulator: 1,000 real agents against a real controller on loopback', () => {
  const N = fleetSize();
  const dir = mkdtempSync(join(tmpdir(), 'drover-sim-'));
  // The agents' buffers on tmpfs, as on a Pi (/run): on a disk every agent's start and clean
  // stop fsyncs its buffer file, a thousand fsyncs each way.
  const stateRoot = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'drover-sim-agents-'));
  let store: Store | undefined;
  let services: Services | undefined;
  let app: FastifyInstance | undefined;
  let sim: FleetSimulator | undefined;
  let devices: SimDevice[] = [];
  let server = '';

  before(async () => {
    store = await Store.open(join(dir, 'drover.db'));
    services = createServices(store, { sessionTtl: 3600, dataDir: dir, agent: { heartbeatMs: 1000, healthTickMs: 500 } });
    app = await buildApp({ services, logger: false, webRoot: null });
    await app.listen({ host: '127.0.0.1', port: 0 });
    await services.health.start();
    server = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  });

  after(async () => {
    // Everything, in order, whatever failed: agents first (clean closes), then the controller.
    await sim?.stop().catch(() => undefined);
    await services?.health.stop().catch(() => undefined);
    await app?.close().catch(() => undefined);
    await services?.agents.close().catch(() => undefined);
    await store?.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    rmSync(stateRoot, { recursive: true, force: true });
  });

  it(`${N} agents become alive and report; a killed one leaves alive, revived it returns with a new boot`, async () => {
    const s = services!;
    const db = store!;
    // Quick verdicts, no remediation (the ladder is tested elsewhere). The pause is generous:
    // a thousand agents and the controller share this process, so heartbeats can be late.
    const group = await s.groups.create({ name: 'sim', policy: { health: { remediate: false, acceptablePauseSeconds: 3, deadAfterSeconds: 2, graceAfterBootSeconds: 0 } } }, 'test');
    let t = performance.now();
    devices = await createSimDevices({ services: s }, N, { groupId: group.id, serialBase: 0x5e000000 });
    const registerMs = performance.now() - t;
    assert.equal(new Set(devices.map((d) => d.node)).size, N);

    t = performance.now();
    sim = startFleetSimulator({ server, devices, heartbeatMs: 1000, stateRoot, seed: 1, client: { backoff: { baseMs: 200, capMs: 2000, resetAfterMs: 60_000 } } });
    await sim.ready;
    const alive = async () => (await db.health.countByHealth()).alive ?? 0;
    await until(`${N} agents connected`, () => sim!.stats().connected === N, 20_000, 200);
    await until(`${N} devices alive`, async () => (await alive()) === N, 20_000, 200);
    const aliveMs = performance.now() - t;

    // Samples arrive and are stored, from every device.
    await until('samples of every device stored', async () => {
      const r = await sql<{ n: number; devices: number }>`select count(*) as n, count(distinct device_id) as devices from metrics`.execute(db.db);
      return Number(r.rows[0]!.devices) === N && Number(r.rows[0]!.n) >= 2 * N;
    }, 10_000, 200);
    const st = sim.stats();
    assert.equal(st.running, N);
    assert.ok(st.acked > 0 && st.samples >= 2 * N, JSON.stringify(st));
    assert.equal(st.dropped, 0);
    assert.equal(s.agents.connected().length, N);

    // One dies: it leaves alive (suspect, then dead); the others stay alive.
    const victim = devices[Math.floor(N / 2)]!.node;
    const bootBefore = (await db.health.get(victim))!.agent.bootId;
    t = performance.now();
    await sim.kill(victim);
    await until('the killed device to leave alive', async () => {
      const h = (await db.health.get(victim))!.health;
      return h === 'suspect' || h === 'dead';
    }, 15_000, 200);
    const leaveMs = performance.now() - t;
    assert.equal(sim.stats().running, N - 1);
    assert.equal(await alive(), N - 1, 'only the killed device left alive');
    assert.equal((await db.health.get(victim))!.agent.connected, false);

    // Revived (a power cycle): a new boot id, alive again.
    await sim.revive(victim);
    await until('the revived device alive', async () => (await db.health.get(victim))!.health === 'alive', 15_000, 200);
    const after = (await db.health.get(victim))!;
    assert.notEqual(after.agent.bootId, bootBefore);
    assert.equal(after.agent.connected, true);
    assert.equal(await alive(), N);

    process.stderr.write(`\nsimulator: ${N} devices registered in ${(registerMs / 1000).toFixed(1)} s; all alive ${(aliveMs / 1000).toFixed(1)} s after the start; the killed one left alive after ${(leaveMs / 1000).toFixed(1)} s; ${JSON.stringify(sim.stats())}\n`);
  });
});
