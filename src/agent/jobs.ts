// Running the jobs the controller sends. Each job ends in exactly one result; processes run
// without a shell unless the job asks for one (`sh`), in their own process group so a timeout
// kills the whole tree, and their output streams back in coalesced chunks while the last 64 KiB
// go with the result. The controller has validated the parameters already; they are checked
// again here because a type on the wire is only a promise.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type { AgentLogger } from './log.js';
import type { AgentMessage, JobKind, JobParams } from './protocol.js';
import { findOnPath } from './which.js';

export type JobResult = Omit<Extract<AgentMessage, { t: 'job-result' }>, 't' | 'job'>;
export type OutputStream = 'stdout' | 'stderr';
export type OutputFn = (stream: OutputStream, data: string) => void;

/** A job as it arrives: `kind` and `params` are not trusted to match the protocol's types. */
export interface JobRequest {
  job: string;
  kind: string;
  params: unknown;
  timeoutMs: number;
}

export interface JobOutcome {
  result: JobResult;
  /**
   * Work that must wait until the result is on its way (reboot, shutdown): the caller runs it
   * once the result is written to the socket, or right away when it cannot be sent.
   */
  afterReport?: () => void;
}

/** A command line, or (the virtual fleet) a function that does it in-process. */
export type PowerCommand = string[] | (() => void);

export interface PowerCommands {
  reboot: PowerCommand;
  shutdown: PowerCommand;
}

export const DEFAULT_POWER_COMMANDS: PowerCommands = { reboot: ['systemctl', 'reboot'], shutdown: ['systemctl', 'poweroff'] };

export interface JobRunnerOptions {
  /** What reboot and shutdown run; tests and the virtual fleet pass harmless commands. */
  commands?: Partial<PowerCommands>;
  /** Pause between reporting a power job and running it, so the result reaches the controller. */
  powerDelayMs?: number;
  /** SIGTERM first, SIGKILL this much later. */
  killGraceMs?: number;
  /** How much output the result carries (the tail). */
  outputTailChars?: number;
  /** Output is coalesced for this long before it is streamed. */
  outputFlushMs?: number;
  /** PATH used to find systemctl and journalctl (default: the agent's PATH). */
  path?: string;
  log?: AgentLogger;
}

/** systemd unit names, as the controller validates them; a leading '-' would read as an option. */
const UNIT = /^[A-Za-z0-9:_.@\\][A-Za-z0-9:_.@\\-]*$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const FLUSH_BYTES = 32 * 1024;
const DEFAULT_TIMEOUT_MS = 60_000;

interface ProcessResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  output: string;
  error?: string;
}

class JobError extends Error {}

export class JobRunner {
  private readonly commands: PowerCommands;
  private readonly children = new Set<number>();
  private readonly tools = new Map<string, Promise<string | null>>();

  constructor(private readonly opts: JobRunnerOptions = {}) {
    this.commands = { ...DEFAULT_POWER_COMMANDS, ...opts.commands };
  }

  /** Jobs with a process still running. */
  get running(): number {
    return this.children.size;
  }

  /** Runs one job to its result; never throws. */
  async run(req: JobRequest, onOutput: OutputFn): Promise<JobOutcome> {
    const started = performance.now();
    const done = (r: Omit<JobResult, 'durationMs'>, afterReport?: () => void): JobOutcome => ({
      result: { ...r, durationMs: Math.round(performance.now() - started) },
      ...(afterReport ? { afterReport } : {}),
    });
    const timeoutMs = Number.isFinite(req.timeoutMs) && req.timeoutMs > 0 ? req.timeoutMs : DEFAULT_TIMEOUT_MS;
    try {
      const p = isRecord(req.params) ? req.params : {};
      switch (req.kind as JobKind) {
        case 'exec':
          return done(processResult(await this.exec(p, timeoutMs, onOutput)));
        case 'write-file':
          return done({ ok: true, output: await this.writeFile(p) });
        case 'restart-unit': {
          const unit = checkUnit(p.unit);
          const systemctl = await this.tool('systemctl');
          return done(processResult(await this.spawnJob([systemctl, 'restart', '--', unit], { timeoutMs, onOutput })));
        }
        case 'logs':
          return done(processResult(await this.logs(p, timeoutMs, onOutput)));
        case 'reboot':
        case 'shutdown': {
          const kind = req.kind as 'reboot' | 'shutdown';
          return done({ ok: true, output: `${kind === 'reboot' ? 'rebooting' : 'shutting down'}: ${describe(this.commands[kind])}\n` }, () => this.power(kind));
        }
        case 'next-boot-image': {
          const params = p as Partial<JobParams['next-boot-image']>;
          if (typeof params.imageId !== 'string' || params.imageId === '') throw new JobError('"imageId" must name an image.');
          if (params.reboot === true) return done({ ok: true, output: `next boot: ${params.imageId}; rebooting\n` }, () => this.power('reboot'));
          return done({ ok: true, output: `next boot: ${params.imageId}; takes effect at the next reboot\n` });
        }
        default:
          return done({ ok: false, error: `Unknown job kind "${String(req.kind).slice(0, 100)}"; this agent runs ${JOB_KINDS_TEXT}.` });
      }
    } catch (err) {
      return done({ ok: false, error: (err instanceof JobError ? err.message : `${(err as Error).message ?? String(err)}`).slice(0, 4000) });
    }
  }

  /** Stops every running job's process group (the agent is stopping). */
  cancelAll(): void {
    for (const pid of this.children) killGroup(pid, 'SIGTERM');
  }

  private async exec(p: Record<string, unknown>, jobTimeoutMs: number, onOutput: OutputFn): Promise<ProcessResult> {
    const params = p as Partial<JobParams['exec']>;
    const hasArgv = params.argv !== undefined;
    if (hasArgv === (params.sh !== undefined)) throw new JobError('An exec job needs exactly one of "argv" (a list) or "sh" (a shell command).');
    let argv: string[];
    if (hasArgv) {
      if (!Array.isArray(params.argv) || params.argv.length === 0 || !params.argv.every((a) => typeof a === 'string')) throw new JobError('"argv" must be a non-empty list of strings.');
      argv = params.argv;
    } else {
      if (typeof params.sh !== 'string' || params.sh === '') throw new JobError('"sh" must be a non-empty string.');
      argv = ['/bin/sh', '-c', params.sh];
    }
    let env: Record<string, string> | undefined;
    if (params.env !== undefined) {
      if (!isRecord(params.env) || !Object.values(params.env).every((v) => typeof v === 'string')) throw new JobError('"env" must map names to strings.');
      env = params.env as Record<string, string>;
    }
    // The job's own timeout wins; the controller's (a little longer) is the fallback.
    const timeoutMs = typeof params.timeoutMs === 'number' && params.timeoutMs > 0 ? params.timeoutMs : jobTimeoutMs;
    return this.spawnJob(argv, { timeoutMs, onOutput, env });
  }

  private async logs(p: Record<string, unknown>, timeoutMs: number, onOutput: OutputFn): Promise<ProcessResult> {
    const params = p as Partial<JobParams['logs']>;
    const lines = params.lines ?? 200;
    if (typeof lines !== 'number' || !Number.isInteger(lines) || lines < 1 || lines > 10_000) throw new JobError('"lines" must be a whole number between 1 and 10000.');
    const journalctl = await this.tool('journalctl');
    const argv = [journalctl, '-n', String(lines), '--no-pager', '-o', 'short-iso'];
    if (params.unit !== undefined) argv.push('-u', checkUnit(params.unit));
    return this.spawnJob(argv, { timeoutMs, onOutput });
  }

  /**
   * Writes atomically: a temp file in the same directory, fsync, then rename over the target, so
   * readers see the old or the new content and never half of it.
   */
  private async writeFile(p: Record<string, unknown>): Promise<string> {
    const params = p as Partial<JobParams['write-file']>;
    const path = params.path;
    if (typeof path !== 'string' || !isAbsolute(path) || path.split('/').includes('..') || path.includes('\0') || path.endsWith('/')) {
      throw new JobError('"path" must be an absolute file path without "..".');
    }
    if (typeof params.contentB64 !== 'string' || !BASE64.test(params.contentB64)) throw new JobError('"contentB64" must be base64.');
    if (params.mode !== undefined && (typeof params.mode !== 'number' || !Number.isInteger(params.mode) || params.mode < 0 || params.mode > 0o7777)) {
      throw new JobError('"mode" must be a file mode such as 420 (0644).');
    }
    const data = Buffer.from(params.contentB64, 'base64');
    let mode = params.mode;
    if (mode === undefined) {
      // Replacing a file keeps its permissions unless the job says otherwise.
      mode = await stat(path).then((s) => s.mode & 0o7777, () => 0o644);
    }
    const dir = dirname(path);
    await mkdir(dir, { recursive: true, mode: 0o755 });
    const tmp = join(dir, `.${basename(path)}.drover-${randomBytes(4).toString('hex')}`);
    try {
      const fh = await open(tmp, 'wx', 0o600);
      try {
        await fh.writeFile(data);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await chmod(tmp, mode); // explicit, so the umask does not narrow it
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw new JobError(`Cannot write ${path}: ${(err as Error).message}`);
    }
    return `wrote ${data.length} bytes to ${path} (mode ${mode.toString(8).padStart(4, '0')})\n`;
  }

  private power(kind: 'reboot' | 'shutdown'): void {
    const argv = this.commands[kind];
    setTimeout(() => {
      this.opts.log?.info({ command: describe(argv) }, `${kind} requested by the controller`);
      if (typeof argv === 'function') {
        try {
          argv();
        } catch (err) {
          this.opts.log?.error({ err: (err as Error).message }, `${kind} failed`);
        }
        return;
      }
      void this.spawnJob(argv, { timeoutMs: 60_000, onOutput: () => {} }).then((r) => {
        if (r.error || r.exitCode !== 0) this.opts.log?.error({ command: argv.join(' '), exitCode: r.exitCode, err: r.error, output: r.output.slice(-500) }, `${kind} command failed`);
      });
    }, this.opts.powerDelayMs ?? 500);
  }

  /** A system tool's path, looked up once; a clear error when the device lacks it. */
  private async tool(name: string): Promise<string> {
    let p = this.tools.get(name);
    if (!p) {
      p = findOnPath(name, this.opts.path);
      this.tools.set(name, p);
    }
    const found = await p;
    if (!found) throw new JobError(`${name} is not installed on this device (not on PATH), so this job cannot run here.`);
    return found;
  }

  private spawnJob(argv: string[], o: { timeoutMs: number; onOutput: OutputFn; env?: Record<string, string> | undefined }): Promise<ProcessResult> {
    const tailCap = this.opts.outputTailChars ?? 64 * 1024;
    const flushMs = this.opts.outputFlushMs ?? 100;
    const grace = this.opts.killGraceMs ?? 2000;
    return new Promise((resolve) => {
      let tail = '';
      let settled = false;
      let timedOut = false;
      const pending: Record<OutputStream, string> = { stdout: '', stderr: '' };
      const decoders: Record<OutputStream, StringDecoder> = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
      let flushTimer: NodeJS.Timeout | null = null;
      let killTimer: NodeJS.Timeout | null = null;
      let drainTimer: NodeJS.Timeout | null = null;

      const flush = () => {
        if (flushTimer) clearTimeout(flushTimer);
        flushTimer = null;
        for (const s of ['stdout', 'stderr'] as const) {
          if (!pending[s]) continue;
          const data = pending[s];
          pending[s] = '';
          try {
            o.onOutput(s, data);
          } catch {
            /* the sink's problem; the output is in the tail anyway */
          }
        }
      };
      const add = (s: OutputStream, text: string) => {
        if (!text) return;
        tail += text;
        if (tail.length > 2 * tailCap) tail = tail.slice(-tailCap);
        pending[s] += text;
        // Coalescing keeps a chatty process from becoming one message per write().
        if (pending[s].length >= FLUSH_BYTES) flush();
        else flushTimer ??= setTimeout(flush, flushMs);
      };

      const child = spawn(argv[0]!, argv.slice(1), {
        cwd: '/',
        env: o.env ? { ...process.env, ...o.env } : process.env,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true, // its own process group, so a timeout kills the whole tree
      });
      const pid = child.pid;
      if (pid !== undefined) this.children.add(pid);

      const finish = (r: Omit<ProcessResult, 'output' | 'timedOut'>) => {
        if (settled) return;
        settled = true;
        if (pid !== undefined) this.children.delete(pid);
        clearTimeout(timeout);
        if (killTimer) clearTimeout(killTimer);
        if (drainTimer) clearTimeout(drainTimer);
        for (const s of ['stdout', 'stderr'] as const) add(s, decoders[s].end());
        flush();
        resolve({ ...r, timedOut, output: tail.slice(-tailCap) });
      };

      child.stdout.on('data', (b: Buffer) => add('stdout', decoders.stdout.write(b)));
      child.stderr.on('data', (b: Buffer) => add('stderr', decoders.stderr.write(b)));
      child.on('error', (err) => finish({ exitCode: null, signal: null, error: `Cannot run ${argv[0]}: ${err.message}` }));
      child.on('close', (code, signal) => finish({ exitCode: code, signal }));
      // A background grandchild can hold the pipes open long after the job's process exits;
      // the job is over when its process is, so the pipes are cut a moment later.
      child.on('exit', () => {
        drainTimer = setTimeout(() => {
          child.stdout.destroy();
          child.stderr.destroy();
        }, 1000);
      });

      const timeout = setTimeout(() => {
        if (pid === undefined) return;
        timedOut = true;
        killGroup(pid, 'SIGTERM');
        killTimer = setTimeout(() => killGroup(pid, 'SIGKILL'), grace);
      }, o.timeoutMs);
    });
  }
}

function describe(c: PowerCommand): string {
  return typeof c === 'function' ? '(in-process)' : c.join(' ');
}

const JOB_KINDS_TEXT = 'reboot, shutdown, exec, write-file, restart-unit, logs, next-boot-image';

function processResult(r: ProcessResult): Omit<JobResult, 'durationMs'> {
  const out: Omit<JobResult, 'durationMs'> = { ok: !r.error && !r.timedOut && r.exitCode === 0, exitCode: r.exitCode, output: r.output };
  if (r.error) out.error = r.error;
  else if (r.timedOut) out.error = 'Timed out; the process group was killed.';
  else if (r.signal) out.error = `Killed by ${r.signal}.`;
  else if (r.exitCode !== 0) out.error = `Exited with code ${r.exitCode}.`;
  return out;
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    /* already gone */
  }
}

function checkUnit(unit: unknown): string {
  if (typeof unit !== 'string' || unit.length > 256 || !UNIT.test(unit)) throw new JobError('"unit" must be a systemd unit name such as nginx.service.');
  return unit;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
