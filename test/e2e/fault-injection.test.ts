// Fault injection with real processes in network namespaces: five device agents (the bundled
// drover-agent.mjs, each in its own namespace on a private bridge, each with its gossip member
// on UDP/TCP 7946) and a controller (--gossip-listen, so it is a member too). The faults, one
// after another on the same fleet:
//   - 5 % packet loss on every agent's egress for a sustained run: nobody is declared dead;
//   - 20 % loss: the fleet rides it out and is whole again once it ends;
//   - 200 ms latency on one agent: no false suspicion of it;
//   - SIGSTOP of one agent for 2.5 s (slow, not dead): suspect at most, never dead;
//   - SIGKILL of one agent: detected, and the ladder runs in order — reboot skipped (no agent),
//     power-cycle through the exec driver's real PPI script, whose "poweron" starts the agent
//     again — and the recovery is recorded;
//   - a partition of the group in two: each side sees the other dead, and they merge again;
//   - the controller stopped: an agent killed meanwhile is agreed dead by the group, and the
//     restarted controller catches up from the agents' views;
// and through all of it, no metric sample an agent buffered is lost (stored seqs contiguous).
//
// This kernel has no sch_netem, so `tc netem` cannot run: loss is nftables
// (`numgen random mod 100 < N drop` on each agent's output hook, what netem loss on each Pi's
// interface does), latency a userspace relay (test/helpers/delay-relay.ts) through which the
// delayed agent is reached and reaches the controller.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe } from 'node:test';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/load.js';
import { freeLabSubnet, Lab, netnsAvailable } from '../../src/demo/lab.js';
import type { DroverEvent } from '../../src/domain/records.js';
import { freePort } from '../../src/server/free-port.js';
import { startServer, type RunningServer } from '../../src/server/serve.js';
import { DelayRelay } from '../helpers/delay-relay.js';
import { outputDir, prereq, which } from '../helpers/prereq.js';
import { until } from '../helpers/wait.js';
import { sequentialSteps } from '../helpers/steps.js';

const root = new URL('../..', import.meta.url).pathname;
const N = 5;
const ok = prereq('root and network namespaces (iproute2)', netnsAvailable(), 'iproute2');
const okNft = ok.skip ? ok : prereq('nft (nftables) inside namespaces', which('nft') !== null, 'nftables');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


describe('fault injection (namespaces, real agent processes)', okNft, () => {
  const dir = mkdtempSync(join(tmpdir(), 'drover-faults-'));
  const bundle = join(dir, 'drover-agent.mjs');
  const requests = join(dir, 'power-requests.jsonl');
  const relay = new DelayRelay();
  let lab: Lab | undefined;
  let net = '';
  let server: RunningServer | undefined;
  let apiPort = 0;
  let gossipPort = 0;
  const agents: { id: string; serial: string; addr: string; cfg: string; proc: ChildProcess | null; log: string }[] = [];
  let watcher: NodeJS.Timeout | undefined;
  let requestsRead = 0;
  const figures: string[] = [];

  function startController(): Promise<RunningServer> {
    const config = loadConfig({ flags: { dataDir: join(dir, 'data'), listen: `${net}.1:${apiPort}`, gossipListen: `${net}.1:${gossipPort}`, agentHeartbeat: 1, tftpListen: 'off' }, env: {} });
    return startServer(config, { webRoot: null, announce: () => {}, logger: pino({ level: 'silent' }), healthTickMs: 250 });
  }

  function spawnAgent(i: number): void {
    const a = agents[i]!;
    const p = lab!.spawn(`a${i}`, process.execPath, [bundle, '--config', a.cfg, '--state-dir', join(dir, 'state', `a${i}`), '--log-level', 'debug', '--reboot-command', 'true']);
    p.stderr!.on('data', (d: Buffer) => (a.log += d.toString()));
    p.stdout!.on('data', () => undefined);
    a.proc = p;
  }

  function killAgent(i: number, signal: NodeJS.Signals = 'SIGKILL'): void {
    const a = agents[i]!;
    a.proc?.kill(signal);
    if (signal === 'SIGKILL') a.proc = null;
  }

  /** The "hardware" behind the PPI script: poweroff kills the agent, poweron starts it. */
  function followPowerSwitch(): void {
    let text = '';
    try {
      text = readFileSync(requests, 'utf8');
    } catch {
      return;
    }
    const lines = text.split('\n').filter(Boolean);
    for (const line of lines.slice(requestsRead)) {
      const req = JSON.parse(line) as { piId: string; action: string };
      const i = agents.findIndex((a) => a.serial === req.piId);
      if (i < 0) continue;
      if (req.action === 'poweroff') killAgent(i);
      if (req.action === 'poweron' && !agents[i]!.proc) spawnAgent(i);
    }
    requestsRead = lines.length;
  }

  const ns = (i: number) => lab!.name(`a${i}`);
  async function nft(i: number, script: string): Promise<void> {
    const r = spawnSync('ip', ['netns', 'exec', ns(i), 'nft', '-f', '-'], { input: script, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`nft in a${i}: ${r.stderr}`);
  }
  async function clearFaults(): Promise<void> {
    for (let i = 0; i < N; i++) spawnSync('ip', ['netns', 'exec', ns(i), 'nft', 'delete', 'table', 'inet', 'drover_fault'], { stdio: 'ignore' });
  }
  async function loss(percent: number): Promise<void> {
    for (let i = 0; i < N; i++) {
      await nft(i, `table inet drover_fault {\n chain out { type filter hook output priority 0; policy accept; numgen random mod 100 < ${percent} drop; }\n}\n`);
    }
  }

  const health = async (i: number) => (await server!.store.health.get(agents[i]!.id))?.health;
  const events = async (i: number, type: string, since: string): Promise<DroverEvent[]> =>
    (await server!.store.events.list({ deviceId: agents[i]!.id, type, since }, { limit: 500 })).items.reverse();
  const deadSince = async (since: string): Promise<string[]> => {
    const out: string[] = [];
    for (let i = 0; i < N; i++) for (const e of await events(i, 'health.changed', since)) if (e.data.to === 'dead') out.push(`a${i}`);
    return out;
  };
  /** What agent i's gossip member logged about another member (debug lines), after position `from`. */
  const sawState = (i: number, member: string, state: string, from = 0) => agents[i]!.log.slice(from).includes(`"member":"${member}","state":"${state}"`);
  /** The state agent i's gossip member last logged for another member (null before any). */
  const lastState = (i: number, member: string): string | null => {
    const at = agents[i]!.log.lastIndexOf(`"member":"${member}","state":"`);
    return at < 0 ? null : /"state":"(\w+)"/.exec(agents[i]!.log.slice(at))![1]!;
  };
  /** Every running agent's member sees every other agent alive. */
  const groupWhole = () => agents.every((a, i) => !a.proc || agents.every((b, j) => j === i || lastState(i, b.id) === 'alive'));
  async function allAlive(ms: number, what: string): Promise<void> {
    await until(what, async () => {
      for (let i = 0; i < N; i++) if ((await health(i)) !== 'alive') return false;
      const own = server!.gossip?.gossip;
      return own ? agents.every((a) => own.stateOf(a.id) === 'alive') : true;
    }, ms, 100);
  }

  before(async () => {
    execFileSync(process.execPath, [join(root, 'scripts/build-agent.mjs'), '--outfile', bundle], { cwd: root, stdio: 'ignore' });
    lab = await Lab.create();
    net = freeLabSubnet();
    await lab.uplink({ addr: `${net}.1/24` });
    for (let i = 0; i < N; i++) await lab.host(`a${i}`, { addr: `${net}.${11 + i}/24` });
    apiPort = await freePort();
    gossipPort = await freePort();
    server = await startController();
    const ppi = join(dir, 'ppi.sh');
    // bakery's PPI: the request is JSON on stdin without a newline; "ok" on stdout.
    writeFileSync(ppi, `#!/bin/sh\nreq=$(cat)\nprintf '%s\\n' "$req" >> '${requests}'\necho ok\n`);
    chmodSync(ppi, 0o755);
    const group = await server.services.groups.create({
      name: 'fault-rack',
      settings: { power: { driver: 'exec', command: [ppi], cycleDelayMs: 500 } },
      policy: { health: { deadAfterSeconds: 4, acceptablePauseSeconds: 1, graceAfterBootSeconds: 0, stepTimeoutSeconds: 30, backoffSeconds: 0, maxRemediationsPerHour: 50 } },
    }, 'test');
    // Agent 4 is reached through the delay relay (gossip) and reaches the controller through its TCP proxy.
    const relayPort = await relay.udpRelay({ host: `${net}.1`, port: 0 }, { host: `${net}.15`, port: 7946 });
    await relay.tcpProxy({ host: `${net}.1`, port: relayPort }, { host: `${net}.15`, port: 7946 }, 'to-target');
    const proxyPort = await relay.tcpProxy({ host: `${net}.1`, port: 0 }, { host: `${net}.1`, port: apiPort }, 'to-target');
    for (let i = 0; i < N; i++) {
      const serial = `fa0000${i}${i}`;
      const d = await server.services.devices.create({ serial, hostname: `fault-${i}`, groupId: group.id, state: 'accepted' }, 'test');
      const token = await server.services.deviceTokens.tokenFor(d);
      const cfg = join(dir, `agent-${i}.json`);
      const delayed = i === 4;
      const gossip = delayed ? { listen: '0.0.0.0:7946', advertise: `${net}.1:${relayPort}` } : { listen: '0.0.0.0:7946' };
      writeFileSync(cfg, JSON.stringify({ server: `http://${net}.1:${delayed ? proxyPort : apiPort}`, node: d.id, serial, token, gossip }), { mode: 0o600 });
      agents.push({ id: d.id, serial, addr: `${net}.${11 + i}`, cfg, proc: null, log: '' });
    }
    for (let i = 0; i < N; i++) spawnAgent(i);
    watcher = setInterval(followPowerSwitch, 100);
  });

  after(async () => {
    if (watcher) clearInterval(watcher);
    mkdirSync(outputDir, { recursive: true });
    for (const [i, a] of agents.entries()) writeFileSync(join(outputDir, `fault-agent-${i}.log`), a.log);
    if (figures.length) process.stderr.write(`${figures.map((f) => `# fault: ${f}`).join('\n')}\n`);
    for (let i = 0; i < agents.length; i++) killAgent(i);
    await server?.close().catch(() => undefined);
    await relay.close();
    await lab?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  // The steps build on each other: after a failure the rest are skipped.
  const step = sequentialSteps();

  step('five agents in namespaces come up alive and form one gossip group with the controller', async () => {
    await allAlive(30_000, 'every agent alive to the controller and in its gossip view');
    for (let i = 0; i < N; i++) {
      await until(`a${i} sees the whole group`, () => agents.every((b, j) => j === i || sawState(i, b.id, 'alive')), 15_000, 100);
    }
  });

  step('5 % loss on every agent for 25 s: nobody is declared dead', async () => {
    const since = new Date().toISOString();
    const from = agents.map((a) => a.log.length);
    await loss(5);
    await sleep(25_000);
    await clearFaults();
    assert.deepEqual(await deadSince(since), [], 'no device dead to the controller');
    const gossipDead = agents.flatMap((a, i) => agents.filter((b) => b !== a && sawState(i, b.id, 'dead', from[i])).map((b) => `${i}→${b.serial}`));
    assert.deepEqual(gossipDead, [], 'no member declared dead by any gossip member');
    const suspicions = agents.reduce((n, a, i) => n + (a.log.slice(from[i]).match(/"state":"suspect"/g)?.length ?? 0), 0);
    figures.push(`5 % loss, 25 s, 5 agents: 0 dead, ${suspicions} gossip suspicions (refuted)`);
    await allAlive(20_000, 'all alive after the loss');
  });

  step('20 % loss for 15 s: the fleet rides it out and is whole again after', async () => {
    const since = new Date().toISOString();
    const from = agents.map((a) => a.log.length);
    await loss(20);
    await sleep(15_000);
    await clearFaults();
    assert.deepEqual(await deadSince(since), [], 'the controller kept every agent: their heartbeats still arrive over TCP');
    await allAlive(40_000, 'all alive and in the group again after the loss');
    const gossipDead = agents.reduce((n, a, i) => n + agents.filter((b) => b !== a && sawState(i, b.id, 'dead', from[i])).length, 0);
    figures.push(`20 % loss, 15 s: controller 0 dead; gossip "dead" verdicts later refuted: ${gossipDead}`);
  });

  step('200 ms latency on one agent for 15 s: no false suspicion of it', async () => {
    const since = new Date().toISOString();
    const from = agents.map((a) => a.log.length);
    relay.delayMs = 200;
    await sleep(15_000);
    relay.delayMs = 0;
    const id = agents[4]!.id;
    assert.deepEqual(await events(4, 'health.changed', since), [], 'its health never changed');
    const suspected = agents.filter((_, i) => i !== 4 && (sawState(i, id, 'suspect', from[i]) || sawState(i, id, 'dead', from[i])));
    assert.equal(suspected.length, 0, 'no peer suspected it');
    figures.push('200 ms latency on one agent, 15 s: no suspicion, health unchanged');
  });

  step('SIGSTOP for 2.5 s (slow, not dead): never declared dead, alive again after SIGCONT', async () => {
    const since = new Date().toISOString();
    killAgent(1, 'SIGSTOP');
    await sleep(2500);
    killAgent(1, 'SIGCONT');
    await allAlive(20_000, 'a1 alive again');
    assert.ok(!(await events(1, 'health.changed', since)).some((e) => e.data.to === 'dead'), 'not dead');
    assert.deepEqual(await events(1, 'health.remediation.*', since), [], 'no remediation');
  });

  step('SIGKILL of one agent: detected, the ladder runs in order with the PPI script called, recovery recorded', async () => {
    const since = new Date().toISOString();
    const t0 = Date.now();
    killAgent(0);
    const dead = await until('a0 dead', async () => (await events(0, 'health.changed', since)).find((e) => e.data.to === 'dead'), 30_000, 100);
    const recovered = await until('a0 recovered', async () => (await events(0, 'health.recovered', since))[0], 60_000, 100);
    const detect = Date.parse(dead.time) - t0;
    const heal = Date.parse(recovered.time) - t0;
    figures.push(`SIGKILL: dead after ${(detect / 1000).toFixed(1)} s (${String(dead.data.reason)}), recovered after ${(heal / 1000).toFixed(1)} s`);
    assert.ok(detect < 20_000, `detected in ${detect} ms`);
    const ladder = (await server!.store.events.list({ deviceId: agents[0]!.id, since }, { limit: 200 })).items.reverse()
      .map((e) => (e.type === 'health.changed' ? `health:${String(e.data.to)}` : e.type === 'health.remediation.skipped' || e.type === 'health.remediation.step' ? `${e.type}:${String(e.data.step)}` : e.type))
      .filter((t) => t.startsWith('health') || t.startsWith('power.'));
    const order = ['health:dead', 'health.remediation.started', 'health.remediation.skipped:reboot', 'health.remediation.step:power-cycle', 'power.cycle', 'health:alive', 'health.recovered'];
    let k = 0;
    for (const t of ladder) if (t === order[k]) k++;
    assert.equal(k, order.length, `ladder in order: ${ladder.join(', ')}`);
    const calls = readFileSync(requests, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { piId: string; action: string });
    assert.deepEqual(calls.filter((c) => c.piId === agents[0]!.serial), [{ piId: agents[0]!.serial, action: 'poweroff' }, { piId: agents[0]!.serial, action: 'poweron' }]);
    await allAlive(30_000, 'the whole fleet alive after the heal');
  });

  step('partition {a2, a3} from {controller, a0, a1, a4}: each side sees the other dead; healed, they merge', async () => {
    // The ladder would power-cycle the cut-off side; here only the detection and the merge are under test.
    const group = await server!.services.groups.get('fault-rack');
    await server!.services.groups.update(group.id, { policy: { health: { ...(group.policy.health as object), remediate: false } } }, 'test');
    const since = new Date().toISOString();
    const from = agents.map((a) => a.log.length);
    const minority = [2, 3];
    const majority = [0, 1, 4];
    // a4 is reached through the relay on the controller's address: it belongs with the controller.
    const majorityAddrs = [`${net}.1`, `${net}.11`, `${net}.12`, `${net}.15`];
    const minorityAddrs = [`${net}.13`, `${net}.14`];
    for (let i = 0; i < N; i++) {
      const others = minority.includes(i) ? majorityAddrs : minorityAddrs;
      await nft(i, `table inet drover_fault {\n chain out { type filter hook output priority 0; policy accept; ip daddr { ${others.join(', ')} } drop; }\n chain in { type filter hook input priority 0; policy accept; ip saddr { ${others.join(', ')} } drop; }\n}\n`);
    }
    await until('the controller sees a2 and a3 dead', async () => (await health(2)) === 'dead' && (await health(3)) === 'dead', 40_000, 100);
    await until('a3 sees the majority dead', () => majority.every((j) => sawState(3, agents[j]!.id, 'dead', from[3])), 40_000, 100);
    await until('a0 sees the minority dead', () => minority.every((j) => sawState(0, agents[j]!.id, 'dead', from[0])), 40_000, 100);
    for (const i of majority) assert.equal(await health(i), 'alive', `a${i} stays alive`);
    await clearFaults();
    const t0 = Date.now();
    await allAlive(60_000, 'merged again: everyone alive to the controller and its member');
    await until('a3 sees the majority alive again', () => majority.every((j) => sawState(3, agents[j]!.id, 'alive', from[3])), 60_000, 100);
    // Merged for every member, not only for the controller and a3: the next step counts on it.
    await until('every agent sees every other alive again', groupWhole, 90_000, 100);
    figures.push(`partition 2|3 (+controller): both sides detected; merged for every member ${((Date.now() - t0) / 1000).toFixed(1)} s after healing`);
    const done = await events(3, 'health.remediation.*', since);
    assert.deepEqual(done.map((e) => `${e.type} ${JSON.stringify(e.data)}`), [], 'remediation off: nothing was done to the cut-off side');
    await server!.services.groups.update(group.id, { policy: { health: { ...(group.policy.health as object), remediate: true } } }, 'test');
  });

  step('controller stopped: the group agrees an agent killed meanwhile is dead; the restarted controller catches up', async () => {
    await server!.close();
    server = undefined;
    const from = agents.map((a) => a.log.length);
    const victim = agents[2]!;
    killAgent(2);
    await until('the group agrees a2 is dead without the controller', () => [0, 1, 3, 4].every((i) => sawState(i, victim.id, 'dead', from[i])), 40_000, 100);
    const restart = Date.now();
    const since = new Date(restart).toISOString();
    server = await startController();
    const dead = await until('the controller learns a2 is dead', async () => (await events(2, 'health.changed', since)).find((e) => e.data.to === 'dead'), 30_000, 100);
    figures.push(`controller down: group agreed a2 dead; restarted controller marked it dead ${((Date.parse(dead.time) - restart) / 1000).toFixed(1)} s after start (${String(dead.data.reason)})`);
    assert.match(String(dead.data.reason), /gossip group/);
    await until('a2 healed by the ladder', async () => (await events(2, 'health.recovered', since))[0], 60_000, 100);
    await allAlive(30_000, 'the fleet whole again');
  });

  step('nothing an agent buffered was lost: every stored seq from 1 to the last, per agent', async () => {
    // Let the last acks land.
    await sleep(2000);
    for (const [i, a] of agents.entries()) {
      const rows = await server!.store.metrics.range(a.id, '1970-01-01T00:00:00.000Z', '2999-01-01T00:00:00.000Z', 1_000_000);
      const seqs = rows.map((r) => r.seq).sort((x, y) => x - y);
      assert.ok(seqs.length > 60, `a${i} stored ${seqs.length} samples`);
      const gaps = seqs.filter((s, k) => s !== k + 1);
      assert.deepEqual(gaps.slice(0, 5), [], `a${i}: seqs 1..${seqs.length} without gaps or duplicates`);
    }
    figures.push(`samples stored per agent: ${(await Promise.all(agents.map(async (a) => (await server!.store.metrics.range(a.id, '1970-01-01T00:00:00.000Z', '2999-01-01T00:00:00.000Z', 1_000_000)).length))).join(', ')}, no gaps`);
  });
});
