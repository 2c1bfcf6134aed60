// AgentClient end to end against a real ws server (FakeController) on 127.0.0.1: handshake,
// replay in acked batches, live heartbeats, offline buffering and reconnect with nothing lost or
// stored twice, jobs with streamed output, back-off bounds, a refused token, dead sockets.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { SampleBuffer } from './buffer.js';
import { AgentClient, backoffDelay, DEFAULT_BACKOFF, type AgentClientOptions } from './client.js';
import { wsUrl } from './config.js';
import { FakeController } from './fake-controller.suite.js';
import { JobRunner } from './jobs.js';
import type { Metrics } from './protocol.js';

const TOKEN = 'device-token-123';
const M: Metrics = { cpu: [0.25, 0.5], load: [0.1, 0.2, 0.3], mem: [1000, 500], disk: [2000, 1000], net: [10, 20], uptime: 42 };

const dirs: string[] = [];
const controllers: FakeController[] = [];
const clients: AgentClient[] = [];
const buffers: SampleBuffer[] = [];

after(async () => {
  await Promise.allSettled(clients.map((c) => c.stop()));
  for (const b of buffers) b.close();
  await Promise.allSettled(controllers.map((c) => c.close()));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'drover-agent-client-'));
  dirs.push(d);
  return d;
}

async function controller(opts: Partial<ConstructorParameters<typeof FakeController>[0]> = {}): Promise<FakeController> {
  const c = await FakeController.start({ token: TOKEN, heartbeatMs: 1000, ...opts });
  controllers.push(c);
  return c;
}

function openBuffer(dir = tempDir()): SampleBuffer {
  const b = SampleBuffer.open({ dir });
  buffers.push(b);
  return b;
}

function client(ctl: FakeController, buffer: SampleBuffer, extra: Partial<AgentClientOptions> = {}): AgentClient {
  const c = new AgentClient({
    url: wsUrl(ctl.url),
    token: TOKEN,
    buffer,
    jobs: new JobRunner({ commands: { reboot: ['true'], shutdown: ['true'] }, powerDelayMs: 50 }),
    hello: () => ({ node: 'dev_1', bootId: 'boot-1', imageId: null, version: '0.1.0-test' }),
    backoff: { baseMs: 20, capMs: 200, resetAfterMs: 60_000 },
    ...extra,
  });
  clients.push(c);
  return c;
}

function isContiguous(seqs: number[], from: number, to: number): boolean {
  return seqs.length === to - from + 1 && seqs.every((s, i) => s === from + i);
}

describe('backoffDelay', () => {
  it('is full jitter under min(cap, base·2^attempt)', () => {
    const o = DEFAULT_BACKOFF;
    assert.equal(backoffDelay(0, o, () => 0), 0);
    assert.equal(backoffDelay(0, o, () => 0.999999), 499);
    assert.equal(backoffDelay(3, o, () => 0.5), 2000);
    assert.equal(backoffDelay(6, o, () => 0.999999), 29_999); // 500·64 > cap
    assert.equal(backoffDelay(1000, o, () => 0.999999), 29_999); // no overflow to Infinity/NaN
    for (let a = 0; a < 20; a++) {
      const d = backoffDelay(a, o);
      assert.ok(d >= 0 && d < Math.min(o.capMs, o.baseMs * 2 ** a), `attempt ${a}: ${d}`);
    }
  });
});

describe('AgentClient', () => {
  it('says hello, replays the buffer in acked batches in order, then sends live heartbeats', async () => {
    const ctl = await controller({ ackDelayMs: 20 });
    const buffer = openBuffer();
    for (let i = 0; i < 23; i++) buffer.push(1_700_000_000_000 + i, M);
    const c = client(ctl, buffer, { replayBatch: 5 });
    const welcomes: number[] = [];
    c.on('welcome', (w) => welcomes.push(w.heartbeatMs));
    c.start();
    await ctl.waitFor(() => ctl.stored.length === 23, 5000, '23 replayed samples');
    await ctl.waitFor(() => buffer.size === 0, 2000, 'acks');
    const hello = ctl.hellos[0]!;
    assert.equal(hello.node, 'dev_1');
    assert.equal(hello.stream, buffer.stream);
    assert.equal(hello.bootId, 'boot-1');
    assert.deepEqual(welcomes, [1000]);
    assert.equal(c.heartbeatMs, 1000);
    const batches = ctl.of('batch');
    assert.deepEqual(batches.map((b) => b.items.length), [5, 5, 5, 5, 3]);
    assert.equal(ctl.overlappingBatches, 0, 'each batch waits for the previous ack');
    assert.ok(isContiguous(ctl.seqs(), 1, 23));
    assert.equal(c.state, 'live');

    const s = buffer.push(Date.now(), M);
    c.offer(s);
    await ctl.waitFor(() => ctl.of('hb').length === 1, 2000, 'a heartbeat');
    assert.equal(ctl.of('hb')[0]!.seq, 24);
    await ctl.waitFor(() => buffer.size === 0, 2000, 'hb ack');
    assert.equal(ctl.duplicates, 0);
    assert.deepEqual(ctl.invalid, []);
  });

  it('buffers while the controller is gone and replays everything once after it returns', async () => {
    const ctl = await controller();
    const dir = tempDir();
    let buffer = openBuffer(dir);
    let c = client(ctl, buffer);
    c.start();
    await ctl.waitFor(() => ctl.hellos.length === 1, 3000, 'hello');
    for (let i = 0; i < 5; i++) c.offer(buffer.push(Date.now(), M));
    await ctl.waitFor(() => ctl.stored.length === 5 && buffer.size === 0, 3000, 'live samples');

    await ctl.goOffline();
    // Offline: the agent keeps sampling; some samples go out just as the link dies.
    for (let i = 0; i < 40; i++) c.offer(buffer.push(Date.now(), M));
    assert.equal(buffer.size, 40);

    // The agent itself restarts while offline: the buffer file carries the samples over.
    await c.stop();
    buffer.close();
    buffer = openBuffer(dir);
    assert.equal(buffer.size, 40);
    assert.equal(buffer.lastSeq, 45);
    for (let i = 0; i < 7; i++) buffer.push(Date.now(), M);
    c = client(ctl, buffer, { replayBatch: 16 });
    c.start();
    await new Promise((r) => setTimeout(r, 150)); // a few refused dials
    await ctl.comeBack();
    await ctl.waitFor(() => ctl.stored.length === 52, 5000, 'replay of 47 samples');
    await ctl.waitFor(() => buffer.size === 0, 2000, 'acks');
    for (let i = 0; i < 3; i++) c.offer(buffer.push(Date.now(), M));
    await ctl.waitFor(() => ctl.stored.length === 55, 2000, 'live after replay');
    assert.ok(isContiguous(ctl.seqs(), 1, 55), `stored seqs ${ctl.seqs().join(',')}`);
    assert.equal(new Set(ctl.stored.map((s) => s.stream)).size, 1, 'one stream across the restart');
    assert.equal(ctl.duplicates, 0);
    assert.equal(ctl.overlappingBatches, 0);
    assert.deepEqual(ctl.invalid, []);
  });

  it('replays what was in flight when the connection dropped, without storing it twice', async () => {
    const ctl = await controller({ ackDelayMs: 10_000 }); // acks never arrive before the drop
    const buffer = openBuffer();
    const c = client(ctl, buffer);
    c.start();
    await ctl.waitFor(() => c.state === 'live', 3000, 'live');
    for (let i = 0; i < 4; i++) c.offer(buffer.push(Date.now(), M));
    await ctl.waitFor(() => ctl.stored.length === 4, 2000, 'hbs');
    assert.equal(buffer.size, 4, 'not acked yet');
    ctl.ackDelayMs = 0;
    ctl.dropConnections();
    await ctl.waitFor(() => ctl.hellos.length === 2 && buffer.size === 0, 5000, 'reconnect and ack');
    // The second welcome said ack=4: nothing needed replaying.
    assert.ok(isContiguous(ctl.seqs(), 1, 4));
    assert.equal(ctl.duplicates, 0);
  });

  it('runs exec jobs with streamed output and reports the exit code', async () => {
    const ctl = await controller();
    const c = client(ctl, openBuffer());
    c.start();
    await ctl.waitFor(() => c.connected, 3000, 'welcome');
    ctl.sendJob('job_1', 'exec', { sh: 'echo first; sleep 0.3; echo second >&2; exit 3' });
    await ctl.waitFor(() => ctl.of('job-result').length === 1, 5000, 'job result');
    const kinds = ctl.messages.filter((m) => m.t.startsWith('job')).map((m) => m.t);
    assert.equal(kinds[0], 'job-started');
    assert.equal(kinds[kinds.length - 1], 'job-result');
    const out = ctl.of('job-output');
    assert.ok(out.length >= 2, 'output streamed in at least two chunks (a sleep apart)');
    assert.deepEqual(out.find((o) => o.stream === 'stdout')?.data, 'first\n');
    assert.deepEqual(out.find((o) => o.stream === 'stderr')?.data, 'second\n');
    const r = ctl.of('job-result')[0]!;
    assert.equal(r.ok, false);
    assert.equal(r.exitCode, 3);
    assert.equal(r.output, 'first\nsecond\n');
    assert.ok(r.durationMs >= 250);

    ctl.sendJob('job_2', 'exec', { argv: ['printf', '%s-%s', 'a b', 'c'] });
    await ctl.waitFor(() => ctl.of('job-result').length === 2, 5000, 'second job result');
    const r2 = ctl.of('job-result')[1]!;
    assert.equal(r2.job, 'job_2');
    assert.equal(r2.ok, true);
    assert.equal(r2.exitCode, 0);
    assert.equal(r2.output, 'a b-c');
    assert.deepEqual(ctl.invalid, []);
  });

  it('acknowledges a reboot before running the reboot command', async () => {
    const dir = tempDir();
    const marker = join(dir, 'rebooted');
    const ctl = await controller();
    const c = client(ctl, openBuffer(), {
      jobs: new JobRunner({ commands: { reboot: ['touch', marker], shutdown: ['true'] }, powerDelayMs: 200 }),
    });
    c.start();
    await ctl.waitFor(() => c.connected, 3000, 'welcome');
    ctl.sendJob('job_r', 'reboot', {});
    await ctl.waitFor(() => ctl.of('job-result').length === 1, 3000, 'reboot result');
    assert.equal(ctl.of('job-result')[0]!.ok, true);
    assert.equal(existsSync(marker), false, 'the command waits until the result is out');
    await ctl.waitFor(() => existsSync(marker), 3000, 'the reboot command');
  });

  it('keeps retrying with bounded back-off while the token is refused (401), and connects once it is accepted', async () => {
    const ctl = await controller({ refuseWith: 401 });
    const c = client(ctl, openBuffer(), { backoff: { baseMs: 10, capMs: 150, resetAfterMs: 60_000 } });
    const delays: number[] = [];
    const statuses: (number | undefined)[] = [];
    c.on('retry', (r) => delays.push(r.delayMs));
    c.on('disconnected', (d) => statuses.push(d.status));
    c.start();
    await ctl.waitFor(() => ctl.refused >= 3, 5000, 'three refused upgrades');
    assert.ok(statuses.slice(0, 3).every((s) => s === 401));
    // Refused tokens wait about the cap: [cap/2, cap].
    for (const d of delays) assert.ok(d >= 75 && d <= 150, `delay ${d}`);
    assert.equal(c.connected, false);
    ctl.refuseWith = null;
    await ctl.waitFor(() => ctl.hellos.length === 1, 3000, 'hello after the token is accepted');
    await ctl.waitFor(() => c.connected, 2000, 'welcome');
  });

  it('a wrong token (real 401 from the token check) does not crash the client', async () => {
    const ctl = await controller();
    const c = new AgentClient({
      url: wsUrl(ctl.url),
      token: 'not-the-token',
      buffer: openBuffer(),
      jobs: new JobRunner(),
      hello: () => ({ node: 'dev_1', bootId: 'b', imageId: null, version: 't' }),
      backoff: { baseMs: 10, capMs: 60, resetAfterMs: 60_000 },
    });
    clients.push(c);
    c.start();
    await ctl.waitFor(() => ctl.refused >= 4, 5000, 'repeated refusals');
    assert.equal(ctl.hellos.length, 0);
    assert.ok(c.state === 'waiting' || c.state === 'connecting');
  });

  it('backs off exponentially (bounded) while nothing listens, and resets after a long connection', async () => {
    const ctl = await controller();
    await ctl.goOffline();
    const c = client(ctl, openBuffer(), { backoff: { baseMs: 20, capMs: 160, resetAfterMs: 300 }, random: () => 0.999 });
    const delays: number[] = [];
    const at: number[] = [];
    c.on('retry', (r) => {
      delays.push(r.delayMs);
      at.push(performance.now());
    });
    c.start();
    while (delays.length < 6) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(delays.slice(0, 6), [19, 39, 79, 159, 159, 159]);
    // Real time between dials follows the delays (bounded: never more than cap + slack).
    for (let i = 1; i < at.length; i++) assert.ok(at[i]! - at[i - 1]! < 160 + 150, `gap ${at[i]! - at[i - 1]!}`);

    await ctl.comeBack();
    await ctl.waitFor(() => c.connected, 3000, 'connected');
    await new Promise((r) => setTimeout(r, 350)); // longer than resetAfterMs
    delays.length = 0;
    ctl.dropConnections();
    while (delays.length < 1) await new Promise((r) => setTimeout(r, 10));
    assert.equal(delays[0], 19, 'a connection that lasted starts the back-off over');
  });

  it('drops a connection whose peer stops answering pings', async () => {
    const ctl = await controller();
    const c = client(ctl, openBuffer(), { pingMs: 100 });
    const disc: number[] = [];
    c.on('disconnected', () => disc.push(performance.now()));
    c.start();
    await ctl.waitFor(() => c.connected, 3000, 'connected');
    const t0 = performance.now();
    // The server stops reading: pings pile up unanswered, as with a dead link.
    for (const ws of ctl.sockets) (ws as unknown as { _socket: { pause(): void } })._socket.pause();
    while (disc.length === 0) await new Promise((r) => setTimeout(r, 10));
    const ms = disc[0]! - t0;
    assert.ok(ms < 500, `detected after ${ms} ms (2 ping intervals = 200)`);
  });

  it('reconnects and replays again when a batch is never acked', async () => {
    const ctl = await controller();
    const buffer = openBuffer();
    for (let i = 0; i < 10; i++) buffer.push(Date.now(), M);
    ctl.ackPaused = true;
    const c = client(ctl, buffer, { ackTimeoutMs: 150, replayBatch: 4 });
    c.start();
    await ctl.waitFor(() => ctl.of('batch').length === 1, 3000, 'first batch');
    await ctl.waitFor(() => ctl.hellos.length === 2, 3000, 'reconnect after the ack timeout');
    ctl.ackPaused = false;
    await ctl.waitFor(() => buffer.size === 0, 5000, 'everything acked');
    assert.ok(isContiguous(ctl.seqs(), 1, 10));
    assert.equal(ctl.duplicates, 0, 'the welcome ack skipped what was stored');
  });

  it('closes cleanly on stop and does not redial', async () => {
    const ctl = await controller();
    const c = client(ctl, openBuffer());
    c.start();
    await ctl.waitFor(() => c.connected, 3000, 'connected');
    await c.stop();
    await ctl.waitFor(() => ctl.closes.length === 1, 2000, 'close');
    assert.equal(ctl.closes[0]!.code, 1000);
    const upgrades = ctl.upgrades;
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(ctl.upgrades, upgrades);
    assert.equal(c.state, 'stopped');
  });
});
