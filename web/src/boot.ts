// A device's latest network boot as a sequence of phases, worked out from its events.
//
// A boot is the events since the latest `boot.dhcp` (or, without one, the latest `boot.tftp`, and
// so on down the known phases). Known phases keep their order; any other `boot.*` type goes in by
// time. Known phases after the furthest one reached are pending. A phase failed when its latest
// event is `<phase>.failed`, or for TFTP when files failed.
import { formatBytes, formatDuration, summarizeData } from './format';
import type { DroverEvent } from './types';

export type StepStatus = 'done' | 'failed' | 'pending';

export interface BootStep {
  /** The phase's event type (`boot.tftp`), without a `.failed` suffix. */
  phase: string;
  label: string;
  status: StepStatus;
  /** This boot's events for the phase, oldest first; empty while pending. */
  events: DroverEvent[];
  /** The phase's latest event. */
  latest: DroverEvent | null;
  /** One line: `16 files · 24.0 MB in 3.6 s`. */
  summary: string;
}

export interface BootTimeline {
  /** The time of the first step. */
  start: string;
  steps: BootStep[];
}

const DISCOVERED = 'device.discovered';

/** The known phases, in boot order. `device.discovered` only shows on a device's first boot. */
export const BOOT_PHASES: readonly { type: string; label: string }[] = [
  { type: DISCOVERED, label: 'Discovered' },
  { type: 'boot.dhcp', label: 'DHCP' },
  { type: 'boot.tftp', label: 'TFTP' },
  { type: 'boot.initramfs', label: 'Initramfs' },
  { type: 'boot.config', label: 'Config' },
  { type: 'boot.rootfs-download', label: 'Rootfs download' },
  { type: 'boot.overlay', label: 'Overlay' },
  { type: 'boot.switch-root', label: 'Switch root' },
  { type: 'agent.up', label: 'Agent up' },
];
const RANK = new Map(BOOT_PHASES.map((p, i) => [p.type, i]));
const LABEL = new Map(BOOT_PHASES.map((p) => [p.type, p.label]));

/** `boot.kernel-loaded` → `Kernel loaded`. */
function phaseLabel(phase: string): string {
  const known = LABEL.get(phase);
  if (known) return known;
  const words = phase.replace(/^boot\./, '').replace(/[.-]+/g, ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** The phase an event belongs to (null for events that are no boot phase) and whether it failed. */
export function phaseOf(type: string): { phase: string; failed: boolean } | null {
  const failed = type.endsWith('.failed');
  const base = failed ? type.slice(0, -'.failed'.length) : type;
  if (base !== DISCOVERED && RANK.has(base)) return { phase: base, failed };
  if (type.startsWith('boot.')) return { phase: base.startsWith('boot.') ? base : type, failed };
  return null;
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}
function str(v: unknown): string | null {
  return typeof v === 'string' && v.trim() ? v.trim() : null;
}
function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** A failure's own words, if it has any. */
function reason(data: Record<string, unknown>): string | null {
  return str(data.error) ?? str(data.message) ?? str(data.reason);
}

function summarize(phase: string, events: DroverEvent[], failed: boolean): string {
  const last = events[events.length - 1]!;
  const d = last.data;
  if (phase === 'boot.tftp') {
    // One boot can send its files in more than one burst: add them up.
    let files = 0;
    let bytes = 0;
    let ms = 0;
    let bad = 0;
    for (const e of events) {
      files += num(e.data.files) ?? 0;
      bytes += num(e.data.bytes) ?? 0;
      ms += num(e.data.ms) ?? 0;
      bad += num(e.data.failed) ?? 0;
    }
    const parts = [plural(files, 'file'), `${formatBytes(bytes)} in ${formatDuration(ms)}`];
    if (bad > 0) parts.push(`${bad} failed`);
    if (failed && reason(d)) parts.push(reason(d)!);
    return parts.join(' · ');
  }
  if (failed) return reason(d) ?? 'failed';
  if (phase === DISCOVERED) return [str(d.via) ? `via ${str(d.via)}` : null, str(d.model)].filter(Boolean).join(' · ');
  if (phase === 'boot.dhcp') return [str(d.kind), str(d.ip) ?? (str(d.mode) ? `${str(d.mode)} mode` : null)].filter(Boolean).join(' · ');
  const parts: string[] = [];
  const bytes = num(d.bytes);
  const rate = num(d.rate);
  const ms = num(d.ms);
  if (bytes !== null) parts.push(formatBytes(bytes));
  if (rate !== null) parts.push(`${formatBytes(rate)}/s`);
  else if (str(d.rate)) parts.push(str(d.rate)!);
  if (ms !== null) parts.push(`in ${formatDuration(ms)}`);
  return parts.length ? parts.join(' · ') : summarizeData(d);
}

/** The latest boot among `events` (any order), or null when there is no `boot.*` event at all. */
export function bootTimeline(events: readonly DroverEvent[]): BootTimeline | null {
  const sorted = [...events].sort((a, b) => a.id - b.id);
  const bootEvents = sorted.filter((e) => e.type.startsWith('boot.'));
  if (!bootEvents.length) return null;

  // The boot starts at the latest event of the earliest phase seen (DHCP, else TFTP, …).
  const rankOf = (e: DroverEvent) => RANK.get(phaseOf(e.type)?.phase ?? '') ?? Infinity;
  const firstRank = Math.min(...bootEvents.map(rankOf));
  const start = bootEvents.filter((e) => rankOf(e) === firstRank).at(-1)!;

  const byPhase = new Map<string, DroverEvent[]>();
  const add = (phase: string, e: DroverEvent) => byPhase.set(phase, [...(byPhase.get(phase) ?? []), e]);
  // Discovery belongs to the device's first boot: no boot event came before this one.
  const discovered = sorted.filter((e) => e.type === DISCOVERED).at(-1);
  if (discovered && (discovered.id >= start.id || !bootEvents.some((e) => e.id < start.id))) add(DISCOVERED, discovered);
  for (const e of sorted) {
    if (e.id < start.id) continue;
    const p = phaseOf(e.type);
    if (p) add(p.phase, e);
  }

  const reached: BootStep[] = [...byPhase].map(([phase, evs]) => {
    const latest = evs[evs.length - 1]!;
    const failedEvent = phaseOf(latest.type)?.failed ?? false;
    const tftpFailed = phase === 'boot.tftp' && evs.some((e) => (num(e.data.failed) ?? 0) > 0);
    return {
      phase,
      label: phaseLabel(phase),
      status: failedEvent || tftpFailed ? 'failed' : 'done',
      events: evs,
      latest,
      summary: summarize(phase, evs, failedEvent),
    };
  });

  // Known phases in their order, other phases slotted in by time; pending ones after the furthest.
  const at = (s: BootStep) => s.latest!.id;
  const known = reached.filter((s) => RANK.has(s.phase)).sort((a, b) => RANK.get(a.phase)! - RANK.get(b.phase)!);
  const other = reached.filter((s) => !RANK.has(s.phase)).sort((a, b) => at(a) - at(b));
  const furthest = Math.max(0, ...known.map((s) => RANK.get(s.phase)!));
  const steps: BootStep[] = [];
  while (known.length || other.length) {
    steps.push(!known.length || (other.length && at(other[0]!) < at(known[0]!)) ? other.shift()! : known.shift()!);
  }
  for (const p of BOOT_PHASES.slice(furthest + 1)) {
    steps.push({ phase: p.type, label: p.label, status: 'pending', events: [], latest: null, summary: 'pending' });
  }

  const first = reached.flatMap((s) => s.events).reduce((a, b) => (b.id < a.id ? b : a));
  return { start: first.time, steps };
}
