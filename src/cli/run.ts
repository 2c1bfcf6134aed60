// Shared plumbing for commands: global options, the API client, and error → exit code.
import type { Command } from 'commander';
import { DroverError, ERRORS } from '../domain/errors.js';
import { ApiClient, CliError } from './client.js';
import { EXIT, exitCodeFor, printError } from './output.js';

export interface GlobalOptions {
  server?: string;
  token?: string;
  json?: boolean;
}

export function globals(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals() as GlobalOptions;
}

export function client(cmd: Command): ApiClient {
  const g = globals(cmd);
  return new ApiClient({ server: g.server, token: g.token });
}

/** Wraps a command action: prints errors with code and fix, sets the exit code. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void> | void) {
  return async (...args: A): Promise<void> => {
    const cmd = args[args.length - 1] as Command;
    const json = Boolean(globals(cmd).json);
    try {
      await fn(...args);
    } catch (err) {
      const ce = toCliError(err);
      printError(ce, json);
      process.exitCode = exitCodeFor(ce);
    }
  };
}

export function toCliError(err: unknown): CliError {
  if (err instanceof CliError) return err;
  if (err instanceof DroverError) return new CliError(err.code, err.message, err.fix, err.status);
  return new CliError('DROVER_INTERNAL', (err as Error)?.message ?? String(err), ERRORS.DROVER_INTERNAL.fix);
}

export function bad(message: string): CliError {
  return CliError.of('DROVER_CLI_BAD_ARGUMENT', message);
}

export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** `30d`, `12h`, `90m`, `45s` or plain seconds. */
export function parseDuration(s: string): number {
  const m = /^(\d+)\s*([smhd]?)$/.exec(s.trim());
  if (!m) throw bad(`"${s}" is not a duration like 90m, 12h or 30d.`);
  return Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
}

export { EXIT };
