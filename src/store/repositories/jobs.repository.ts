import type { Kysely, Selectable } from 'kysely';
import type { JobKind } from '../../agent/protocol.js';
import type { Job, JobState } from '../../domain/records.js';
import type { Database, JobsTable } from '../schema.js';
import { parseJson } from './util.js';

export type JobPatch = Partial<Pick<Job, 'state' | 'startedAt' | 'finishedAt' | 'exitCode' | 'output' | 'error'>>;

export class JobsRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async create(j: Job): Promise<Job> {
    await this.db
      .insertInto('jobs')
      .values({
        id: j.id,
        device_id: j.deviceId,
        kind: j.kind,
        params: JSON.stringify(j.params),
        state: j.state,
        actor: j.actor,
        timeout_ms: j.timeoutMs,
        created_at: j.createdAt,
        started_at: j.startedAt,
        finished_at: j.finishedAt,
        exit_code: j.exitCode,
        output: j.output,
        error: j.error,
      })
      .execute();
    return j;
  }

  async get(id: string): Promise<Job | undefined> {
    const r = await this.db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
    return r ? toJob(r) : undefined;
  }

  async update(id: string, p: JobPatch): Promise<Job | undefined> {
    const set: Partial<JobsTable> = {};
    if (p.state !== undefined) set.state = p.state;
    if (p.startedAt !== undefined) set.started_at = p.startedAt;
    if (p.finishedAt !== undefined) set.finished_at = p.finishedAt;
    if (p.exitCode !== undefined) set.exit_code = p.exitCode;
    if (p.output !== undefined) set.output = p.output;
    if (p.error !== undefined) set.error = p.error;
    await this.db.updateTable('jobs').set(set).where('id', '=', id).execute();
    return this.get(id);
  }

  /** Newest first. */
  async listByDevice(deviceId: string, limit: number): Promise<Job[]> {
    const rows = await this.db.selectFrom('jobs').selectAll().where('device_id', '=', deviceId).orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
    return rows.map(toJob);
  }

  async listByState(states: JobState[]): Promise<Job[]> {
    return (await this.db.selectFrom('jobs').selectAll().where('state', 'in', states).execute()).map(toJob);
  }
}

function toJob(r: Selectable<JobsTable>): Job {
  return {
    id: r.id,
    deviceId: r.device_id,
    kind: r.kind as JobKind,
    params: parseJson<Record<string, unknown>>(r.params, {}),
    state: r.state as JobState,
    actor: r.actor,
    timeoutMs: Number(r.timeout_ms),
    createdAt: r.created_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    exitCode: r.exit_code === null ? null : Number(r.exit_code),
    output: r.output,
    error: r.error,
  };
}
