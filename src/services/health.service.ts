// Health and self-healing. Every device with an agent gets a phi-accrual detector over its
// heartbeat arrivals; once a second each device is classified (alive / suspect / dead, with the
// group's gossip view as a second opinion) and a dead device climbs its group's remediation
// ladder: ask the agent to reboot → power-cycle through the driver → re-image (fresh root, then
// power-cycle) → mark failed and alert. Each step is an event with its reason, waits
// `stepTimeoutSeconds` for the device to come back, and flapping protection caps the steps per
// hour. The rules live in domain/health.ts; this file carries them out.
import type { Logger } from 'pino';
import type { ViewMember } from '../agent/protocol.js';
import { DroverError } from '../domain/errors.js';
import {
  classify,
  mayStartLadder,
  parseHealthPolicy,
  pruneHour,
  stepsInLastHour,
  DEFAULT_HEALTH_POLICY,
  type Health,
  type HealthPolicy,
  type LadderStep,
  type RemediationState,
} from '../domain/health.js';
import type { Device, DeviceHealth } from '../domain/records.js';
import { PhiAccrualDetector } from '../gossip/phi.js';
import type { AgentsService } from './agents.service.js';
import type { BootService } from './boot.service.js';
import { inTransaction, type ServiceContext } from './context.js';
import type { JobsService } from './jobs.service.js';
import type { PowerService } from './power.service.js';
import type { WebhookNotifier } from './webhook.js';

export interface Detector {
  heartbeat(atMs: number): void;
  phi(atMs: number): number;
}

export interface HealthOptions {
  logger?: Logger | undefined;
  tickMs?: number;
  webhook?: WebhookNotifier | null | undefined;
  /** How long a gossip view counts as current. */
  viewTtlMs?: number;
}

interface Tracked {
  detector: Detector | null;
  health: Health;
  suspectSince: number | null;
  /** Reporter → what its latest view said about this device, and when. */
  views: Map<string, { state: ViewMember['state']; at: number }>;
  /** A dead device denied a ladder is not asked again before this time. */
  ladderCheckAfter: number;
  ladder: Promise<void> | null;
  /** Resolves the wait of a running ladder step when the device is alive again. */
  onAlive: (() => void) | null;
  /** Controller start time for devices known before it: a device that never reports again is still noticed. */
  silentSince: number | null;
}

const LADDER_ACTOR = 'health';
const LADDER_RECHECK_MS = 5000;

export class HealthService {
  private readonly tracked = new Map<string, Tracked>();
  private readonly policies = new Map<string, { policy: HealthPolicy; at: number }>();
  private timer: NodeJS.Timeout | null = null;
  private ticking = false;
  private stopped = false;
  private readonly tickMs: number;
  private readonly viewTtlMs: number;
  private ownReporter: string | null = null;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly ctx: ServiceContext,
    private readonly agents: AgentsService,
    private readonly jobs: JobsService,
    private readonly power: PowerService,
    private readonly boot: BootService,
    private readonly opts: HealthOptions = {},
  ) {
    this.tickMs = opts.tickMs ?? 1000;
    this.viewTtlMs = opts.viewTtlMs ?? 30_000;
    agents.on('hello', (deviceId, _info, bootChanged) => {
      const t = this.track(deviceId);
      t.silentSince = null;
      // The group's policy decides the detector's thresholds: load it before the first heartbeat.
      void this.ctx.store.devices
        .get(deviceId)
        .then((d) => d && this.policyOf(d))
        .then(() => {
          if (bootChanged || !t.detector) t.detector = this.newDetector(deviceId);
        })
        .catch((err) => this.opts.logger?.error({ err }, 'health policy load failed'));
    });
    agents.on('heartbeat', (deviceId, at) => {
      const t = this.track(deviceId);
      t.detector ??= this.newDetector(deviceId);
      t.detector.heartbeat(at);
      t.silentSince = null;
    });
    agents.on('view', (reporter, members) => this.onView(reporter, members));
    // A changed group policy applies at once, not when the cached copy expires.
    this.unsubscribe = ctx.bus.subscribe((m) => {
      if (m.kind === 'event' && (m.event.type === 'group.updated' || m.event.type === 'group.deleted')) void this.reloadPolicy(String(m.event.data.groupId));
    });
  }

  /** Loads what the store knows and starts the once-a-second evaluation. */
  async start(): Promise<void> {
    const now = this.ctx.clock().getTime();
    for (const h of await this.ctx.store.health.all()) {
      const t = this.track(h.deviceId);
      t.health = h.health;
      // Known before this start: without a heartbeat since, the device is judged on silence.
      if (h.health === 'alive' || h.health === 'suspect') t.silentSince = now;
      if (h.remediation.step !== undefined) {
        // A ladder cut short by a controller restart ends here; the device is judged afresh.
        await this.ctx.store.health.upsert(h.deviceId, { remediation: { ...h.remediation, step: undefined, stepName: undefined, stepStartedAt: undefined, jobId: undefined, ended: [...pruneHour(h.remediation.ended, new Date(now)), new Date(now).toISOString()] } }, new Date(now).toISOString());
      }
    }
    this.timer = setInterval(() => void this.tick(), this.tickMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe();
    if (this.timer) clearInterval(this.timer);
    for (const t of this.tracked.values()) t.onAlive?.();
    await Promise.all([...this.tracked.values()].map((t) => t.ladder?.catch(() => undefined)));
  }

  /** The detector's phi now (null without heartbeats). */
  phi(deviceId: string): number | null {
    const d = this.tracked.get(deviceId)?.detector;
    return d ? round(d.phi(this.ctx.clock().getTime())) : null;
  }

  /** Health rows with the live phi, for the API. */
  async get(deviceIds: string[]): Promise<Map<string, DeviceHealth>> {
    const rows = await this.ctx.store.health.getMany(deviceIds);
    for (const [id, h] of rows) {
      const p = this.phi(id);
      if (p !== null) h.phi = p;
    }
    return rows;
  }

  private track(deviceId: string): Tracked {
    let t = this.tracked.get(deviceId);
    if (!t) {
      t = { detector: null, health: 'unknown', suspectSince: null, views: new Map(), ladder: null, onAlive: null, silentSince: null, ladderCheckAfter: 0 };
      this.tracked.set(deviceId, t);
    }
    return t;
  }

  private newDetector(deviceId: string): Detector {
    const policy = this.cachedPolicy(deviceId);
    return new PhiAccrualDetector({
      threshold: policy.suspectPhi,
      maxSampleSize: 1000,
      minStdDeviationMs: 100,
      acceptableHeartbeatPauseMs: policy.acceptablePauseSeconds * 1000,
      firstHeartbeatEstimateMs: this.agents.heartbeatMs,
    });
  }

  private devicePolicy = new Map<string, string | null>(); // device → group id

  private cachedPolicy(deviceId: string): HealthPolicy {
    const groupId = this.devicePolicy.get(deviceId) ?? null;
    return this.policies.get(groupId ?? '')?.policy ?? DEFAULT_HEALTH_POLICY;
  }

  /** Re-reads a group's policy in place (the old one serves until the new one is read). */
  private async reloadPolicy(groupId: string): Promise<void> {
    if (!this.policies.has(groupId)) return;
    let policy = DEFAULT_HEALTH_POLICY;
    try {
      const group = await this.ctx.store.groups.get(groupId);
      if (group) policy = parseHealthPolicy(group.policy.health);
    } catch (err) {
      this.opts.logger?.error({ group: groupId, err: (err as Error).message }, 'invalid health policy; using defaults');
    }
    this.policies.set(groupId, { policy, at: this.ctx.clock().getTime() });
  }

  private async policyOf(device: Device): Promise<HealthPolicy> {
    this.devicePolicy.set(device.id, device.groupId);
    const key = device.groupId ?? '';
    const cached = this.policies.get(key);
    const now = this.ctx.clock().getTime();
    if (cached && now - cached.at < 10_000) return cached.policy;
    let policy = DEFAULT_HEALTH_POLICY;
    if (device.groupId) {
      const group = await this.ctx.store.groups.get(device.groupId);
      try {
        policy = parseHealthPolicy(group?.policy.health);
      } catch (err) {
        this.opts.logger?.error({ group: device.groupId, err: (err as Error).message }, 'invalid health policy; using defaults');
      }
    }
    this.policies.set(key, { policy, at: now });
    return policy;
  }

  private onView(reporter: string, members: ViewMember[]): void {
    const at = this.ctx.clock().getTime();
    for (const m of members) {
      if (m.node === reporter) continue;
      // Only devices we already follow: a view must not make us track arbitrary names.
      this.tracked.get(m.node)?.views.set(reporter, { state: m.state, at });
    }
  }

  /**
   * The controller's own gossip member's view (`--gossip-listen`): one more reporter, counted
   * while fresh even though it has no agent session.
   */
  ownView(reporter: string, members: ViewMember[]): void {
    this.ownReporter = reporter;
    this.onView(reporter, members);
  }

  /** The group's opinion of a device: dead (a majority of fresh reporters), alive, or none. */
  private groupSays(t: Tracked, now: number): 'dead' | 'alive' | null {
    let dead = 0;
    let alive = 0;
    for (const [reporter, v] of t.views) {
      if (now - v.at > this.viewTtlMs || (reporter !== this.ownReporter && !this.agents.isConnected(reporter))) continue;
      if (v.state === 'dead') dead++;
      else if (v.state === 'alive') alive++;
    }
    if (dead > 0 && dead >= alive) return 'dead';
    if (alive > dead) return 'alive';
    return null;
  }

  /** One evaluation round over every tracked device. */
  async tick(): Promise<void> {
    if (this.ticking || this.stopped) return;
    this.ticking = true;
    try {
      const now = this.ctx.clock().getTime();
      let n = 0;
      for (const [deviceId, t] of this.tracked) {
        try {
          await this.evaluate(deviceId, t, now);
        } catch (err) {
          this.opts.logger?.error({ err, device: deviceId }, 'health evaluation failed');
        }
        // A round over 100,000 devices must not hold the event loop (heartbeats, acks) for its whole length.
        if (++n % 500 === 0) await new Promise<void>((r) => setImmediate(r));
      }
    } finally {
      this.ticking = false;
    }
  }

  private async evaluate(deviceId: string, t: Tracked, now: number): Promise<void> {
    const policy = this.cachedPolicy(deviceId);
    const connected = this.agents.isConnected(deviceId);
    const group = this.groupSays(t, now);
    let phi = t.detector ? t.detector.phi(now) : 0;
    let hasHeartbeats = t.detector !== null;
    // Known alive before a controller restart and silent since: judged as if its last heartbeat came at the restart.
    if (!t.detector && t.silentSince !== null) {
      hasHeartbeats = true;
      const silentFor = now - t.silentSince - policy.acceptablePauseSeconds * 1000 - this.agents.heartbeatMs;
      phi = silentFor > 0 ? policy.suspectPhi + silentFor / 1000 : 0;
    }
    const gossipDead = group === 'dead' && !connected;
    let next = classify({ phi, suspectSince: t.suspectSince, now, gossipDead, policy, hasHeartbeats });
    let reason: string;
    if (next === 'dead' && group === 'alive') {
      // Silent to us but alive to its peers: a network problem between us, not a dead Pi. Power-cycling it would not help.
      next = 'suspect';
      reason = 'unreachable from the controller, alive in the gossip group';
    } else if (next === 'dead') reason = gossipDead ? 'declared dead by the gossip group' : `no heartbeat for ${Math.round(policy.deadAfterSeconds)} s past suspicion (phi ${round(phi)})`;
    else if (next === 'suspect') reason = `heartbeats late (phi ${round(phi)} ≥ ${policy.suspectPhi})`;
    else reason = 'heartbeats on time';
    if (next === 'suspect' || next === 'dead') t.suspectSince ??= now;
    else t.suspectSince = null;
    if (next !== t.health) await this.changeHealth(deviceId, t, next, reason, phi);
    if (next === 'alive' && t.onAlive) t.onAlive();
    if (next !== 'dead') t.ladderCheckAfter = 0;
    if (next === 'dead' && !t.ladder && !this.stopped && now >= t.ladderCheckAfter) {
      // A dead device that may not start a ladder (retired, remediation off, back-off, grace,
      // maintenance) is asked again a few seconds later, not re-read from the store every tick.
      t.ladderCheckAfter = now + LADDER_RECHECK_MS;
      const device = await this.ctx.store.devices.get(deviceId);
      if (!device || device.state === 'retired') return;
      const fresh = await this.policyOf(device);
      const h = await this.ctx.store.health.get(deviceId);
      const ok = mayStartLadder(h?.remediation ?? {}, fresh, new Date(now), h?.agent.bootedAt ?? null);
      if (!ok.ok) return;
      t.ladderCheckAfter = 0;
      t.ladder = this.runLadder(device, fresh, reason).finally(() => {
        t.ladder = null;
      });
    }
  }

  private async changeHealth(deviceId: string, t: Tracked, next: Health, reason: string, phi: number): Promise<void> {
    const from = t.health;
    t.health = next;
    const now = this.ctx.clock().toISOString();
    const result = await inTransaction(this.ctx, async (tx) => {
      const device = await tx.devices.get(deviceId);
      if (!device) return null;
      const health = await tx.health.upsert(deviceId, { health: next, phi: round(phi), since: now, reason }, tx.now);
      await tx.emit({ type: 'health.changed', deviceId, actor: LADDER_ACTOR, data: { from, to: next, phi: round(phi), reason } });
      // The lifecycle state follows: running ⇄ suspect; a failed device that comes back by itself is running again.
      let state = device.state;
      if ((next === 'suspect' || next === 'dead') && device.state === 'running') state = 'suspect';
      if (next === 'alive' && (device.state === 'suspect' || device.state === 'failed' || device.state === 'booting' || device.state === 'accepted')) state = 'running';
      if (state !== device.state) tx.changed(await tx.devices.update(deviceId, { state, lastSeen: now }, tx.now));
      if (next === 'alive' && health.remediation.failed) {
        return tx.health.upsert(deviceId, { remediation: { ...health.remediation, failed: false } }, tx.now);
      }
      return health;
    });
    if (result) this.ctx.bus.publish({ kind: 'health', health: { ...result, phi: round(phi) } });
    this.opts.logger?.info({ device: deviceId, from, to: next, phi: round(phi), reason }, 'health changed');
  }

  private async saveRemediation(deviceId: string, r: RemediationState): Promise<void> {
    const health = await this.ctx.store.health.upsert(deviceId, { remediation: r }, this.ctx.clock().toISOString());
    this.ctx.bus.publish({ kind: 'health', health });
  }

  private async event(device: Device, type: string, data: Record<string, unknown>, alert = true): Promise<void> {
    await inTransaction(this.ctx, (tx) => tx.emit({ type, deviceId: device.id, actor: LADDER_ACTOR, data }));
    this.opts.logger?.info({ device: device.id, type, ...data }, 'remediation');
    if (alert) this.opts.webhook?.notify({ type, deviceId: device.id, device: { id: device.id, serial: device.serial, hostname: device.hostname }, data });
  }

  /** Waits until the device is alive (true) or the time is up (false). */
  private waitAlive(deviceId: string, ms: number): Promise<boolean> {
    const t = this.track(deviceId);
    if (t.health === 'alive') return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        t.onAlive = null;
        resolve(false);
      }, ms);
      timer.unref();
      t.onAlive = () => {
        clearTimeout(timer);
        t.onAlive = null;
        resolve(!this.stopped);
      };
    });
  }

  private async runLadder(device: Device, policy: HealthPolicy, reason: string): Promise<void> {
    const started = this.ctx.clock();
    let r: RemediationState = (await this.ctx.store.health.get(device.id))?.remediation ?? {};
    r = { ...r, ladderStartedAt: started.toISOString(), reason, history: pruneHour(r.history, started), ended: pruneHour(r.ended, started) };
    await this.event(device, 'health.remediation.started', { reason, ladder: policy.ladder });
    let outcome: 'recovered' | 'failed' | 'exhausted' | 'stopped' = 'exhausted';
    for (let i = 0; i < policy.ladder.length && !this.stopped; i++) {
      let step: LadderStep = policy.ladder[i]!;
      const now = this.ctx.clock();
      if (step !== 'fail' && stepsInLastHour(r, now) >= policy.maxRemediationsPerHour) {
        await this.event(device, 'health.remediation.throttled', { step, stepsLastHour: stepsInLastHour(r, now), max: policy.maxRemediationsPerHour });
        step = 'fail';
        reason = `flapping: ${stepsInLastHour(r, now)} remediation steps in the last hour (max ${policy.maxRemediationsPerHour})`;
      }
      r = { ...r, step: i, stepName: step, stepStartedAt: now.toISOString(), history: step === 'fail' ? r.history : [...pruneHour(r.history, now), now.toISOString()] };
      await this.saveRemediation(device.id, r);
      if (step === 'fail') {
        await this.markFailed(device, reason);
        r = { ...r, failed: true };
        outcome = 'failed';
        break;
      }
      const ran = await this.runStep(device, step, reason, i);
      if (!ran) continue;
      const back = await this.waitAlive(device.id, policy.stepTimeoutSeconds * 1000);
      if (this.stopped) {
        outcome = 'stopped';
        break;
      }
      if (back) {
        const seconds = Math.round((this.ctx.clock().getTime() - started.getTime()) / 1000);
        await this.event(device, 'health.recovered', { step, after: seconds, reason });
        outcome = 'recovered';
        break;
      }
      reason = `still not alive ${policy.stepTimeoutSeconds} s after ${step}`;
    }
    if (outcome === 'exhausted') await this.event(device, 'health.remediation.exhausted', { reason, ladder: policy.ladder });
    const end = this.ctx.clock();
    await this.saveRemediation(device.id, { ...r, step: undefined, stepName: undefined, stepStartedAt: undefined, jobId: undefined, ended: [...pruneHour(r.ended, end), end.toISOString()] });
  }

  /** Carries out one step; false when it could not run here (and says why). */
  private async runStep(device: Device, step: Exclude<LadderStep, 'fail'>, reason: string, index: number): Promise<boolean> {
    const skip = async (why: string) => {
      await this.event(device, 'health.remediation.skipped', { step, index, why }, false);
      return false;
    };
    try {
      if (step === 'reboot') {
        if (!this.agents.isConnected(device.id)) return skip('no connected agent to ask');
        await this.event(device, 'health.remediation.step', { step, index, reason });
        const job = await this.jobs.create(device.id, 'reboot', {}, LADDER_ACTOR);
        await this.saveRemediation(device.id, { ...((await this.ctx.store.health.get(device.id))?.remediation ?? {}), jobId: job.id });
        return true;
      }
      if (step === 'power-cycle') {
        if (!(await this.power.configured(device))) return skip('no power driver configured');
        await this.event(device, 'health.remediation.step', { step, index, reason });
        await this.power.act(device, 'cycle', LADDER_ACTOR, reason);
        return true;
      }
      // reimage: the next boot fetches a fresh root; then the device is made to boot
      await this.event(device, 'health.remediation.step', { step, index, reason });
      await this.boot.reimage(device, LADDER_ACTOR);
      if (await this.power.configured(device)) await this.power.act(device, 'cycle', LADDER_ACTOR, 'reimage');
      else if (this.agents.isConnected(device.id)) await this.jobs.create(device.id, 'reboot', {}, LADDER_ACTOR);
      else return skip('re-image set for the next boot, but nothing can make the device boot (no power driver, no agent)');
      return true;
    } catch (err) {
      const message = err instanceof DroverError ? `${err.code}: ${err.message}` : (err as Error).message;
      await this.event(device, 'health.remediation.step-failed', { step, index, error: message.slice(0, 500) });
      return false;
    }
  }

  private async markFailed(device: Device, reason: string): Promise<void> {
    await inTransaction(this.ctx, async (tx) => {
      const current = await tx.devices.get(device.id);
      if (current && current.state !== 'retired' && current.state !== 'failed') tx.changed(await tx.devices.update(device.id, { state: 'failed' }, tx.now));
    });
    await this.event(device, 'health.failed', { reason });
  }
}

const round = (x: number) => (Number.isFinite(x) ? Math.round(x * 100) / 100 : 1e6);
