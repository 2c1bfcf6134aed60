// Turns an http power config into one concrete request per action, and refuses configs that
// could not work (no URL for an action, a placeholder with no value, a regex that does not
// compile, credentials in a URL). Precedence: preset < top-level settings < the action's own.
// Status takes only `headers` and `auth` from the top level: the top-level url, method and body
// describe the switching request.
import type { HttpPowerConfig, HttpRequestOverrideConfig } from '../config.js';
import { configError } from '../failures.js';
import { fill, unknownPlaceholder, type Placeholder } from '../templates.js';
import { preset as presetOf, type Preset } from './http-presets.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT';

export interface HttpRequestSpec {
  /** Field path for messages, e.g. power.on. */
  field: string;
  url: string;
  method: HttpMethod;
  body: string | undefined;
  headers: Record<string, string>;
  expectStatus: number[] | undefined;
  expectBody: RegExp | undefined;
}

export interface HttpStatusSpec extends HttpRequestSpec {
  onPattern: RegExp | undefined;
  offPattern: RegExp | undefined;
}

export interface ResolvedHttp {
  on: HttpRequestSpec;
  off: HttpRequestSpec;
  status: HttpStatusSpec | undefined;
  /** The {{port}} value. */
  port: string | undefined;
  authMode: Preset['auth'];
}

const ALLOWED: readonly Placeholder[] = ['serial', 'deviceId', 'hostname', 'port', 'action'];
const SAMPLE = { serial: '1234abcd', deviceId: 'dev_x', hostname: 'pi', port: '1', action: 'on' } as const;

function regex(source: string | undefined, field: string): RegExp | undefined {
  if (source === undefined) return undefined;
  try {
    return new RegExp(source);
  } catch (err) {
    throw configError(field, `is not a valid regular expression (${(err as Error).message})`);
  }
}

function checkTemplate(template: string | undefined, field: string, port: string | undefined): void {
  if (template === undefined) return;
  const bad = unknownPlaceholder(template, ALLOWED);
  if (bad !== null) throw configError(field, `unknown placeholder {{${bad}}}; use ${ALLOWED.map((p) => `{{${p}}}`).join(', ')}`);
  if (port === undefined && /\{\{\s*port\s*\}\}/.test(template)) throw configError('power.port', `is required: ${field} uses {{port}}`);
}

function checkUrl(template: string, field: string, port: string | undefined): void {
  checkTemplate(template, field, port);
  let url: URL;
  try {
    url = new URL(fill(template, SAMPLE, true, () => new Error('unreachable')));
  } catch {
    throw configError(field, `is not a URL: ${template}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw configError(field, 'must be an http:// or https:// URL');
  // fetch refuses URLs with credentials; they would also end up in messages. `auth` or a header carries them.
  if (url.username !== '' || url.password !== '') throw configError(field, 'must not hold credentials; use power.auth or an Authorization header');
}

export function resolveHttpConfig(cfg: HttpPowerConfig): ResolvedHttp {
  if (cfg.preset !== undefined && cfg.host === undefined) throw configError('power.host', `is required with preset ${cfg.preset}`);
  if (cfg.preset === undefined && cfg.host !== undefined) throw configError('power.host', 'is only used with a preset; put the host into the URL templates');
  if (cfg.preset === undefined && cfg.scheme !== undefined) throw configError('power.scheme', 'is only used with a preset');
  const p = cfg.preset !== undefined ? presetOf(cfg.preset, cfg.scheme ?? 'http', cfg.host!) : undefined;
  const port = cfg.port !== undefined ? String(cfg.port) : p?.defaultPort;
  const authMode = p?.auth ?? 'basic';

  if (cfg.auth !== undefined) {
    if (authMode === 'unsupported') throw configError('power.auth', `${cfg.preset} devices use HTTP digest authentication, which the http driver does not support; turn authentication off on the device or use the exec driver`);
    if (cfg.auth.password !== undefined && cfg.auth.passwordFile !== undefined) throw configError('power.auth.passwordFile', 'give password or passwordFile, not both');
    const all = [cfg.headers, cfg.on?.headers, cfg.off?.headers, cfg.status?.headers];
    if (all.some((h) => h !== undefined && Object.keys(h).some((k) => k.toLowerCase() === 'authorization'))) {
      throw configError('power.auth', 'give auth or an Authorization header, not both');
    }
  }

  const action = (name: 'on' | 'off'): HttpRequestSpec => {
    const own: HttpRequestOverrideConfig = cfg[name] ?? {};
    const field = `power.${name}`;
    const url = own.url ?? cfg.url ?? p?.[name].url;
    if (url === undefined) throw configError(`${field}.url`, `is required: give power.url (with {{action}}), power.${name}.url, or a preset`);
    const urlField = own.url !== undefined ? `${field}.url` : cfg.url !== undefined ? 'power.url' : `${field}.url`;
    checkUrl(url, urlField, port);
    const body = own.body ?? cfg.body;
    checkTemplate(body, own.body !== undefined ? `${field}.body` : 'power.body', port);
    const expectBody = own.expectBody ?? cfg.expectBody;
    return {
      field,
      url,
      method: own.method ?? cfg.method ?? 'GET',
      body,
      headers: { ...cfg.headers, ...own.headers },
      expectStatus: own.expectStatus ?? cfg.expectStatus,
      expectBody:
        expectBody !== undefined ? regex(expectBody, own.expectBody !== undefined ? `${field}.expectBody` : 'power.expectBody')
        : regex(p?.[name].expectBody, `${field}.expectBody`),
    };
  };

  const status = ((): HttpStatusSpec | undefined => {
    const own = cfg.status;
    if (own === undefined && p === undefined) return undefined;
    const url = own?.url ?? p?.status.url;
    if (url === undefined) throw configError('power.status.url', 'is required without a preset');
    checkUrl(url, 'power.status.url', port);
    checkTemplate(own?.body, 'power.status.body', port);
    const onPattern = regex(own?.onPattern ?? p?.status.onPattern, 'power.status.onPattern');
    const offPattern = regex(own?.offPattern ?? p?.status.offPattern, 'power.status.offPattern');
    if (onPattern === undefined && offPattern === undefined) throw configError('power.status.onPattern', 'give onPattern and/or offPattern so the answer can be read');
    return {
      field: 'power.status',
      url,
      method: own?.method ?? 'GET',
      body: own?.body,
      headers: { ...cfg.headers, ...own?.headers },
      expectStatus: own?.expectStatus,
      expectBody: regex(own?.expectBody, 'power.status.expectBody'),
      onPattern,
      offPattern,
    };
  })();

  return { on: action('on'), off: action('off'), status, port, authMode };
}
