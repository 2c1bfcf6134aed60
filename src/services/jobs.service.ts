// Jobs: work the controller asks a device's agent to do (reboot, exec, write a file, …). A job
// is stored, every step of it is an event (job.queued, job.started, job.finished), output
// streams to live clients as it arrives, and the controller — not the agent — decides when a
// job has timed out, so a hung or vanished agent cannot leave a job running forever.
import { isAbsolute } from 'node:path';
import type { Logger } from 'pino';
import type { AgentMessage, JobKind } from '../agent/protocol.js';
import { DroverError } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import type { Job, JobState } from '../domain/records.js';
import type { AgentsService } from './agents.service.js';
import { inTransaction, type ServiceContext } from './context.js';
import { resolveDevice } from './devices.service.js';

export const JOB_KINDS: readonly JobKind[] = ['reboot', 'shutdown', 'exec', 'write-file', 'restart-unit', 'logs', 'next-boot-image'];
const OUTPUT_TAIL = 64 * 1024;
/** Time the agent gets on top of the job's own timeout to report back. */
const RESULT_GRACE_MS = 5000;
const DEFAULT_TIMEOUT_MS: Record<JobKind, number> = {
  reboot: 30_000, shutdown: 30_000, exec: 60_000, 'write-file': 30_000, 'restart-unit': 60_000, logs: 30_000, 'next-boot-image': 30_000,
};

export class JobsService {
  private readonly running = new Map<string, { job: Job; output: string; timer: NodeJS.Timeout; waiters: ((j: Job) => void)[] }>();

  constructor(
    private readonly ctx: ServiceContext,
    private readonly agents: AgentsService,
    private readonly logger?: Logger,
  ) {
    agents.on('job-message', (deviceId, msg) => void this.onMessage(deviceId, msg).catch((err) => this.logger?.error({ err }, 'job message failed')));
    agents.on('gone', (deviceId) => void this.agentGone(deviceId).catch((err) => this.logger?.error({ err }, 'job cleanup failed')));
  }

  /** Queues a job and sends it to the device's agent (which must be connected). */
  async create(deviceRef: string, kind: JobKind, params: Record<string, unknown>, actor: string, timeoutMs?: number): Promise<Job> {
    validateParams(kind, params);
    const device = await resolveDevice(this.ctx.store, deviceRef);
    if (!this.agents.isConnected(device.id)) {
      throw new DroverError('DROVER_AGENT_OFFLINE', `${device.hostname ?? device.serial} has no connected agent.`);
    }
    const timeout = timeoutMs ?? (typeof params.timeoutMs === 'number' ? params.timeoutMs + 2000 : DEFAULT_TIMEOUT_MS[kind]);
    const job = await inTransaction(this.ctx, async (tx) => {
      const j: Job = {
        id: newId('job'), deviceId: device.id, kind, params, state: 'queued', actor, timeoutMs: timeout, createdAt: tx.now,
        startedAt: null, finishedAt: null, exitCode: null, output: null, error: null,
      };
      await tx.jobs.create(j);
      await tx.emit({ type: 'job.queued', deviceId: device.id, actor, data: { job: j.id, kind, ...(kind === 'exec' ? { command: params.argv ?? params.sh } : {}) } });
      return j;
    });
    const timer = setTimeout(() => void this.finish(job.id, { state: 'timeout', error: `no result within ${timeout} ms` }), timeout + RESULT_GRACE_MS);
    timer.unref();
    this.running.set(job.id, { job, output: '', timer, waiters: [] });
    this.ctx.bus.publish({ kind: 'job', job });
    const sent = this.agents.send(device.id, { t: 'job', job: job.id, kind, params: params as never, timeoutMs: timeout });
    if (!sent) await this.finish(job.id, { state: 'lost', error: 'the agent went away before the job was sent' });
    return job;
  }

  async get(id: string): Promise<Job> {
    const job = await this.ctx.store.jobs.get(id);
    if (!job) throw new DroverError('DROVER_JOB_NOT_FOUND', `No job ${id}.`);
    const live = this.running.get(id);
    return live ? { ...job, output: live.output.slice(-OUTPUT_TAIL) || null } : job;
  }

  async list(deviceRef: string, limit = 50): Promise<Job[]> {
    const device = await resolveDevice(this.ctx.store, deviceRef);
    return this.ctx.store.jobs.listByDevice(device.id, limit);
  }

  /** Resolves when the job has finished (in any state). */
  async wait(id: string): Promise<Job> {
    const live = this.running.get(id);
    if (!live) return this.get(id);
    return new Promise((resolve) => live.waiters.push(resolve));
  }

  private async onMessage(deviceId: string, msg: Extract<AgentMessage, { t: 'job-started' | 'job-output' | 'job-result' }>): Promise<void> {
    const live = this.running.get(msg.job);
    if (!live || live.job.deviceId !== deviceId) return; // another device's job id, or finished already
    if (msg.t === 'job-started') {
      const job = await inTransaction(this.ctx, async (tx) => {
        const j = await tx.jobs.update(msg.job, { state: 'running', startedAt: tx.now });
        await tx.emit({ type: 'job.started', deviceId, actor: 'agent', data: { job: msg.job, kind: live.job.kind } });
        return j!;
      });
      live.job = job;
      this.ctx.bus.publish({ kind: 'job', job });
    } else if (msg.t === 'job-output') {
      live.output = (live.output + msg.data).slice(-OUTPUT_TAIL);
      this.ctx.bus.publish({ kind: 'job-output', jobId: msg.job, deviceId, stream: msg.stream, data: msg.data });
    } else {
      await this.finish(msg.job, {
        state: msg.ok ? 'succeeded' : 'failed',
        exitCode: msg.exitCode ?? null,
        error: msg.error ?? null,
        output: msg.output !== undefined ? msg.output.slice(-OUTPUT_TAIL) : undefined,
        durationMs: msg.durationMs,
      });
    }
  }

  private async finish(id: string, r: { state: JobState; exitCode?: number | null; error?: string | null; output?: string | undefined; durationMs?: number }): Promise<void> {
    const live = this.running.get(id);
    if (!live) return;
    this.running.delete(id);
    clearTimeout(live.timer);
    const output = r.output ?? (live.output || null);
    const job = await inTransaction(this.ctx, async (tx) => {
      const j = await tx.jobs.update(id, { state: r.state, finishedAt: tx.now, exitCode: r.exitCode ?? null, error: r.error ?? null, output });
      await tx.emit({
        type: 'job.finished',
        deviceId: live.job.deviceId,
        actor: 'agent',
        data: { job: id, kind: live.job.kind, state: r.state, exitCode: r.exitCode ?? null, ...(r.error ? { error: r.error.slice(0, 500) } : {}), ...(r.durationMs !== undefined ? { durationMs: Math.round(r.durationMs) } : {}) },
      });
      return j!;
    });
    this.ctx.bus.publish({ kind: 'job', job });
    for (const w of live.waiters) w(job);
  }

  /** A reboot's connection drop is expected; any other job that was running is lost with its agent. */
  private async agentGone(deviceId: string): Promise<void> {
    for (const [id, live] of [...this.running]) {
      if (live.job.deviceId !== deviceId) continue;
      await this.finish(id, { state: 'lost', error: 'the agent disconnected before it reported a result' });
    }
  }

  async close(): Promise<void> {
    for (const live of this.running.values()) clearTimeout(live.timer);
  }
}

const UNIT = /^[A-Za-z0-9:_.@\\-]+$/;

function validateParams(kind: JobKind, p: Record<string, unknown>): void {
  const bad = (message: string) => new DroverError('DROVER_JOB_INVALID', message);
  const allowed: Record<JobKind, string[]> = {
    reboot: [], shutdown: [], exec: ['argv', 'sh', 'timeoutMs', 'env'], 'write-file': ['path', 'contentB64', 'mode'],
    'restart-unit': ['unit'], logs: ['lines', 'unit'], 'next-boot-image': ['imageId', 'reboot'],
  };
  if (!JOB_KINDS.includes(kind)) throw bad(`Unknown job kind "${kind}"; one of ${JOB_KINDS.join(', ')}.`);
  for (const k of Object.keys(p)) if (!allowed[kind].includes(k)) throw bad(`A ${kind} job has no parameter "${k}".`);
  switch (kind) {
    case 'exec': {
      const argv = p.argv;
      if ((argv === undefined) === (p.sh === undefined)) throw bad('An exec job needs exactly one of "argv" (a list) or "sh" (a shell command).');
      if (argv !== undefined && (!Array.isArray(argv) || argv.length === 0 || !argv.every((a) => typeof a === 'string'))) throw bad('"argv" must be a non-empty list of strings.');
      if (p.sh !== undefined && (typeof p.sh !== 'string' || p.sh.length === 0)) throw bad('"sh" must be a non-empty string.');
      if (p.timeoutMs !== undefined && (typeof p.timeoutMs !== 'number' || p.timeoutMs < 100 || p.timeoutMs > 3_600_000)) throw bad('"timeoutMs" must be between 100 and 3600000.');
      if (p.env !== undefined && (typeof p.env !== 'object' || p.env === null || !Object.values(p.env).every((v) => typeof v === 'string'))) throw bad('"env" must map names to strings.');
      return;
    }
    case 'write-file':
      if (typeof p.path !== 'string' || !isAbsolute(p.path) || p.path.split('/').includes('..')) throw bad('"path" must be an absolute path without "..".');
      if (typeof p.contentB64 !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(p.contentB64)) throw bad('"contentB64" must be base64.');
      if (p.mode !== undefined && (typeof p.mode !== 'number' || p.mode < 0 || p.mode > 0o7777)) throw bad('"mode" must be a file mode such as 420 (0644).');
      return;
    case 'restart-unit':
      if (typeof p.unit !== 'string' || !UNIT.test(p.unit)) throw bad('"unit" must be a systemd unit name.');
      return;
    case 'logs':
      if (p.lines !== undefined && (typeof p.lines !== 'number' || p.lines < 1 || p.lines > 10_000)) throw bad('"lines" must be between 1 and 10000.');
      if (p.unit !== undefined && (typeof p.unit !== 'string' || !UNIT.test(p.unit))) throw bad('"unit" must be a systemd unit name.');
      return;
    case 'next-boot-image':
      if (typeof p.imageId !== 'string') throw bad('"imageId" must name an image.');
      if (p.reboot !== undefined && typeof p.reboot !== 'boolean') throw bad('"reboot" must be true or false.');
      return;
    default:
      return;
  }
}
