// Health and self-healing as the dashboard shows them: phi, the remediation history (health.*,
// job.*, power.* and device.reimage events) in words, and metric samples as chart points.
import type { DroverEvent, Health, Job, Metrics } from './types';

/** Event families that make up a device's remediation history (the API's type filter syntax). */
export const HISTORY_TYPES = ['health.*', 'job.*', 'power.*', 'device.reimage', 'demo.killed'] as const;

export function isHistoryEvent(type: string): boolean {
  return type.startsWith('health.') || type.startsWith('job.') || type.startsWith('power.') || type === 'device.reimage' || type === 'demo.killed';
}

/** The detector's phi: two decimals when small, "≥ 1e6" for "silent forever". */
export function formatPhi(phi: number | null | undefined): string {
  if (phi === null || phi === undefined || !Number.isFinite(phi)) return '—';
  if (phi >= 1e6) return '≥ 1e6';
  if (phi >= 100) return String(Math.round(phi));
  return phi.toFixed(phi >= 10 ? 1 : 2);
}

export const HEALTH_TEXT: Record<Health, string> = {
  alive: 'heartbeats arrive on time',
  suspect: 'heartbeats are late',
  dead: 'silent past the policy limit, or declared dead by its gossip group',
  unknown: 'no agent has connected yet',
};

export const STEP_LABEL: Record<string, string> = { reboot: 'reboot', 'power-cycle': 'power cycle', reimage: 're-image', fail: 'mark failed' };
const step = (s: unknown) => (typeof s === 'string' ? (STEP_LABEL[s] ?? s) : 'step');
const str = (v: unknown) => (typeof v === 'string' ? v : v === undefined || v === null ? '' : JSON.stringify(v));

export type Tone = 'good' | 'bad' | 'warn' | 'neutral';

/** One history entry in words: what happened, why, and whether it is good news. */
export function describeHistory(e: DroverEvent): { title: string; detail: string; tone: Tone } {
  const d = e.data;
  switch (e.type) {
    case 'health.changed': {
      const to = str(d.to);
      return { title: `Health ${str(d.from) || '?'} → ${to}`, detail: str(d.reason), tone: to === 'alive' ? 'good' : to === 'dead' ? 'bad' : to === 'suspect' ? 'warn' : 'neutral' };
    }
    case 'health.remediation.started':
      return { title: 'Remediation started', detail: [str(d.reason), Array.isArray(d.ladder) ? `ladder: ${d.ladder.map(step).join(' → ')}` : ''].filter(Boolean).join(' · '), tone: 'warn' };
    case 'health.remediation.step':
      return { title: `Remediation: ${step(d.step)}`, detail: str(d.reason), tone: 'warn' };
    case 'health.remediation.skipped':
      return { title: `Skipped ${step(d.step)}`, detail: str(d.why), tone: 'neutral' };
    case 'health.remediation.step-failed':
      return { title: `${step(d.step)} failed`, detail: str(d.error), tone: 'bad' };
    case 'health.remediation.throttled':
      return { title: 'Remediation throttled', detail: `${str(d.stepsLastHour)} steps in the last hour (at most ${str(d.max)}): flapping`, tone: 'bad' };
    case 'health.remediation.exhausted':
      return { title: 'Remediation ladder exhausted', detail: str(d.reason), tone: 'bad' };
    case 'health.recovered':
      return { title: `Recovered after ${step(d.step)}`, detail: [typeof d.after === 'number' ? `${d.after} s after the ladder started` : '', str(d.reason) ? `was: ${str(d.reason)}` : ''].filter(Boolean).join(' · '), tone: 'good' };
    case 'health.failed':
      return { title: 'Marked failed', detail: str(d.reason), tone: 'bad' };
    case 'job.queued': {
      const cmd = Array.isArray(d.command) ? d.command.map(String).join(' ') : str(d.command);
      return { title: `Job queued: ${str(d.kind)}`, detail: [cmd ? `$ ${cmd}` : '', str(d.job)].filter(Boolean).join(' · '), tone: 'neutral' };
    }
    case 'job.started':
      return { title: `Job started: ${str(d.kind)}`, detail: str(d.job), tone: 'neutral' };
    case 'job.finished': {
      const state = str(d.state);
      const parts = [d.exitCode !== null && d.exitCode !== undefined ? `exit code ${str(d.exitCode)}` : '', str(d.error), typeof d.durationMs === 'number' ? `${d.durationMs} ms` : '', str(d.job)];
      return { title: `Job ${state}: ${str(d.kind)}`, detail: parts.filter(Boolean).join(' · '), tone: state === 'succeeded' ? 'good' : 'bad' };
    }
    case 'power.failed':
      return { title: `Power ${str(d.action)} failed`, detail: [str(d.error), str(d.reason)].filter(Boolean).join(' · '), tone: 'bad' };
    case 'demo.killed':
      return { title: 'Killed (demo)', detail: 'the virtual Pi hangs like a crashed one', tone: 'bad' };
    case 'device.reimage':
      return { title: 'Re-image requested', detail: `a fresh root filesystem on the next boot (generation ${str(d.generation)})`, tone: 'warn' };
    default:
      if (e.type.startsWith('power.')) {
        return { title: `Power ${e.type.slice('power.'.length)}`, detail: [d.driver ? `driver ${str(d.driver)}` : '', typeof d.ms === 'number' ? `${d.ms} ms` : '', str(d.reason)].filter(Boolean).join(' · '), tone: 'neutral' };
      }
      return { title: e.type, detail: Object.entries(d).map(([k, v]) => `${k}=${str(v)}`).join('  '), tone: 'neutral' };
  }
}

export const JOB_DONE: ReadonlySet<Job['state']> = new Set(['succeeded', 'failed', 'timeout', 'lost']);

// --- metrics --------------------------------------------------------------------------------

/** One point of the metrics chart; null where the sample has no such value. */
export interface MetricPoint {
  t: number;
  /** Mean busy fraction of the cores, in %. */
  cpu: number | null;
  /** 1-minute load average. */
  load: number | null;
  /** Memory in use, in %. */
  mem: number | null;
  /** °C. */
  temp: number | null;
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** A raw sample (`GET …/metrics` raw items, or a live `sample` message's `m`). */
export function pointFromSample(ts: string, m: Partial<Metrics>): MetricPoint | null {
  const t = Date.parse(ts);
  if (Number.isNaN(t)) return null;
  const cpu = Array.isArray(m.cpu) && m.cpu.length ? m.cpu.reduce((a, b) => a + b, 0) / m.cpu.length : null;
  const mem = Array.isArray(m.mem) && m.mem[0] > 0 ? 1 - m.mem[1] / m.mem[0] : null;
  return { t, cpu: cpu === null ? null : cpu * 100, load: num(m.load?.[0]), mem: mem === null ? null : mem * 100, temp: num(m.temp) };
}

/** A one-minute rollup (`minute` is `YYYY-MM-DDTHH:MM`, UTC). */
export function pointFromRollup(r: Record<string, unknown>): MetricPoint | null {
  const t = Date.parse(`${String(r.minute)}:00Z`);
  if (Number.isNaN(t)) return null;
  const cpu = num(r.cpu);
  const mem = num(r.memUsed);
  return { t, cpu: cpu === null ? null : cpu * 100, load: num(r.load1), mem: mem === null ? null : mem * 100, temp: num(r.temp) };
}

/** Points by time, one per timestamp (the latest wins), oldest first. */
export function mergePoints(current: MetricPoint[], incoming: MetricPoint[]): MetricPoint[] {
  if (incoming.length === 0) return current;
  const last = current[current.length - 1];
  // The usual live case: newer samples at the end.
  if (last && incoming.every((p, i) => p.t > (i === 0 ? last.t : incoming[i - 1]!.t))) return [...current, ...incoming];
  const byT = new Map(current.map((p) => [p.t, p]));
  for (const p of incoming) byT.set(p.t, p);
  return [...byT.values()].sort((a, b) => a.t - b.t);
}

/** At most `max` points: neighbours averaged into equal time buckets (the shape stays, the DOM stays small). */
export function downsample(points: MetricPoint[], max: number): MetricPoint[] {
  if (points.length <= max) return points;
  const from = points[0]!.t;
  const span = points[points.length - 1]!.t - from || 1;
  const buckets: MetricPoint[][] = Array.from({ length: max }, () => []);
  for (const p of points) buckets[Math.min(max - 1, Math.floor(((p.t - from) / span) * max))]!.push(p);
  const mean = (ps: MetricPoint[], k: 'cpu' | 'load' | 'mem' | 'temp') => {
    const vs = ps.map((p) => p[k]).filter((v): v is number => v !== null);
    return vs.length ? vs.reduce((a, b) => a + b, 0) / vs.length : null;
  };
  return buckets
    .filter((b) => b.length)
    .map((b) => ({ t: b.reduce((a, p) => a + p.t, 0) / b.length, cpu: mean(b, 'cpu'), load: mean(b, 'load'), mem: mean(b, 'mem'), temp: mean(b, 'temp') }));
}
