// Runs `drover serve` as a real child process (the built bin, or the TypeScript source through
// tsx when there is no build) and the `drover` CLI against it.
import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './postgres.js';

const root = new URL('../../', import.meta.url).pathname;
const built = existsSync(join(root, 'dist/server/cli/main.js'));

/** argv prefix that runs the drover CLI. */
export function droverArgv(): string[] {
  return built ? [join(root, 'bin/drover.js')] : ['--import', 'tsx', join(root, 'src/cli/main.ts')];
}

export interface ServerProcess {
  url: string;
  port: number;
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  adminToken: () => string;
  /** SIGKILL, then wait for the process to be gone. */
  kill9(): Promise<void>;
  /** SIGTERM and wait; resolves with the exit code. */
  stop(): Promise<number | null>;
}

export async function spawnServer(opts: { dataDir: string; database?: string; port?: number; env?: NodeJS.ProcessEnv; extraArgs?: string[] }): Promise<ServerProcess> {
  const port = opts.port ?? (await freePort());
  const args = [...droverArgv(), 'serve', '--data-dir', opts.dataDir, '--listen', `127.0.0.1:${port}`, '--log-level', 'warn'];
  if (opts.database) args.push('--database', opts.database);
  // Tests never bind the real TFTP port unless they ask for a TFTP listener.
  args.push(...(opts.extraArgs?.includes('--tftp-listen') ? [] : ['--tftp-listen', 'off']), ...(opts.extraArgs ?? []));
  // Ingests put the agent into images but download no Node.js runtime: tests stay offline. The
  // runtime path is tested against a local registry in src/images/node-runtime.test.ts.
  if (!opts.extraArgs?.includes('--image-agent')) args.push('--image-agent', 'agent');
  const proc = spawn(process.execPath, args, { cwd: root, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`drover serve exited with ${proc.exitCode}: ${err}${out}`);
    try {
      const r = await fetch(`${url}/readyz`);
      if (r.ok) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`drover serve did not become ready: ${err}${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    port,
    proc,
    stdout: () => out,
    stderr: () => err,
    adminToken: () => readFileSync(join(opts.dataDir, 'initial-admin-token'), 'utf8').trim(),
    async kill9() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      return exited;
    },
  };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  json: any;
}

/** Runs `drover ARGS` synchronously with the given environment and optional stdin. */
export function drover(args: string[], env: NodeJS.ProcessEnv, input?: string): CliResult {
  const res: SpawnSyncReturns<string> = spawnSync(process.execPath, [...droverArgv(), ...args], {
    cwd: root,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    input: input ?? '',
    encoding: 'utf8',
    timeout: 30_000,
  });
  let json: unknown;
  try {
    json = JSON.parse(res.stdout);
  } catch {
    json = undefined;
  }
  return { code: res.status, stdout: res.stdout, stderr: res.stderr, json };
}
