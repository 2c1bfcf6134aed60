// `drover power …` and the health/job commands under `drover node`: what an operator does to a
// sick device by hand (the remediation ladder does the same on its own).
import type { Command } from 'commander';
import type { Job } from '../../domain/records.js';
import { enc } from '../client.js';
import { ago, printFields, printJson, printTable } from '../output.js';
import { action, bad, client, globals } from '../run.js';
import { sseMessages } from './events.js';

interface PublicHealth {
  health: string;
  phi: number | null;
  since: string | null;
  reason: string | null;
  lastHeartbeat: string | null;
  agent: { connected: boolean; version: string | null; bootId: string | null; bootedAt: string | null };
  remediation: { step?: string; reason?: string; failed?: boolean; stepsLastHour: number };
}

export function registerPower(program: Command): void {
  const power = program.command('power').description('power a device on, off or cycle it through its power driver (docs/power.md)');
  for (const verb of ['on', 'off', 'cycle', 'status'] as const) {
    power
      .command(`${verb} <node>`)
      .description(verb === 'status' ? 'ask the driver whether the device has power' : `power ${verb === 'cycle' ? 'cycle' : verb} the device`)
      .option('--reason <text>', 'recorded in the event')
      .action(
        action(async (ref: string, opts: { reason?: string }, cmd: Command) => {
          const c = client(cmd);
          const r: { action: string; state: string | null; driver: string; ms: number } =
            verb === 'status'
              ? await c.request('GET', `/api/v1/devices/${enc(ref)}/power`)
              : await c.request('POST', `/api/v1/devices/${enc(ref)}/power`, { action: verb, ...(opts.reason ? { reason: opts.reason } : {}) });
          if (globals(cmd).json) return printJson(r);
          process.stdout.write(verb === 'status' ? `${ref}: ${r.state} (${r.driver})\n` : `${ref}: ${verb} done by ${r.driver} in ${r.ms} ms\n`);
        }),
      );
  }
}

/** Follows a job on the device's live stream, printing its output, until it finishes. Returns the finished job. */
async function followJob(cmd: Command, job: Job): Promise<Job> {
  const c = client(cmd);
  const res = await c.raw('GET', `/api/v1/events/stream?device=${enc(job.deviceId)}`, undefined, { accept: 'text/event-stream' });
  if (!res.body) throw bad('The controller sent no stream.');
  const done = new Set(['succeeded', 'failed', 'timeout', 'lost']);
  // the job may have finished before the stream opened
  const first: Job = await c.request('GET', `/api/v1/jobs/${enc(job.id)}`);
  if (done.has(first.state)) {
    await res.body.cancel();
    if (first.output) process.stdout.write(first.output);
    return first;
  }
  for await (const m of sseMessages(res.body)) {
    if (m.event === 'job-output') {
      const o = JSON.parse(m.data) as { jobId: string; stream: string; data: string };
      if (o.jobId === job.id) (o.stream === 'stderr' ? process.stderr : process.stdout).write(o.data);
    } else if (m.event === 'job') {
      const j = JSON.parse(m.data) as Job;
      if (j.id === job.id && done.has(j.state)) {
        await res.body.cancel().catch(() => undefined);
        return j;
      }
    }
  }
  return c.request('GET', `/api/v1/jobs/${enc(job.id)}`);
}

export function registerNodeHealth(program: Command): void {
  const node = program.commands.find((c) => c.name() === 'node');
  if (!node) throw new Error('register node before its health commands');

  node
    .command('health <node>')
    .description('health of a device: alive/suspect/dead, phi, agent, remediation')
    .action(
      action(async (ref: string, _o: unknown, cmd: Command) => {
        const h: PublicHealth = await client(cmd).request('GET', `/api/v1/devices/${enc(ref)}/health`);
        if (globals(cmd).json) return printJson(h);
        printFields([
          ['health', h.health], ['phi', h.phi], ['since', h.since ? `${h.since} (${ago(h.since)})` : null], ['reason', h.reason],
          ['last heartbeat', h.lastHeartbeat ? `${h.lastHeartbeat} (${ago(h.lastHeartbeat)})` : null],
          ['agent', h.agent.connected ? `connected, ${h.agent.version ?? '?'}` : 'not connected'], ['booted', h.agent.bootedAt],
          ['remediation', h.remediation.step ? `${h.remediation.step} (${h.remediation.reason ?? ''})` : h.remediation.failed ? 'failed: waiting for a person' : 'none running'],
          ['steps last hour', h.remediation.stepsLastHour],
        ]);
      }),
    );

  node
    .command('exec <node> <command...>')
    .description('run a command on the device through its agent, streaming its output; exits with its exit code')
    .option('--timeout <seconds>', 'kill it after this long', '60')
    .option('--shell', 'run the words as one /bin/sh -c command line')
    .action(
      action(async (ref: string, words: string[], opts: { timeout: string; shell?: boolean }, cmd: Command) => {
        const timeoutMs = Math.round(Number(opts.timeout) * 1000);
        if (!Number.isFinite(timeoutMs) || timeoutMs < 100) throw bad('--timeout takes seconds ≥ 0.1.');
        const params = opts.shell ? { sh: words.join(' '), timeoutMs } : { argv: words, timeoutMs };
        const job: Job = await client(cmd).request('POST', `/api/v1/devices/${enc(ref)}/jobs`, { kind: 'exec', params });
        if (globals(cmd).json) return printJson(await followJobQuiet(cmd, job));
        const end = await followJob(cmd, job);
        if (end.state !== 'succeeded' && end.exitCode === null) process.stderr.write(`job ${end.id} ${end.state}${end.error ? `: ${end.error}` : ''}\n`);
        process.exitCode = end.exitCode ?? 1;
      }),
    );

  for (const kind of ['reboot', 'shutdown'] as const) {
    node
      .command(`${kind} <node>`)
      .description(`ask the device's agent to ${kind}`)
      .action(
        action(async (ref: string, _o: unknown, cmd: Command) => {
          const job: Job = await client(cmd).request('POST', `/api/v1/devices/${enc(ref)}/jobs`, { kind });
          const end = await followJobQuiet(cmd, job);
          if (globals(cmd).json) return printJson(end);
          process.stdout.write(`${ref}: ${kind} ${end.state === 'succeeded' ? 'acknowledged' : `${end.state}${end.error ? `: ${end.error}` : ''}`}\n`);
          if (end.state !== 'succeeded') process.exitCode = 1;
        }),
      );
  }

  node
    .command('logs <node>')
    .description('the tail of the device\'s journal (through its agent)')
    .option('-n, --lines <n>', 'lines', '100')
    .option('-u, --unit <unit>', 'only this systemd unit')
    .action(
      action(async (ref: string, opts: { lines: string; unit?: string }, cmd: Command) => {
        const job: Job = await client(cmd).request('POST', `/api/v1/devices/${enc(ref)}/jobs`, { kind: 'logs', params: { lines: Number(opts.lines), ...(opts.unit ? { unit: opts.unit } : {}) } });
        const end = await followJobQuiet(cmd, job);
        if (globals(cmd).json) return printJson(end);
        process.stdout.write(end.output ?? '');
        if (end.state !== 'succeeded') {
          process.stderr.write(`job ${end.state}${end.error ? `: ${end.error}` : ''}\n`);
          process.exitCode = 1;
        }
      }),
    );

  node
    .command('jobs <node>')
    .description('jobs sent to the device, newest first')
    .action(
      action(async (ref: string, _o: unknown, cmd: Command) => {
        const r: { items: Job[] } = await client(cmd).request('GET', `/api/v1/devices/${enc(ref)}/jobs`);
        if (globals(cmd).json) return printJson(r);
        printTable(
          r.items.map((j) => ({ id: j.id, kind: j.kind, state: j.state, exit: j.exitCode, created: ago(j.createdAt), by: j.actor, error: j.error })),
          ['id', 'kind', 'state', 'exit', 'created', 'by', 'error'],
        );
      }),
    );
}

/** Polls until the job finishes (for output modes that print only the result). */
async function followJobQuiet(cmd: Command, job: Job): Promise<Job> {
  const c = client(cmd);
  const done = new Set(['succeeded', 'failed', 'timeout', 'lost']);
  const deadline = Date.now() + job.timeoutMs + 10_000;
  for (;;) {
    const j: Job = await c.request('GET', `/api/v1/jobs/${enc(job.id)}`);
    if (done.has(j.state) || Date.now() > deadline) return j;
    await new Promise((r) => setTimeout(r, 250));
  }
}
