// Runs the tools power drivers drive (a PPI script, uhubctl, snmpset, tpi, clusterctrl): argv
// only, never a shell, with a hard time limit. The child gets its own process group so a timeout
// kills a script's children too (a `sleep` left behind would hold the pipes open and the caller
// would wait forever). A missing or non-executable program and a timeout are DROVER_POWER_FAILED.
import { spawn } from 'node:child_process';
import { powerFailed } from './failures.js';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Driver name for error messages. */
  driver: string;
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
  /** Written to stdin, which is then closed (the tools read to EOF). */
  input?: string;
  cwd?: string;
}

/** Output kept per stream; tools that print more are cut (the head is what status parsers read). */
const MAX_OUTPUT = 256 * 1024;

export function runCommand(argv: readonly string[], opts: RunOptions): Promise<RunResult> {
  const [file, ...args] = argv;
  if (file === undefined) return Promise.reject(powerFailed(opts.driver, 'empty command'));
  return new Promise<RunResult>((resolve, reject) => {
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env, detached: true, ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}) });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      if (stdout.length < MAX_OUTPUT) stdout += d.slice(0, MAX_OUTPUT - stdout.length);
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < MAX_OUTPUT) stderr += d.slice(0, MAX_OUTPUT - stderr.length);
    });

    const timer = setTimeout(() => {
      settle(() => {
        if (child.pid !== undefined) {
          try {
            process.kill(-child.pid, 'SIGKILL');
          } catch {
            child.kill('SIGKILL');
          }
        }
        // A grandchild that left the group could still hold the pipes; stop listening to them.
        child.stdout.destroy();
        child.stderr.destroy();
        reject(powerFailed(opts.driver, `${file} did not finish within ${opts.timeoutMs} ms and was killed`));
      });
    }, opts.timeoutMs);

    child.on('error', (err: NodeJS.ErrnoException) => {
      const why =
        err.code === 'ENOENT' ? 'not found (check the path, or PATH of the controller)'
        : err.code === 'EACCES' ? 'permission denied (is it executable?)'
        : err.message;
      settle(() => reject(powerFailed(opts.driver, `cannot run ${file}: ${why}`)));
    });
    child.on('close', (code, signal) => settle(() => resolve({ code, signal, stdout, stderr })));

    // A tool that exits without reading stdin makes the write fail with EPIPE; its exit status says what happened.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

/** "exit 3" or "killed by SIGTERM", for messages. */
export function exitText(r: RunResult): string {
  return r.code !== null ? `exit ${r.code}` : `killed by ${r.signal ?? 'a signal'}`;
}
