// Device health and the remediation ladder's rules. Pure: no I/O, no clock of its own — the
// health service feeds it the time, the detector's phi and the device's facts, and carries out
// what it decides.
import { DroverError } from './errors.js';
import type { DeviceHealth } from './records.js';

export const HEALTH_STATES = ['unknown', 'alive', 'suspect', 'dead'] as const;
export type Health = (typeof HEALTH_STATES)[number];

export const LADDER_STEPS = ['reboot', 'power-cycle', 'reimage', 'fail'] as const;
export type LadderStep = (typeof LADDER_STEPS)[number];

/** A group's health policy (`group.policy.health`); every field has a default. */
export interface HealthPolicy {
  /** Off: health is still shown, nothing is done about it. */
  remediate: boolean;
  /** phi at which a device is suspect (Akka/Cassandra: 8). */
  suspectPhi: number;
  /** How long a device stays suspect before it is dead, unless it recovers first. */
  deadAfterSeconds: number;
  /** Heartbeat silence the phi detector tolerates on top of the usual interval (Akka's acceptable pause). */
  acceptablePauseSeconds: number;
  /** No remediation until this long after a boot (the agent is still coming up). */
  graceAfterBootSeconds: number;
  /** Planned downtime: no remediation inside these windows, e.g. "Sun 02:00-04:00", "daily 23:30-00:30". */
  maintenance: string[];
  /** The ladder, in order; steps that cannot run for a device (no agent, no power driver) are skipped with a reason. */
  ladder: LadderStep[];
  /** How long each step waits for the device to be alive again before the next step. */
  stepTimeoutSeconds: number;
  /** Flapping protection: at most this many remediation steps per device per rolling hour; past it, the device is marked failed. */
  maxRemediationsPerHour: number;
  /** Wait after a ladder ended before a new one may start; doubles with each ladder in the last hour. */
  backoffSeconds: number;
}

export const DEFAULT_HEALTH_POLICY: HealthPolicy = {
  remediate: true,
  suspectPhi: 8,
  deadAfterSeconds: 30,
  acceptablePauseSeconds: 10,
  graceAfterBootSeconds: 180,
  maintenance: [],
  ladder: ['reboot', 'power-cycle', 'reimage', 'fail'],
  stepTimeoutSeconds: 300,
  maxRemediationsPerHour: 6,
  backoffSeconds: 60,
};

const NUMERIC: (keyof HealthPolicy)[] = ['suspectPhi', 'deadAfterSeconds', 'acceptablePauseSeconds', 'graceAfterBootSeconds', 'stepTimeoutSeconds', 'maxRemediationsPerHour', 'backoffSeconds'];

/** Reads `policy.health` from a group; unknown keys and bad values are refused with the field named. */
export function parseHealthPolicy(raw: unknown): HealthPolicy {
  if (raw === undefined || raw === null) return { ...DEFAULT_HEALTH_POLICY };
  if (typeof raw !== 'object' || Array.isArray(raw)) throw bad('policy.health must be an object');
  const out: HealthPolicy = { ...DEFAULT_HEALTH_POLICY, maintenance: [], ladder: [...DEFAULT_HEALTH_POLICY.ladder] };
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    if (key === 'remediate') {
      if (typeof value !== 'boolean') throw bad('policy.health.remediate must be true or false');
      out.remediate = value;
    } else if ((NUMERIC as string[]).includes(key)) {
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw bad(`policy.health.${key} must be a number ≥ 0`);
      (out as unknown as Record<string, number>)[key] = value;
    } else if (key === 'maintenance') {
      if (!Array.isArray(value) || !value.every((w) => typeof w === 'string')) throw bad('policy.health.maintenance must be a list of windows like "Sun 02:00-04:00"');
      for (const w of value) parseWindow(w);
      out.maintenance = value;
    } else if (key === 'ladder') {
      if (!Array.isArray(value) || value.length === 0 || !value.every((s) => (LADDER_STEPS as readonly unknown[]).includes(s))) {
        throw bad(`policy.health.ladder must be a non-empty list of ${LADDER_STEPS.join(', ')}`);
      }
      out.ladder = value as LadderStep[];
    } else {
      throw bad(`policy.health has no setting "${key}"`);
    }
  }
  if (out.suspectPhi <= 0) throw bad('policy.health.suspectPhi must be > 0');
  return out;
}

const bad = (message: string) => new DroverError('DROVER_VALIDATION', message);

const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

interface Window {
  days: Set<number>;
  from: number; // minutes after midnight
  to: number;
}

/** "Sun 02:00-04:00", "Mon,Wed 22:00-02:00" (crosses midnight), "daily 03:00-03:30". UTC. */
export function parseWindow(text: string): Window {
  const m = /^\s*([a-z,]+)\s+(\d{2}):(\d{2})-(\d{2}):(\d{2})\s*$/i.exec(text);
  if (!m) throw bad(`maintenance window "${text}" is not like "Sun 02:00-04:00" or "daily 03:00-03:30"`);
  const dayPart = m[1]!.toLowerCase();
  const days = new Set<number>();
  if (dayPart === 'daily') for (let d = 0; d < 7; d++) days.add(d);
  else {
    for (const d of dayPart.split(',')) {
      const i = DAYS.indexOf(d.slice(0, 3));
      if (i < 0 || (d.length !== 3 && !DAYS[i]!.startsWith(d.slice(0, 3)))) throw bad(`maintenance window "${text}": unknown day "${d}"`);
      days.add(i);
    }
  }
  const [h1, m1, h2, m2] = [m[2], m[3], m[4], m[5]].map(Number) as [number, number, number, number];
  if (h1 > 23 || h2 > 24 || m1 > 59 || m2 > 59) throw bad(`maintenance window "${text}": bad time`);
  return { days, from: h1 * 60 + m1, to: h2 * 60 + m2 };
}

export function inMaintenance(windows: string[], now: Date): boolean {
  const day = now.getUTCDay();
  const minute = now.getUTCHours() * 60 + now.getUTCMinutes();
  for (const text of windows) {
    const w = parseWindow(text);
    if (w.from <= w.to) {
      if (w.days.has(day) && minute >= w.from && minute < w.to) return true;
    } else {
      // crosses midnight: the evening part belongs to the named day, the morning to the next
      if (w.days.has(day) && minute >= w.from) return true;
      if (w.days.has((day + 6) % 7) && minute < w.to) return true;
    }
  }
  return false;
}

/** Health from the detector and the group's view. */
export function classify(input: { phi: number; suspectSince: number | null; now: number; gossipDead: boolean; policy: HealthPolicy; hasHeartbeats: boolean }): Health {
  if (input.gossipDead) return 'dead';
  if (!input.hasHeartbeats) return 'unknown';
  if (input.phi < input.policy.suspectPhi) return 'alive';
  if (input.suspectSince !== null && input.now - input.suspectSince >= input.policy.deadAfterSeconds * 1000) return 'dead';
  return 'suspect';
}

/** What the ladder remembers per device (stored as JSON in device_health.remediation). */
export interface RemediationState {
  /** Index into the policy's ladder of the step running now; absent when no ladder runs. */
  step?: number;
  /** That step's name (the policy may change while a ladder runs). */
  stepName?: LadderStep;
  stepStartedAt?: string;
  ladderStartedAt?: string;
  reason?: string;
  /** Job id of a running agent reboot, to tell its answer from an older one. */
  jobId?: string;
  /** When steps ran (rolling hour, for flapping protection). */
  history?: string[];
  /** When recent ladders ended (for back-off). */
  ended?: string[];
  /** The device was marked failed by the ladder and waits for a person. */
  failed?: boolean;
}

/** Whether a new ladder may start now for a dead device, and if not, why. */
export function mayStartLadder(s: RemediationState, policy: HealthPolicy, now: Date, bootedAt: string | null): { ok: true } | { ok: false; why: string } {
  if (!policy.remediate) return { ok: false, why: 'remediation is off in the group policy' };
  if (s.failed) return { ok: false, why: 'the device is marked failed' };
  if (s.step !== undefined) return { ok: false, why: 'a ladder is running' };
  if (bootedAt && now.getTime() - Date.parse(bootedAt) < policy.graceAfterBootSeconds * 1000) return { ok: false, why: 'grace after boot' };
  if (inMaintenance(policy.maintenance, now)) return { ok: false, why: 'maintenance window' };
  const hourAgo = now.getTime() - 3600_000;
  const recentLadders = (s.ended ?? []).filter((t) => Date.parse(t) > hourAgo);
  const last = recentLadders[recentLadders.length - 1];
  if (last) {
    const wait = policy.backoffSeconds * 1000 * 2 ** (recentLadders.length - 1);
    if (now.getTime() - Date.parse(last) < wait) return { ok: false, why: `back-off (${Math.round(wait / 1000)} s after the last ladder)` };
  }
  return { ok: true };
}

/** Steps run in the rolling hour, to decide whether the device is flapping. */
export function stepsInLastHour(s: RemediationState, now: Date): number {
  const hourAgo = now.getTime() - 3600_000;
  return (s.history ?? []).filter((t) => Date.parse(t) > hourAgo).length;
}

/** Keeps only the last hour of timestamps so the stored state stays small. */
export function pruneHour(times: string[] | undefined, now: Date): string[] {
  const hourAgo = now.getTime() - 3600_000;
  return (times ?? []).filter((t) => Date.parse(t) > hourAgo);
}

/** Health as the API and live streams show it (the ladder's bookkeeping stays inside). */
export function publicHealth(h: DeviceHealth, now = new Date()) {
  const r = h.remediation;
  return {
    health: h.health,
    phi: h.phi === null ? null : Math.round(h.phi * 100) / 100,
    since: h.since,
    reason: h.reason,
    lastHeartbeat: h.lastHeartbeat,
    agent: h.agent,
    remediation: {
      ...(r.stepName ? { step: r.stepName } : {}),
      ...(r.stepStartedAt ? { stepStartedAt: r.stepStartedAt } : {}),
      ...(r.reason ? { reason: r.reason } : {}),
      ...(r.failed ? { failed: true } : {}),
      stepsLastHour: stepsInLastHour(r, now),
    },
  };
}
