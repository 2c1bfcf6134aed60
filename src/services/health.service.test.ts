// The controller's side of health, end to end over real sockets: an agent connects on the
// WebSocket with its device token, heartbeats and is alive; it goes silent but stays connected
// (as a SIGSTOPped agent does), becomes suspect, then dead; the ladder asks it to reboot (no
// answer), then power-cycles it through the exec driver — a real script following bakery's PPI
// contract — whose "poweron" brings the agent back with a new boot; the device is alive again
// and the recovery is recorded. Every alert reaches a real webhook receiver, HMAC-signed.
// The agent here is a protocol peer written for the test: the controller is what is tested
// (the real agent has its own suite).
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import WebSocket from 'ws';
import { buildApp } from '../api/app.js';
import { AGENT_WS_PATH, type ControllerMessage } from '../agent/protocol.js';
import type { DroverEvent } from '../domain/records.js';
import { Store } from '../store/store.js';
import { createServices, type Services } from './index.js';
import { sign } from './webhook.js';
import { until } from '../../test/helpers/wait.js';

const metrics = { cpu: [0.1, 0.2], load: [0.1, 0.1, 0.1] as [number, number, number], mem: [1e9, 5e8] as [number, number], disk: [1e10, 5e9] as [number, number], net: [1, 1] as [number, number], uptime: 10 };

class TestAgent {
  ws!: WebSocket;
  seq = 0;
  acked = 0;
  jobs: ControllerMessage[] = [];
  private hb: NodeJS.Timeout | null = null;
  constructor(
    private readonly url: string,
    private readonly token: string,
    private readonly node: string,
  ) {}
  async connect(bootId: string): Promise<ControllerMessage> {
    this.ws = new WebSocket(this.url, { headers: { authorization: `Bearer ${this.token}` } });
    await new Promise<void>((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    const welcome = new Promise<ControllerMessage>((resolve) => {
      this.ws.on('message', (d) => {
        const m = JSON.parse(d.toString()) as ControllerMessage;
        if (m.t === 'welcome') resolve(m);
        if (m.t === 'ack') this.acked = m.seq;
        if (m.t === 'job') this.jobs.push(m);
      });
    });
    this.ws.send(JSON.stringify({ t: 'hello', v: 1, node: this.node, bootId, imageId: null, version: 'test', stream: 'st1' }));
    return welcome;
  }
  beat(everyMs: number): void {
    this.hb = setInterval(() => this.ws.send(JSON.stringify({ t: 'hb', seq: ++this.seq, ts: Date.now(), m: metrics })), everyMs);
  }
  silence(): void {
    if (this.hb) clearInterval(this.hb);
    this.hb = null;
  }
  close(): void {
    this.silence();
    this.ws?.terminate();
  }
}


describe('health and the remediation ladder (controller, real sockets)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'drover-health-'));
  let store: Store;
  let services: Services;
  let app: FastifyInstance;
  let hook: Server;
  const alerts: { type: string; signatureOk: boolean }[] = [];
  let agent: TestAgent | undefined;

  before(async () => {
    hook = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        alerts.push({ type: String(req.headers['x-drover-event']), signatureOk: req.headers['x-drover-signature'] === sign('s3cret', body) });
        res.end('ok');
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    const hookPort = (hook.address() as { port: number }).port;
    store = await Store.open(join(dir, 'drover.db'));
    services = createServices(store, {
      sessionTtl: 3600,
      dataDir: dir,
      agent: { heartbeatMs: 200, healthTickMs: 100 },
      webhook: { url: `http://127.0.0.1:${hookPort}/hook`, secret: 's3cret', backoffMs: 50 },
    });
    app = await buildApp({ services, logger: false, webRoot: null });
    await app.listen({ host: '127.0.0.1', port: 0 });
    await services.health.start();
  });

  after(async () => {
    agent?.close();
    await services?.health.stop();
    await app?.close();
    await services?.agents.close();
    await services?.webhook?.close();
    await store?.close();
    await new Promise((r) => hook?.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('alive → suspect → dead → reboot (unanswered) → power-cycle via the exec script → alive, recovered', async () => {
    const log = join(dir, 'ppi.log');
    const script = join(dir, 'ppi.sh');
    // bakery's PPI: JSON on stdin, "ok" on stdout; it records each call, and "poweron" drops a marker the test watches
    writeFileSync(script, `#!/bin/sh\nread -r req\necho "$req" >> '${log}'\ncase "$req" in *poweron*) touch '${join(dir, 'powered-on')}';; esac\necho ok\n`);
    chmodSync(script, 0o755);
    const group = await services.groups.create(
      {
        name: 'rack',
        settings: { power: { driver: 'exec', command: [script], cycleDelayMs: 100 } },
        policy: { health: { deadAfterSeconds: 1, acceptablePauseSeconds: 0.3, graceAfterBootSeconds: 0, stepTimeoutSeconds: 2, backoffSeconds: 0 } },
      },
      'test',
    );
    const device = await services.devices.create({ serial: 'abcd1234', hostname: 'pi-a', groupId: group.id, state: 'accepted' }, 'test');
    const token = await services.deviceTokens.tokenFor(device);
    const url = `ws://127.0.0.1:${(app.server.address() as { port: number }).port}${AGENT_WS_PATH}`;

    // a wrong token is refused on the upgrade
    const badWs = new WebSocket(url, { headers: { authorization: 'Bearer nope' } });
    const status = await new Promise<number>((resolve) => badWs.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
    assert.equal(status, 401);

    agent = new TestAgent(url, token, device.id);
    const welcome = await agent.connect('boot-1');
    assert.equal(welcome.t === 'welcome' && welcome.ack, 0);
    agent.beat(200);
    await until('alive', async () => (await store.health.get(device.id))?.health === 'alive');
    await until('acks', () => agent!.acked >= 3);
    assert.equal((await store.devices.get(device.id))!.state, 'running');

    agent.silence(); // connected but silent: a stopped process
    await until('dead', async () => (await store.health.get(device.id))?.health === 'dead');
    await until('the reboot job', () => agent!.jobs.find((j) => j.t === 'job' && j.kind === 'reboot'));
    await until('the power-on', () => existsSync(join(dir, 'powered-on')), 10_000);
    const calls = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { piId: string; action: string });
    assert.deepEqual(calls, [{ piId: 'abcd1234', action: 'poweroff' }, { piId: 'abcd1234', action: 'poweron' }]);

    // the power cycle "boots" the Pi: a new connection, a new boot id, heartbeats again
    agent.close();
    agent = new TestAgent(url, token, device.id);
    const again = await agent.connect('boot-2');
    assert.equal(again.t === 'welcome' && again.ack > 0, true, 'the stream resumes where the controller stored it');
    agent.beat(200);
    const recovered = await until('recovered', async () => (await store.events.list({ deviceId: device.id, type: 'health.recovered' }, { limit: 1 })).items[0]);
    assert.equal(recovered.data.step, 'power-cycle');

    const types = (await store.events.list({ deviceId: device.id }, { limit: 200 })).items.reverse().map((e: DroverEvent) => (e.type === 'health.changed' ? `${e.type}:${String(e.data.to)}` : e.type));
    const ladder = types.filter((t) => t.startsWith('health.') || t.startsWith('power.') || t.startsWith('job.'));
    const order = ['health.changed:alive', 'health.changed:suspect', 'health.changed:dead', 'health.remediation.started', 'health.remediation.step', 'job.queued', 'health.remediation.step', 'power.cycle', 'health.changed:alive', 'health.recovered'];
    let i = 0;
    for (const t of ladder) if (t === order[i]) i++;
    assert.equal(i, order.length, `ladder events in order; got ${ladder.join(', ')}`);
    assert.equal((await store.devices.get(device.id))!.state, 'running');

    await services.webhook!.idle();
    assert.ok(alerts.some((a) => a.type === 'health.recovered'));
    assert.ok(alerts.every((a) => a.signatureOk), 'every alert is signed with the shared secret');
  });
});
