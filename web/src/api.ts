// The one way the dashboard talks to the controller: JSON over fetch with the bearer token, and
// the live event stream (Server-Sent Events read from a fetch body, since EventSource cannot
// send an Authorization header).
import { SseParser } from '../../src/domain/sse.js';
import type { Device, DroverEvent, HealthView, IngestJob, Job, Metrics } from './types';

const TOKEN_KEY = 'drover.token';
const SESSION_KEY = 'drover.session';

export interface Session {
  token: string;
  /** 'password' sessions are revoked on logout; pasted API tokens are only forgotten. */
  kind: 'password' | 'token';
  name: string;
  role: string;
  expiresAt: string | null;
}

export function loadSession(): Session | null {
  try {
    const token = localStorage.getItem(TOKEN_KEY);
    if (!token) return null;
    const meta = JSON.parse(localStorage.getItem(SESSION_KEY) ?? '{}') as Partial<Session>;
    return { token, kind: meta.kind ?? 'token', name: meta.name ?? '', role: meta.role ?? '', expiresAt: meta.expiresAt ?? null };
  } catch {
    return null;
  }
}

export function saveSession(s: Session | null): void {
  if (!s) {
    localStorage.removeItem(TOKEN_KEY);
    localStorage.removeItem(SESSION_KEY);
    return;
  }
  localStorage.setItem(TOKEN_KEY, s.token);
  const { token: _secret, ...meta } = s;
  localStorage.setItem(SESSION_KEY, JSON.stringify(meta));
}

/** An error the API returned (its catalogue code and message), or a network failure. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fix: string = '',
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function asApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  return new ApiError(0, 'DASHBOARD_ERROR', err instanceof Error ? err.message : String(err));
}

let currentToken: string | null = loadSession()?.token ?? null;
let onUnauthorized: (err: ApiError) => void = () => {};

export function setToken(token: string | null): void {
  currentToken = token;
}

/** Called when any request is answered 401: the token is gone, so the app returns to login. */
export function setUnauthorizedHandler(fn: (err: ApiError) => void): void {
  onUnauthorized = fn;
}

type Query = Record<string, string | number | string[] | undefined | null>;

export function withQuery(path: string, query: Query = {}): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) for (const x of v) p.append(k, x);
    else p.append(k, String(v));
  }
  const s = p.toString();
  return s ? `${path}?${s}` : path;
}

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  /** Use this token instead of the session's (validating a pasted token). */
  token?: string | null;
  /** Do not treat 401 as "session ended" (login forms). */
  noAuthRedirect?: boolean;
  signal?: AbortSignal;
}

export async function request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  const token = opts.token === undefined ? currentToken : opts.token;
  if (token) headers.authorization = `Bearer ${token}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(withQuery(`/api/v1${path}`, opts.query), {
      method,
      headers,
      body: opts.body === undefined ? null : JSON.stringify(opts.body),
      signal: opts.signal ?? null,
      cache: 'no-store',
    });
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw new ApiError(0, 'NETWORK_ERROR', 'The controller did not answer. Check that it is running and reachable.');
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const b = (json ?? {}) as { code?: string; message?: string; fix?: string };
    const err = new ApiError(res.status, b.code ?? `HTTP_${res.status}`, b.message ?? (text.slice(0, 200) || res.statusText), b.fix ?? '');
    if (res.status === 401 && !opts.noAuthRedirect) onUnauthorized(err);
    throw err;
  }
  return json as T;
}

/** Streams a file to POST /api/v1/images with upload progress (fetch cannot report it). */
export function uploadImage(file: File, query: Record<string, string>, onProgress: (sent: number, total: number) => void): Promise<IngestJob> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `/api/v1/images?${new URLSearchParams(query).toString()}`);
    xhr.setRequestHeader('content-type', 'application/octet-stream');
    if (currentToken) xhr.setRequestHeader('authorization', `Bearer ${currentToken}`);
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.total || file.size);
    xhr.onerror = () => reject(new ApiError(0, 'HTTP_0', 'The upload failed: the controller could not be reached.', ''));
    xhr.onload = () => {
      let body: { code?: string; message?: string; fix?: string } & Partial<IngestJob> = {};
      try {
        body = JSON.parse(xhr.responseText) as typeof body;
      } catch {
        /* not JSON */
      }
      if (xhr.status === 202) resolve(body as IngestJob);
      else reject(new ApiError(xhr.status, body.code ?? `HTTP_${xhr.status}`, body.message ?? xhr.statusText, body.fix ?? ''));
    };
    xhr.send(file);
  });
}

export const api = {
  get: <T>(path: string, query?: Query, signal?: AbortSignal) => request<T>('GET', path, { query, ...(signal ? { signal } : {}) }),
  post: <T>(path: string, body: unknown = {}) => request<T>('POST', path, { body }),
  patch: <T>(path: string, body: unknown) => request<T>('PATCH', path, { body }),
};

// --- live stream --------------------------------------------------------------------------

export type { IngestJob };

/** A job's output as it arrives (`job-output` on the stream). */
export interface JobOutput {
  jobId: string;
  deviceId: string;
  stream: 'stdout' | 'stderr';
  data: string;
}

export type StreamMessage =
  | { kind: 'event'; event: DroverEvent }
  | { kind: 'device'; device: Device }
  | { kind: 'progress'; job: IngestJob }
  /** A device's health changed (or its remediation moved on). */
  | { kind: 'health'; health: HealthView & { deviceId: string } }
  | { kind: 'job'; job: Job }
  | { kind: 'job-output'; output: JobOutput }
  /** One metrics sample; only on a device-scoped stream. */
  | { kind: 'sample'; sample: { ts: string; m: Metrics } };
export type StreamStatus = 'connecting' | 'live' | 'reconnecting';

export interface StreamHandlers {
  message(m: StreamMessage): void;
  status(s: StreamStatus): void;
  /** Each successful (re)connection; after a gap, device changes may have been missed. */
  connected(reconnect: boolean): void;
}

const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30_000;
/** The server pings every 15 s; silence for longer than this means the connection is dead. */
const IDLE_TIMEOUT_MS = 45_000;

/**
 * Opens the event stream and keeps it open, reconnecting with back-off. Returns a stop function.
 * With `device`, the stream carries only that device's messages, and its live metric samples.
 */
export function openEventStream(handlers: StreamHandlers, opts: { device?: string } = {}): () => void {
  let stopped = false;
  let controller: AbortController | null = null;
  let lastEventId: string | null = null;
  let backoff = BACKOFF_MIN_MS;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  let everConnected = false;

  const dispatch = (type: string, data: string) => {
    if (!data) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(data);
    } catch {
      return;
    }
    if (type === 'event') handlers.message({ kind: 'event', event: parsed as DroverEvent });
    else if (type === 'device') handlers.message({ kind: 'device', device: parsed as Device });
    else if (type === 'progress') handlers.message({ kind: 'progress', job: parsed as IngestJob });
    else if (type === 'health') handlers.message({ kind: 'health', health: parsed as HealthView & { deviceId: string } });
    else if (type === 'job') handlers.message({ kind: 'job', job: parsed as Job });
    else if (type === 'job-output') {
      const { jobId, deviceId, stream, data: text } = parsed as JobOutput;
      handlers.message({ kind: 'job-output', output: { jobId, deviceId, stream, data: text } });
    } else if (type === 'sample') handlers.message({ kind: 'sample', sample: parsed as { ts: string; m: Metrics } });
  };
  const streamUrl = withQuery('/api/v1/events/stream', { device: opts.device });

  const connect = async () => {
    if (stopped) return;
    controller = new AbortController();
    const ctl = controller;
    let idle: ReturnType<typeof setTimeout> | undefined;
    const resetIdle = () => {
      clearTimeout(idle);
      idle = setTimeout(() => ctl.abort(), IDLE_TIMEOUT_MS);
    };
    handlers.status(everConnected ? 'reconnecting' : 'connecting');
    try {
      const headers: Record<string, string> = { accept: 'text/event-stream' };
      if (currentToken) headers.authorization = `Bearer ${currentToken}`;
      if (lastEventId) headers['last-event-id'] = lastEventId;
      resetIdle();
      const res = await fetch(streamUrl, { headers, signal: ctl.signal, cache: 'no-store' });
      if (res.status === 401) {
        const b = (await res.json().catch(() => ({}))) as { code?: string; message?: string; fix?: string };
        onUnauthorized(new ApiError(401, b.code ?? 'HTTP_401', b.message ?? 'Unauthorized', b.fix ?? ''));
        stopped = true;
        return;
      }
      if (!res.ok || !res.body) throw new Error(`stream answered ${res.status}`);
      handlers.status('live');
      handlers.connected(everConnected);
      everConnected = true;
      backoff = BACKOFF_MIN_MS;

      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      const parser = new SseParser();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        resetIdle();
        for (const m of parser.push(value)) {
          if (m.id !== undefined) lastEventId = m.id;
          dispatch(m.event, m.data);
        }
      }
    } catch {
      // aborted, network error or bad status: fall through to reconnect
    } finally {
      clearTimeout(idle);
    }
    if (stopped) return;
    handlers.status('reconnecting');
    const wait = backoff + Math.floor(Math.random() * 250);
    backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
    retryTimer = setTimeout(() => void connect(), wait);
  };

  void connect();
  return () => {
    stopped = true;
    clearTimeout(retryTimer);
    controller?.abort();
  };
}
