// The "Actions" card on the device page (operators and admins only): reboot through the agent,
// power-cycle through the power driver, re-image, and run a command whose output streams in
// live (`job-output` messages) until the `job` message says it finished, with its exit code.
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { api, asApiError, type ApiError } from '../api';
import { JOB_DONE } from '../health';
import { useLive, useStream } from '../live';
import type { Device, Job } from '../types';
import { ConfirmButton } from './ConfirmButton';
import { ErrorBanner } from './ErrorBanner';

const TIMEOUTS = [10, 30, 60, 300, 900] as const;
/** Output kept on screen (the controller keeps a 64 KiB tail as well). */
const OUTPUT_CAP = 256 * 1024;

interface Run {
  job: Job;
  output: string;
}

type Busy = 'reboot' | 'power' | 'reimage' | 'run' | 'kill' | null;

/** Whether `drover demo` runs this controller; asked once per page load. */
let demoAsked: Promise<boolean> | null = null;
function isDemo(): Promise<boolean> {
  demoAsked ??= api.get<{ demo: boolean }>('/demo').then((r) => r.demo === true, () => false);
  return demoAsked;
}

export function DeviceActions({ device, agentConnected }: { device: Device; agentConnected: boolean }) {
  const base = `/devices/${encodeURIComponent(device.id)}`;
  const { epoch } = useLive();
  const [error, setError] = useState<ApiError | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [busy, setBusy] = useState<Busy>(null);
  const [command, setCommand] = useState('');
  const [timeoutS, setTimeoutS] = useState<number>(60);
  const [run, setRun] = useState<Run | null>(null);
  const [demo, setDemo] = useState(false);
  useEffect(() => {
    void isDemo().then(setDemo);
  }, []);

  // Stream messages of jobs this card has not heard back about yet: the agent may answer before
  // the POST does. Kept only while a run is being started.
  const pending = useRef<Map<string, { output: string; job?: Job }> | null>(null);
  /** The job shown, set with the state but at once (stream messages may come before the render). */
  const shownJob = useRef<string | null>(null);

  useStream((m) => {
    if (m.kind === 'job-output') {
      const o = m.output;
      if (o.deviceId !== device.id) return;
      if (o.jobId === shownJob.current) {
        setRun((cur) => (cur && cur.job.id === o.jobId ? { ...cur, output: (cur.output + o.data).slice(-OUTPUT_CAP) } : cur));
      } else if (pending.current) {
        const p = pending.current.get(o.jobId) ?? { output: '' };
        p.output += o.data;
        pending.current.set(o.jobId, p);
      }
    } else if (m.kind === 'job') {
      const j = m.job;
      if (j.deviceId !== device.id) return;
      if (j.id === shownJob.current) setRun((cur) => (cur && cur.job.id === j.id ? finishRun(cur, j) : cur));
      else if (pending.current) {
        const p = pending.current.get(j.id) ?? { output: '' };
        p.job = j;
        pending.current.set(j.id, p);
      }
    }
  });

  // After a gap in the stream, the job's messages may be lost: ask for it.
  const runId = run && !JOB_DONE.has(run.job.state) ? run.job.id : null;
  useEffect(() => {
    if (!runId || epoch === 0) return;
    api
      .get<Job>(`/jobs/${encodeURIComponent(runId)}`)
      .then((j) => setRun((cur) => (cur && cur.job.id === j.id ? finishRun({ ...cur, output: j.output && j.output.length > cur.output.length ? j.output : cur.output }, j) : cur)))
      .catch(() => {});
  }, [epoch, runId]);

  async function act(kind: Exclude<Busy, null>, fn: () => Promise<string>) {
    setBusy(kind);
    setError(null);
    setNotice(null);
    try {
      setNotice(await fn());
    } catch (err) {
      setError(asApiError(err));
    } finally {
      setBusy(null);
    }
  }

  const reboot = () =>
    act('reboot', async () => {
      const job = await api.post<Job>(`${base}/jobs`, { kind: 'reboot' });
      return `Reboot sent to the agent (${job.id}).`;
    });
  const powerCycle = () =>
    act('power', async () => {
      const r = await api.post<{ action: string; state: string | null; driver: string; ms: number }>(`${base}/power`, { action: 'cycle', reason: 'from the dashboard' });
      return `Power cycled through the ${r.driver} driver in ${r.ms} ms.`;
    });
  const reimage = () =>
    act('reimage', async () => {
      const r = await api.post<{ generation: number }>(`${base}/reimage`, {});
      if (!agentConnected) return `Re-image set (generation ${r.generation}): the device fetches a fresh root filesystem at its next boot.`;
      const job = await api.post<Job>(`${base}/jobs`, { kind: 'reboot' });
      return `Re-image set (generation ${r.generation}); rebooting now to fetch a fresh root filesystem (${job.id}).`;
    });

  const kill = () =>
    act('kill', async () => {
      await api.post(`/demo/devices/${encodeURIComponent(device.id)}/kill`, {});
      return 'Killed: the virtual Pi hangs like a crashed one. Watch its health and the history below as the ladder heals it.';
    });

  async function runCommand(e: FormEvent) {
    e.preventDefault();
    const sh = command.trim();
    if (!sh || busy) return;
    setBusy('run');
    setError(null);
    setNotice(null);
    pending.current = new Map();
    try {
      const job = await api.post<Job>(`${base}/jobs`, { kind: 'exec', params: { sh, timeoutMs: timeoutS * 1000 } });
      const early = pending.current.get(job.id);
      shownJob.current = job.id;
      setRun(finishRun({ job, output: early?.output ?? '' }, early?.job ?? job));
    } catch (err) {
      setError(asApiError(err));
    } finally {
      pending.current = null;
      setBusy(null);
    }
  }

  const running = run !== null && !JOB_DONE.has(run.job.state);
  return (
    <section className="card actions-card" aria-labelledby="actions-h" data-testid="device-actions">
      <div className="actions-head">
        <h2 id="actions-h">Actions</h2>
        {!agentConnected ? <span className="muted small">agent not connected: reboot and commands need it</span> : null}
      </div>
      <div className="action-buttons">
        <ConfirmButton className="btn btn-secondary" confirmLabel="Confirm reboot" disabled={busy !== null} onConfirm={() => void reboot()}>
          Reboot
        </ConfirmButton>
        <ConfirmButton className="btn btn-secondary" confirmLabel="Confirm power cycle" disabled={busy !== null} onConfirm={() => void powerCycle()}>
          Power cycle
        </ConfirmButton>
        <ConfirmButton className="btn btn-danger-ghost" confirmLabel="Confirm re-image" disabled={busy !== null} onConfirm={() => void reimage()}>
          Re-image
        </ConfirmButton>
        {demo ? (
          <ConfirmButton className="btn btn-danger-ghost" confirmLabel="Confirm kill" disabled={busy !== null} onConfirm={() => void kill()}>
            Kill (demo)
          </ConfirmButton>
        ) : null}
      </div>
      <ErrorBanner error={error} onClose={() => setError(null)} />
      {notice ? (
        <div className="alert alert-info" role="status">
          <div className="alert-body">{notice}</div>
          <button type="button" className="alert-close" aria-label="Dismiss" onClick={() => setNotice(null)}>
            ×
          </button>
        </div>
      ) : null}

      <form className="run-form" aria-label="Run a command" onSubmit={runCommand}>
        <label className="form-label" htmlFor="run-command">
          Run command
        </label>
        <div className="run-controls">
          <input
            id="run-command"
            className="input mono"
            value={command}
            placeholder="uname -a"
            spellCheck={false}
            autoComplete="off"
            maxLength={4000}
            onChange={(e) => setCommand(e.target.value)}
          />
          <select className="input" aria-label="Timeout" value={timeoutS} onChange={(e) => setTimeoutS(Number(e.target.value))}>
            {TIMEOUTS.map((t) => (
              <option key={t} value={t}>
                {t < 60 ? `${t} s` : `${t / 60} min`} timeout
              </option>
            ))}
          </select>
          <button type="submit" className="btn btn-primary" disabled={busy !== null || !command.trim()}>
            {busy === 'run' ? 'Starting…' : 'Run'}
          </button>
        </div>
      </form>
      {run ? <RunOutput run={run} running={running} /> : null}
    </section>
  );
}

/** Applies a job's newer state; the final message carries the output's tail, used when nothing streamed. */
function finishRun(cur: Run, j: Job): Run {
  const rank = (s: Job['state']) => (s === 'queued' ? 0 : s === 'running' ? 1 : 2);
  if (rank(j.state) < rank(cur.job.state)) return cur; // an older message arriving late
  const output = JOB_DONE.has(j.state) && j.output && j.output.length > cur.output.length ? j.output : cur.output;
  return { job: j, output };
}

function RunOutput({ run, running }: { run: Run; running: boolean }) {
  const { job, output } = run;
  const command = typeof job.params.sh === 'string' ? job.params.sh : Array.isArray(job.params.argv) ? job.params.argv.join(' ') : '';
  const pre = useRef<HTMLPreElement>(null);
  useEffect(() => {
    const el = pre.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [output]);
  const ok = job.state === 'succeeded';
  return (
    <div className="run-result" data-job-id={job.id} data-job-state={job.state}>
      <div className="run-meta small">
        <span className="mono">$ {command}</span>
        <span className={`badge job-${job.state}`}>{job.state}</span>
        {!running ? (
          <span className={ok ? 'run-exit' : 'run-exit run-exit-bad'} data-exit-code={job.exitCode ?? ''}>
            {job.exitCode !== null ? `exit code ${job.exitCode}` : 'no exit code'}
          </span>
        ) : null}
      </div>
      <pre ref={pre} className="job-output" aria-label="Command output" aria-live="polite" aria-busy={running} tabIndex={0}>
        {output || (running ? '' : '(no output)')}
      </pre>
      {job.error ? <p className="run-error small">{job.error}</p> : null}
    </div>
  );
}
