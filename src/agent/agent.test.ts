// The Agent as a whole (sampling beat, welcome's interval, gossip hooks, graceful stop) and the
// bundled agent as the unit runs it (a real process against a real ws server, stopped by SIGTERM).
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { prereq, which } from '../../test/helpers/prereq.js';
import { Agent, type MetricsSource } from './agent.js';
import { BUFFER_FILE } from './buffer.js';
import { FakeController } from './fake-controller.suite.js';
import { createAgentLogger } from './log.js';
import type { Metrics, ViewMember } from './protocol.js';

const run = promisify(execFile);
const TOKEN = 'agent-test-token-xyz';
const root = new URL('../..', import.meta.url).pathname;
const M: Metrics = { cpu: [0.5], load: [0, 0, 0], mem: [100, 50], disk: [100, 50], net: [0, 0], uptime: 1 };

const dirs: string[] = [];
const controllers: FakeController[] = [];
const agents: Agent[] = [];
const children: ChildProcess[] = [];
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await Promise.allSettled(agents.map((a) => a.stop()));
  await Promise.allSettled(controllers.map((c) => c.close()));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'drover-agent-'));
  dirs.push(d);
  return d;
}

async function controller(opts: Partial<ConstructorParameters<typeof FakeController>[0]> = {}): Promise<FakeController> {
  const c = await FakeController.start({ token: TOKEN, ...opts });
  controllers.push(c);
  return c;
}

const synthetic: MetricsSource = { sample: async () => M, bootId: async () => 'boot-synthetic', imageId: async () => 'img_test' };

function agent(ctl: FakeController, extra: Partial<ConstructorParameters<typeof Agent>[0]> = {}): Agent {
  const a = new Agent({
    server: ctl.url,
    node: 'dev_1',
    token: TOKEN,
    stateDir: tempDir(),
    heartbeatMs: 50,
    metrics: synthetic,
    client: { backoff: { baseMs: 20, capMs: 100, resetAfterMs: 60_000 } },
    ...extra,
  });
  agents.push(a);
  return a;
}

const members = (n: number): ViewMember[] => [{ node: `dev_${n}`, state: 'alive', incarnation: n }];

describe('Agent', () => {
  it('samples on the welcome heartbeat, advertises gossip, hands seeds over, stops cleanly', async () => {
    const seeds = [{ node: 'ctl', addr: '10.0.0.1', port: 7946 }];
    const ctl = await controller({ heartbeatMs: 150, seeds });
    const got: unknown[] = [];
    const a = agent(ctl, { metrics: undefined, gossipAdvert: { addr: '10.0.0.9', port: 7946 }, onSeeds: (s) => got.push(s), version: '9.9.9' });
    await a.start();
    await ctl.waitFor(() => ctl.of('hb').length >= 6, 5000, 'six heartbeats');
    const hello = ctl.hellos[0]!;
    assert.deepEqual(hello.gossip, { addr: '10.0.0.9', port: 7946 });
    assert.equal(hello.version, '9.9.9');
    assert.match(hello.bootId, /^[0-9a-f-]{36}$/, 'the real boot id');
    assert.deepEqual(got, [seeds]);
    // The welcome's 150 ms beat replaced the configured 50 ms.
    // (A mean over several beats: one sample that was slow to read shifts a single gap.)
    const hbs = ctl.of('hb').slice(0, 6);
    const mean = (hbs[5]!.ts - hbs[0]!.ts) / 5;
    assert.ok(mean >= 120 && mean <= 220, `mean gap ${mean} ms; ts ${hbs.map((h) => h.ts).join(', ')}`);
    assert.equal(a.status.heartbeatMs, 150);
    assert.deepEqual(ctl.invalid, [], 'real /proc samples pass the controller validator');
    assert.ok(ctl.seqs().every((s, i) => s === i + 1));

    const dir = (a as unknown as { opts: { stateDir: string } }).opts.stateDir;
    await a.stop();
    await ctl.waitFor(() => ctl.closes.length === 1, 2000, 'close');
    assert.equal(ctl.closes[0]!.code, 1000);
    const header = JSON.parse(readFileSync(join(dir, BUFFER_FILE), 'utf8').split('\n')[0]!) as { stream: string; seq: number };
    assert.equal(header.stream, hello.stream);
    assert.equal(header.seq, a.status.lastSeq);
  });

  it('sends the gossip view at most once a second (latest wins) and again after every welcome', async () => {
    const ctl = await controller({ heartbeatMs: 10_000 });
    const a = agent(ctl, { viewIntervalMs: 300 });
    a.setView(members(0)); // before connecting: sent right after the welcome
    await a.start();
    await ctl.waitFor(() => ctl.of('view').length === 1, 3000, 'first view');
    assert.deepEqual(ctl.of('view')[0]!.members, members(0));
    for (let i = 1; i <= 10; i++) a.setView(members(i));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(ctl.of('view').length, 1, 'coalesced while the interval runs');
    await ctl.waitFor(() => ctl.of('view').length === 2, 2000, 'coalesced view');
    assert.deepEqual(ctl.of('view')[1]!.members, members(10));
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(ctl.of('view').length, 2, 'nothing new, nothing sent');

    ctl.dropConnections();
    await ctl.waitFor(() => ctl.hellos.length === 2 && ctl.of('view').length === 3, 3000, 'view after reconnect');
    assert.deepEqual(ctl.of('view')[2]!.members, members(10));
    const idx = (m: unknown) => ctl.messages.indexOf(m as never);
    assert.ok(idx(ctl.of('view')[2]) > idx(ctl.hellos[1]), 'the view follows the hello');
  });

  it('leaves malformed members out of the view and sends only protocol fields', async () => {
    const ctl = await controller({ heartbeatMs: 10_000 });
    const a = agent(ctl, { viewIntervalMs: 0 });
    await a.start();
    await ctl.waitFor(() => a.connected, 3000, 'welcome');
    const withExtra = { node: 'dev_2', state: 'suspect', incarnation: 3, phi: 2.5, addr: '10.0.0.2' } as ViewMember;
    a.setView([withExtra, { node: '', state: 'alive', incarnation: 1 }, { node: 'dev_3', state: 'zombie', incarnation: 1 } as unknown as ViewMember, { node: 'dev_4', state: 'alive', incarnation: -1 }]);
    await ctl.waitFor(() => ctl.of('view').length === 1, 2000, 'view');
    assert.deepEqual(ctl.of('view')[0]!.members, [{ node: 'dev_2', state: 'suspect', incarnation: 3, phi: 2.5 }]);
    assert.deepEqual(ctl.invalid, []);
    assert.equal(ctl.closes.length, 0);
  });

  it('keeps sampling while offline and delivers every sample once after reconnecting', async () => {
    const ctl = await controller({ heartbeatMs: 30 });
    const a = agent(ctl, { heartbeatMs: 30 });
    await a.start();
    await ctl.waitFor(() => ctl.stored.length >= 3, 3000, 'live samples');
    await ctl.goOffline();
    const before = a.status.lastSeq;
    while (a.status.lastSeq < before + 15) await new Promise((r) => setTimeout(r, 20));
    assert.ok(a.status.unacked >= 15);
    await ctl.comeBack();
    await ctl.waitFor(() => a.connected && a.status.unacked <= 1 && ctl.stored.length >= before + 15, 5000, 'replay');
    await a.stop();
    const seqs = ctl.seqs();
    assert.ok(seqs.every((s, i) => s === i + 1), `contiguous, in order: ${seqs.join(',')}`);
    assert.equal(ctl.duplicates, 0);
  });
});

describe('drover-agent bundle', () => {
  const dir = tempDir();
  const bundle = join(dir, 'drover-agent.mjs');

  it('builds without native code and answers --help and --version', async () => {
    const { stdout } = await run(process.execPath, [join(root, 'scripts/build-agent.mjs'), '--outfile', bundle], { cwd: root });
    assert.match(stdout, /KiB/);
    const size = statSync(bundle).size;
    assert.ok(size < 200 * 1024, `bundle is ${size} bytes`);
    assert.ok(!readFileSync(bundle, 'utf8').includes('.node"'), 'no native addon');
    const help = await run(process.execPath, [bundle, '--help']);
    assert.match(help.stdout, /--token-file <file>/);
    assert.match(help.stdout, /--state-dir <dir>/);
    const version = await run(process.execPath, [bundle, '--version']);
    assert.match(version.stdout, /^\d+\.\d+\.\d+/);
  });

  it('exits 78 with a clear message when the config is missing', async () => {
    assert.ok(existsSync(bundle));
    const err = await run(process.execPath, [bundle, '--config', join(dir, 'missing.json')]).then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(err?.code, 78);
    assert.match(err.stderr, /missing\.json does not exist/);
  });

  it('runs against a controller, reports, and stops gracefully on SIGTERM without logging the token', async () => {
    const ctl = await controller({ heartbeatMs: 100 });
    const cfg = join(dir, 'agent.json');
    writeFileSync(cfg, JSON.stringify({ server: ctl.url, node: 'dev_b', serial: '0000abcd', token: TOKEN }), { mode: 0o600 });
    const child = spawn(process.execPath, [bundle, '--config', cfg, '--state-dir', join(dir, 'state'), '--heartbeat-ms', '100', '--log-level', 'debug', '--gossip', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let stderr = '';
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    await ctl.waitFor(() => ctl.of('hb').length >= 3, 8000, 'heartbeats from the bundled agent');
    // The gossip member is bound before the first hello, which advertises it.
    const hello = ctl.of('hello')[0] as { gossip?: { addr: string; port: number } };
    assert.equal(hello.gossip?.addr, '127.0.0.1');
    assert.ok((hello.gossip?.port ?? 0) > 0);
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0);
    process.stderr.write(`# bundled agent RSS: ${(rssKb / 1024).toFixed(1)} MB\n`);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.equal(ctl.closes.at(-1)?.code, 1000);
    assert.ok(stderr.length > 0);
    assert.ok(!stderr.includes(TOKEN), 'the token never reaches the log');
    for (const line of stderr.trim().split('\n')) assert.doesNotThrow(() => JSON.parse(line), line);
    assert.match(stderr, /"msg":"connected to the controller"/);
    assert.deepEqual(ctl.invalid, []);
  });
});

describe('drover-agent.service', () => {
  const unit = readFileSync(join(root, 'data/agent/drover-agent.service'), 'utf8');

  it('starts after the network, restarts for ever (but not on a config error), and keeps the buffer across restarts', () => {
    assert.match(unit, /^After=network-online\.target$/m);
    assert.match(unit, /^Wants=network-online\.target$/m);
    assert.match(unit, /^ExecStart=\/usr\/local\/lib\/drover\/node .*\/usr\/local\/lib\/drover\/drover-agent\.mjs$/m);
    assert.match(unit, /^Restart=always$/m);
    assert.match(unit, /^RestartSec=2$/m);
    assert.match(unit, /^RestartPreventExitStatus=78$/m);
    assert.match(unit, /^RuntimeDirectory=drover-agent$/m);
    assert.match(unit, /^RuntimeDirectoryPreserve=restart$/m);
    for (const l of ['NoNewPrivileges=yes', 'ProtectHome=yes', 'PrivateTmp=yes', 'MemoryMax=64M', 'Nice=5']) assert.match(unit, new RegExp(`^${l}$`, 'm'));
    // Jobs reboot and restart units: nothing may take systemctl or writes to /etc away.
    assert.doesNotMatch(unit, /^(ProtectSystem|CapabilityBoundingSet|RestrictAddressFamilies)=/m);
  });

  it('passes `systemd-analyze verify`', prereq('systemd-analyze', which('systemd-analyze') !== null, 'systemd'), () => {
    const dir = tempDir();
    // verify checks that ExecStart exists; point it at a binary every machine has.
    writeFileSync(join(dir, 'drover-agent.service'), unit.replaceAll('/usr/local/lib/drover/node', '/bin/true'));
    return run('systemd-analyze', ['verify', join(dir, 'drover-agent.service')]).then(({ stderr }) => assert.equal(stderr.trim(), ''));
  });
});

describe('createAgentLogger', () => {
  it('writes one JSON line per event at or above its level, secrets redacted', () => {
    const lines: string[] = [];
    const log = createAgentLogger('info', (l) => lines.push(l));
    log.debug({}, 'hidden');
    log.info({ token: 'abc', Authorization: 'Bearer abc', err: new Error('boom'), n: 1 }, 'hello');
    assert.equal(lines.length, 1);
    assert.ok(lines[0]!.endsWith('\n'));
    const rec = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.equal(rec.level, 'info');
    assert.equal(rec.msg, 'hello');
    assert.equal(rec.token, '[redacted]');
    assert.equal(rec.Authorization, '[redacted]');
    assert.equal(rec.err, 'boom');
    assert.equal(rec.n, 1);
    assert.ok(!lines[0]!.includes('abc'));
  });
});
