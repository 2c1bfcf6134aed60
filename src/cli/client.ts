// The CLI's HTTP client: finds the server and token (flags > env > saved login), calls the API
// and turns error bodies into CliErrors carrying the catalogue code.
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { ERRORS, type ErrorCode } from '../domain/errors.js';

export class CliError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly fix: string,
    readonly status: number | null = null,
  ) {
    super(message);
  }

  static of(code: ErrorCode, message?: string): CliError {
    return new CliError(code, message ?? ERRORS[code].message, ERRORS[code].fix);
  }
}

export interface SavedLogin {
  server: string;
  token: string;
}

export function loginFile(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME.startsWith('/') ? env.XDG_CONFIG_HOME : join(homedir(), '.config');
  return join(base, 'drover', 'cli.json');
}

export function readSavedLogin(): SavedLogin | null {
  try {
    const j = JSON.parse(readFileSync(loginFile(), 'utf8')) as Partial<SavedLogin>;
    return typeof j.server === 'string' && typeof j.token === 'string' ? { server: j.server, token: j.token } : null;
  } catch {
    return null;
  }
}

/** Atomic and private: the file holds a bearer token. */
export function saveLogin(login: SavedLogin | null): string {
  const file = loginFile();
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, login ? `${JSON.stringify(login, null, 2)}\n` : '{}\n', { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
  return file;
}

export interface ClientOptions {
  server?: string | undefined;
  token?: string | undefined;
}

export function normalizeServer(s: string): string {
  const withScheme = /^https?:\/\//i.test(s) ? s : `http://${s}`;
  try {
    const u = new URL(withScheme);
    return u.origin;
  } catch {
    throw CliError.of('DROVER_CLI_BAD_ARGUMENT', `"${s}" is not a server URL.`);
  }
}

export class ApiClient {
  readonly server: string;
  readonly token: string | undefined;

  constructor(opts: ClientOptions, requireToken = true) {
    const saved = readSavedLogin();
    const server = opts.server ?? process.env.DROVER_SERVER ?? saved?.server;
    if (!server) throw CliError.of('DROVER_CLI_NO_SERVER');
    this.server = normalizeServer(server);
    this.token = opts.token ?? process.env.DROVER_TOKEN ?? (saved && normalizeServer(saved.server) === this.server ? saved.token : undefined);
    if (requireToken && !this.token) throw CliError.of('DROVER_CLI_NO_TOKEN');
  }

  async request<T = any>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.raw(method, path, body);
    const text = await res.text();
    let json: any;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      if (json && typeof json.code === 'string') throw new CliError(json.code, json.message ?? res.statusText, json.fix ?? '', res.status);
      throw new CliError('DROVER_INTERNAL', `${method} ${path} answered ${res.status} ${res.statusText}`, ERRORS.DROVER_INTERNAL.fix, res.status);
    }
    return json as T;
  }

  async raw(method: string, path: string, body?: unknown, extraHeaders: Record<string, string> = {}, signal?: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json', ...extraHeaders };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    try {
      return await fetch(`${this.server}${path}`, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err;
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw CliError.of('DROVER_CLI_SERVER_UNREACHABLE', `Cannot reach ${this.server}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
    }
  }
}

export const enc = encodeURIComponent;
