// Gossip membership (SWIM + Lifeguard) in virtual time: the production GossipMember code on a
// simulated network (sim-network.ts) and a discrete-event clock, so hours of protocol time for
// a 1,000-member group take minutes of CPU. Only the wire and the clock are simulated.
//
//   node --import tsx bench/gossip.ts [--members 1000] [--kills 20] [--fp-members 200] [--fp-hours 1] [--seed 1] [--quick]
//
// 1. Detection (N = --members, Lifeguard on and off, clean network): ~20 members crash one after
//    another; per crash: time to the first suspicion, to the first death declaration, until every
//    live member has it dead, and dissemination (first death → all). Also steady-state bytes per
//    member per second.
// 2. False positives (N = --fp-members, --fp-hours virtual hours per row): 0 / 5 / 10 % independent
//    datagram loss, Lifeguard on and off; plus, for half as long, 2 % of members with a 1.5 s
//    inbound delay (the Lifeguard paper's "slow member"). A false positive is an alive member
//    declared dead; counted once per (member, incarnation) episode however many declared it.
// Results: Markdown on stdout and bench/results/gossip.{json,md}.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pushPullScale } from '../src/gossip/config.js';
import { retransmitLimit } from '../src/gossip/broadcast-queue.js';
import { SimCluster, SIM_PORT, simAddr } from '../src/gossip/sim-cluster.js';
import { suspicionTimeout } from '../src/gossip/suspicion.js';

const root = new URL('../', import.meta.url).pathname;
const argv = process.argv.slice(2);
const arg = (name: string, dflt: number) => (argv.includes(name) ? Number(argv[argv.indexOf(name) + 1]) : dflt);
const QUICK = argv.includes('--quick');
const N = arg('--members', QUICK ? 200 : 1000);
const KILLS = arg('--kills', QUICK ? 5 : 20);
const FP_N = arg('--fp-members', QUICK ? 100 : 200);
const FP_HOURS = arg('--fp-hours', QUICK ? 0.1 : 1);
const SEED = arg('--seed', 1);

const cpuSeconds = (since: NodeJS.CpuUsage) => {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1e6;
};
const pct = (xs: number[], p: number) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
};
const sec = (ms: number) => (Number.isFinite(ms) ? (ms / 1000).toFixed(2) : '—');
const log = (s: string) => process.stderr.write(`${s}\n`);

interface Detection {
  lifeguard: boolean;
  members: number;
  kills: number;
  undetected: number;
  firstSuspectMs: number[];
  firstDeadMs: number[];
  allKnowMs: number[];
  disseminationMs: number[];
  udpBytesPerMemberS: number;
  streamBytesPerMemberS: number;
  packetsPerMemberS: number;
  bootstrapVirtualS: number;
  cpuS: number;
}

async function detection(lifeguard: boolean): Promise<Detection> {
  const t0 = process.cpuUsage();
  log(`detection: ${N} members, lifeguard ${lifeguard ? 'on' : 'off'}: building the group…`);
  const c = await SimCluster.create({ size: N, seed: SEED, lifeguard });
  if (!c.runUntil(() => c.converged(), 600_000, 1000)) throw new Error('the group did not converge');
  const bootstrapVirtualS = c.sched.now() / 1000;
  // Steady-state traffic on a clean network, long enough to include push-pulls.
  const steadyMs = QUICK ? 120_000 : 300_000;
  const s0 = c.net.totals();
  c.sched.runFor(steadyMs);
  const s1 = c.net.totals();
  const perMemberS = (x: number) => x / N / (steadyMs / 1000);

  const firstSuspect = new Map<string, number>();
  const firstDead = new Map<string, number>();
  const deadBy = new Map<string, Set<number>>();
  c.members.forEach((m, i) =>
    m.on('change', (info) => {
      const t = c.sched.now();
      if (info.state === 'suspect' && !firstSuspect.has(info.name)) firstSuspect.set(info.name, t);
      if (info.state === 'dead') {
        if (!firstDead.has(info.name)) firstDead.set(info.name, t);
        let set = deadBy.get(info.name);
        if (!set) deadBy.set(info.name, (set = new Set()));
        set.add(i);
      }
    }),
  );

  const r: Detection = { lifeguard, members: N, kills: 0, undetected: 0, firstSuspectMs: [], firstDeadMs: [], allKnowMs: [], disseminationMs: [], udpBytesPerMemberS: perMemberS(s1.bytesSent - s0.bytesSent), streamBytesPerMemberS: perMemberS(s1.streamBytesSent - s0.streamBytesSent), packetsPerMemberS: perMemberS(s1.packetsSent - s0.packetsSent), bootstrapVirtualS, cpuS: 0 };
  for (let k = 0; k < KILLS; k++) {
    let v: number;
    do v = Math.floor(c.random() * N);
    while (!c.up[v]);
    const name = `m${v}`;
    firstSuspect.delete(name);
    firstDead.delete(name);
    deadBy.delete(name);
    const killedAt = c.sched.now();
    c.kill(v);
    const live = () => c.up.filter(Boolean).length;
    const everyone = c.runUntil(() => (deadBy.get(name)?.size ?? 0) >= live(), 300_000, 50);
    r.kills++;
    if (!everyone) r.undetected++;
    const fs = firstSuspect.get(name);
    const fd = firstDead.get(name);
    if (fs !== undefined) r.firstSuspectMs.push(fs - killedAt);
    if (fd !== undefined) r.firstDeadMs.push(fd - killedAt);
    if (everyone && fd !== undefined) {
      r.allKnowMs.push(c.sched.now() - killedAt);
      r.disseminationMs.push(c.sched.now() - fd);
    }
    log(`  kill ${k + 1}/${KILLS} ${name}: suspect +${sec((fs ?? NaN) - killedAt)} s, dead +${sec((fd ?? NaN) - killedAt)} s, all +${everyone ? sec(c.sched.now() - killedAt) : 'never'} s`);
    c.sched.runFor(5000);
  }
  for (let i = 0; i < N; i++) if (c.up[i]) void c.members[i]!.stop();
  r.cpuS = cpuSeconds(t0);
  return r;
}

interface FalsePositives {
  scenario: string;
  lifeguard: boolean;
  loss: number;
  members: number;
  slowMembers: number;
  virtualHours: number;
  memberHours: number;
  /** Alive (healthy) members declared dead, per (member, incarnation) episode. */
  fpEpisodes: number;
  fpPerMemberHour: number;
  /** Member-level death declarations of alive members (one episode counts once per member that declared it). */
  fpDeclarations: number;
  /** Suspicion episodes of healthy members. */
  suspicions: number;
  suspicionsPerMemberHour: number;
  /** Episodes about the slow members (they are alive too, so these are false positives as well). */
  slowFpEpisodes: number;
  refutes: number;
  udpBytesPerMemberS: number;
  streamBytesPerMemberS: number;
  cpuS: number;
}

async function falsePositives(lifeguard: boolean, loss: number, slowFraction: number, hours: number): Promise<FalsePositives> {
  const t0 = process.cpuUsage();
  const scenario = slowFraction > 0 ? `${Math.round(slowFraction * 100)} % slow members (1.5 s inbound delay)` : `${Math.round(loss * 100)} % loss`;
  const c = await SimCluster.create({ size: FP_N, seed: SEED + 100, lifeguard });
  if (!c.runUntil(() => c.converged(), 600_000, 1000)) throw new Error('the group did not converge');
  c.net.loss = loss;
  const slow = new Set<number>();
  while (slow.size < Math.round(slowFraction * FP_N)) slow.add(Math.floor(c.random() * FP_N));
  for (const i of slow) c.net.setProcessingDelay(simAddr(i), SIM_PORT, 1500);
  const fp = new Set<string>();
  const slowFp = new Set<string>();
  const susp = new Set<string>();
  let fpDeclarations = 0;
  for (const m of c.members) {
    m.on('change', (info) => {
      const i = Number(info.name.slice(1));
      const key = `${info.name}#${info.incarnation}`;
      if (info.state === 'dead') {
        if (slow.has(i)) slowFp.add(key);
        else {
          fp.add(key);
          fpDeclarations++;
        }
      } else if (info.state === 'suspect' && !slow.has(i)) susp.add(key);
    });
  }
  const s0 = c.net.totals();
  const hourMs = 3_600_000;
  const totalMs = hours * hourMs;
  for (let done = 0; done < totalMs; done += 600_000) {
    c.sched.runFor(Math.min(600_000, totalMs - done));
    log(`  ${scenario}, lifeguard ${lifeguard ? 'on' : 'off'}: ${((done + Math.min(600_000, totalMs - done)) / 60_000).toFixed(0)} of ${(totalMs / 60_000).toFixed(0)} virtual min, ${fp.size} false positives, ${susp.size} suspicions`);
  }
  const s1 = c.net.totals();
  const memberHours = FP_N * hours;
  const healthyHours = (FP_N - slow.size) * hours;
  let refutes = 0;
  for (const m of c.members) refutes += m.stats().refutes;
  for (const m of c.members) void m.stop();
  return {
    scenario,
    lifeguard,
    loss,
    members: FP_N,
    slowMembers: slow.size,
    virtualHours: hours,
    memberHours,
    fpEpisodes: fp.size,
    fpPerMemberHour: fp.size / healthyHours,
    fpDeclarations,
    suspicions: susp.size,
    suspicionsPerMemberHour: susp.size / healthyHours,
    slowFpEpisodes: slowFp.size,
    refutes,
    udpBytesPerMemberS: (s1.bytesSent - s0.bytesSent) / FP_N / (totalMs / 1000),
    streamBytesPerMemberS: (s1.streamBytesSent - s0.streamBytesSent) / FP_N / (totalMs / 1000),
    cpuS: cpuSeconds(t0),
  };
}

const started = process.cpuUsage();
const wallStart = Date.now();
const detections: Detection[] = [];
for (const lifeguard of [true, false]) detections.push(await detection(lifeguard));
const fps: FalsePositives[] = [];
for (const loss of [0, 0.05, 0.1]) for (const lifeguard of [true, false]) fps.push(await falsePositives(lifeguard, loss, 0, FP_HOURS));
// The extra scenario runs half as long: without Lifeguard its suspicion storm is the costliest row.
for (const lifeguard of [true, false]) fps.push(await falsePositives(lifeguard, 0, 0.02, FP_HOURS / 2));

const minMs = suspicionTimeout(4, N, 1000);
const implied = {
  suspicionMinS: minMs / 1000,
  suspicionMaxS: (6 * minMs) / 1000,
  // SWIM paper: expected time to the first detection of a failed member, in protocol periods.
  firstDetectionS: Math.E / (Math.E - 1),
  retransmitLimit: retransmitLimit(4, N),
  pushPullIntervalS: pushPullScale(30_000, N) / 1000,
  lifeguardFpReduction: '>50× fewer false positives than SWIM (Lifeguard paper, Dadgar et al. 2018)',
};

const lines: string[] = [];
lines.push(`# Gossip (SWIM + Lifeguard) in virtual time`, '');
lines.push(`Production GossipMember code on a simulated LAN (0.5–1 ms one-way latency), memberlist DefaultLANConfig timings. Seed ${SEED}. CPU ${cpuSeconds(started).toFixed(0)} s, wall ${((Date.now() - wallStart) / 1000).toFixed(0)} s${QUICK ? ' (--quick)' : ''}.`, '');
lines.push(`## Failure detection, ${N} members, ${KILLS} crashes one after another (p99 of ${KILLS} samples is their maximum)`, '');
lines.push('| | Lifeguard on | Lifeguard off | memberlist implied |', '|---|---|---|---|');
const [on, off] = detections as [Detection, Detection];
const row = (label: string, f: (d: Detection) => string, implied: string) => lines.push(`| ${label} | ${f(on)} | ${f(off)} | ${implied} |`);
row('first suspicion after the crash, p50 / p99 (s)', (d) => `${sec(pct(d.firstSuspectMs, 50))} / ${sec(pct(d.firstSuspectMs, 99))}`, `SWIM paper: e/(e−1) ≈ ${implied.firstDetectionS.toFixed(2)} probe periods on average`);
row('first member declares it dead, p50 / p99 (s)', (d) => `${sec(pct(d.firstDeadMs, 50))} / ${sec(pct(d.firstDeadMs, 99))}`, `first suspicion + ${implied.suspicionMinS} s (min) … ${implied.suspicionMaxS} s (max, Lifeguard without confirmations)`);
row('whole group knows, p50 / p99 (s)', (d) => `${sec(pct(d.allKnowMs, 50))} / ${sec(pct(d.allKnowMs, 99))}`, '—');
row('dissemination: first death → all, p50 / p99 (s)', (d) => `${sec(pct(d.disseminationMs, 50))} / ${sec(pct(d.disseminationMs, 99))}`, `each update sent ${implied.retransmitLimit}× per member (4·ceil(log10(N+1)))`);
row('crashes not known by every member within 300 s', (d) => `${d.undetected} of ${d.kills}`, '—');
row('UDP bytes per member per second (steady, no loss)', (d) => d.udpBytesPerMemberS.toFixed(0), '—');
row('push-pull (TCP) bytes per member per second', (d) => d.streamBytesPerMemberS.toFixed(0), `one full-state exchange per ${implied.pushPullIntervalS} s (interval scaled for N)`);
row('packets per member per second', (d) => d.packetsPerMemberS.toFixed(2), '2 (one ping + one ack; gossip rounds send only when there is news)');
row('CPU (s)', (d) => d.cpuS.toFixed(0), '');
lines.push('');
lines.push(`## False positives, ${FP_N} members${FP_N < N ? ` (fewer than ${N} to keep the CPU time down: the traffic under loss grows ~N²·log N)` : ''}`, '');
lines.push('A false positive is an alive member declared dead (one episode per member and incarnation, however many members declared it). Suspicions count episodes of healthy members being suspected. Memberlist implied: suspicion timeout ' + `${suspicionTimeout(4, FP_N, 1000) / 1000} s min / ${(6 * suspicionTimeout(4, FP_N, 1000)) / 1000} s max at N = ${FP_N}; Lifeguard paper: ${implied.lifeguardFpReduction}.`, '');
lines.push('| scenario | Lifeguard | virtual h | false positives | per member-hour | suspicions per member-hour | slow members declared dead | refutations | UDP B/member/s | push-pull B/member/s | CPU s |', '|---|---|---|---|---|---|---|---|---|---|---|');
for (const f of fps) lines.push(`| ${f.scenario} | ${f.lifeguard ? 'on' : 'off'} | ${f.virtualHours} | ${f.fpEpisodes} | ${f.fpPerMemberHour.toFixed(4)} | ${f.suspicionsPerMemberHour.toFixed(3)} | ${f.slowMembers ? f.slowFpEpisodes : '—'} | ${f.refutes} | ${f.udpBytesPerMemberS.toFixed(0)} | ${f.streamBytesPerMemberS.toFixed(0)} | ${f.cpuS.toFixed(0)} |`);
lines.push('');
const md = lines.join('\n');
process.stdout.write(`${md}\n`);
const outDir = join(root, 'bench', 'results');
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'gossip.json'), JSON.stringify({ seed: SEED, quick: QUICK, implied, detection: detections, falsePositives: fps, cpuS: cpuSeconds(started) }, null, 2));
writeFileSync(join(outDir, 'gossip.md'), `${md}\n`);
