// The http driver: smart plugs and relay boards switched by an HTTP request (templates or a
// preset, see http-requests.ts). Success is the expected status (default any 2xx) and, where
// set, a body matching expectBody. Messages show the URL without credentials: query values whose
// names look secret are masked and Authorization headers are never shown.
import type { HttpPowerConfig } from '../config.js';
import { offPauseOn } from '../cycle.js';
import { powerFailed, tail } from '../failures.js';
import { readSecret } from '../secrets.js';
import { fill, targetValues, type TemplateValues } from '../templates.js';
import type { DriverContext, PowerDriver, PowerState, PowerTarget } from '../types.js';
import { resolveHttpConfig, type HttpRequestSpec, type ResolvedHttp } from './http-requests.js';

const SECRET_PARAM = /pass|secret|token|key|auth|user/i;

/** The URL for messages and logs: no userinfo, secret-looking query values masked. */
export function shownUrl(url: URL): string {
  // Pair by pair on the raw query, so the rest is shown exactly as it was sent.
  const query = url.search
    .slice(1)
    .split('&')
    .filter((pair) => pair !== '')
    .map((pair) => {
      const name = pair.split('=', 1)[0]!;
      let decoded = name;
      try {
        decoded = decodeURIComponent(name);
      } catch {
        // a malformed escape: judge the raw name
      }
      return SECRET_PARAM.test(decoded) ? `${name}=***` : pair;
    });
  return `${url.protocol}//${url.host}${url.pathname}${query.length > 0 ? `?${query.join('&')}` : ''}`;
}

/** Adds query parameters without re-encoding the template's own (Tasmota's %20 stays %20). */
function withParams(url: URL, params: Record<string, string>): URL {
  const extra = Object.entries(params).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  const u = new URL(url);
  u.search = [url.search.slice(1), ...extra].filter((p) => p !== '').join('&');
  return u;
}

export class HttpDriver implements PowerDriver {
  readonly name = 'http';
  private readonly req: ResolvedHttp;

  constructor(
    private readonly cfg: HttpPowerConfig,
    private readonly ctx: DriverContext,
  ) {
    this.req = resolveHttpConfig(cfg);
  }

  private async send(spec: HttpRequestSpec, t: PowerTarget, action: 'on' | 'off' | 'status'): Promise<string> {
    const values: TemplateValues = { ...targetValues(t), action, ...(this.req.port !== undefined ? { port: this.req.port } : {}) };
    const missing = (name: string) => powerFailed(this.name, `${spec.field} uses {{${name}}} but device ${t.deviceId} has no ${name}`);
    let url = new URL(fill(spec.url, values, true, missing));
    const headers: Record<string, string> = { ...spec.headers };
    const auth = this.cfg.auth;
    if (auth !== undefined) {
      const password = readSecret(auth.password, auth.passwordFile, 'auth.passwordFile') ?? '';
      if (this.req.authMode === 'tasmota-query') {
        url = withParams(url, { user: auth.user, password });
      } else {
        headers.authorization = `Basic ${Buffer.from(`${auth.user}:${password}`).toString('base64')}`;
      }
    }
    const shown = `${spec.method} ${shownUrl(url)}`;
    let res: Response;
    let body: string;
    try {
      res = await fetch(url, {
        method: spec.method,
        headers,
        ...(spec.body !== undefined ? { body: fill(spec.body, values, false, missing) } : {}),
        signal: AbortSignal.timeout(this.ctx.timeoutMs),
      });
      body = await res.text();
    } catch (err) {
      const e = err as Error & { cause?: Error & { code?: string } };
      const why = e.name === 'TimeoutError' || e.name === 'AbortError' ? `no answer within ${this.ctx.timeoutMs} ms` : (e.cause?.code ?? e.cause?.message ?? e.message);
      throw powerFailed(this.name, `${shown}: ${why}`);
    }
    this.ctx.logger?.debug({ driver: this.name, device: t.deviceId, request: shown, status: res.status }, 'power http request');
    const statusOk = spec.expectStatus !== undefined ? spec.expectStatus.includes(res.status) : res.status >= 200 && res.status < 300;
    if (!statusOk) {
      const expected = spec.expectStatus !== undefined ? spec.expectStatus.join(' or ') : '2xx';
      throw powerFailed(this.name, `${shown} answered HTTP ${res.status} (expected ${expected})${body.trim() ? `: ${tail(body, 200)}` : ''}`);
    }
    if (spec.expectBody !== undefined && !spec.expectBody.test(body)) {
      throw powerFailed(this.name, `${shown} answered HTTP ${res.status} without /${spec.expectBody.source}/ in the body: ${tail(body, 200) || '(empty)'}`);
    }
    return body;
  }

  async on(t: PowerTarget): Promise<void> {
    await this.send(this.req.on, t, 'on');
  }

  async off(t: PowerTarget): Promise<void> {
    await this.send(this.req.off, t, 'off');
  }

  cycle(t: PowerTarget): Promise<void> {
    return offPauseOn(t, (x) => this.off(x), (x) => this.on(x), this.ctx.cycleDelayMs);
  }

  async status(t: PowerTarget): Promise<PowerState> {
    const spec = this.req.status;
    if (spec === undefined) return 'unknown';
    const body = await this.send(spec, t, 'status');
    if (spec.onPattern?.test(body)) return 'on';
    if (spec.offPattern?.test(body)) return 'off';
    return 'unknown';
  }
}
