// One request to a Turing Pi 2 BMC's API (bmcd, github.com/turing-machines/bmcd, the "legacy" API
// both the web UI and the tpi CLI use): GET /api/bmc?opt=get|set&type=...; every answer is
// {"response":[{"result": "ok" | <data> | "<error message>"}]}. Firmware 2.x serves it over
// https with a self-signed certificate and takes HTTP Basic auth (or a bearer token) on each
// request; 1.x serves plain http without auth. This uses node:https rather than fetch because
// fetch cannot be told to trust one self-signed certificate (caFile) or, if asked, any (insecureTls).
import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { configError, powerFailed, tail } from '../failures.js';

export interface BmcEndpoint {
  scheme: 'https' | 'http';
  host: string;
  user: string | undefined;
  password: string | undefined;
  caFile: string | undefined;
  insecureTls: boolean;
  timeoutMs: number;
}

const MAX_BODY = 1024 * 1024;
const TLS_HINT = 'the BMC uses a self-signed certificate: set caFile to it (or insecureTls: true on a trusted network)';

/** `result` of the BMC's answer; DROVER_POWER_FAILED for transport errors and non-2xx answers. */
export function bmcRequest(ep: BmcEndpoint, query: Record<string, string>): Promise<unknown> {
  const path = `/api/bmc?${new URLSearchParams(query).toString()}`;
  const shown = `GET ${ep.scheme}://${ep.host}${path}`;
  const headers: Record<string, string> = { accept: 'application/json' };
  if (ep.user !== undefined) headers.authorization = `Basic ${Buffer.from(`${ep.user}:${ep.password ?? ''}`).toString('base64')}`;
  let ca: string | undefined;
  if (ep.caFile !== undefined) {
    try {
      ca = readFileSync(ep.caFile, 'utf8');
    } catch (err) {
      throw configError('power.caFile', `cannot read ${ep.caFile} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  }
  const url = new URL(`${ep.scheme}://${ep.host}${path}`);

  return new Promise<unknown>((resolve, reject) => {
    const onResponse = (res: IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        if (body.length < MAX_BODY) body += d;
      });
      res.on('error', (err) => fail(err.message));
      res.on('end', () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        const status = res.statusCode ?? 0;
        let result: unknown;
        try {
          const parsed = JSON.parse(body) as { response?: { result?: unknown }[] };
          result = parsed.response?.[0]?.result;
        } catch {
          result = undefined;
        }
        if (status < 200 || status >= 300) {
          const detail = typeof result === 'string' ? result : tail(body, 200);
          const hint = status === 401 || status === 403 ? ' (check user and password)' : '';
          return reject(powerFailed('tpi', `${shown} answered HTTP ${status}${hint}${detail ? `: ${detail}` : ''}`));
        }
        if (result === undefined) return reject(powerFailed('tpi', `${shown} answered HTTP ${status} without {"response":[{"result":...}]}: ${tail(body, 200) || '(empty)'}`));
        resolve(result);
      });
    };
    const options = { method: 'GET', headers };
    const req =
      ep.scheme === 'https'
        ? httpsRequest(url, { ...options, ...(ca !== undefined ? { ca } : {}), rejectUnauthorized: !ep.insecureTls }, onResponse)
        : httpRequest(url, options, onResponse);
    let done = false;
    const fail = (why: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.destroy();
      reject(powerFailed('tpi', `${shown}: ${why}`));
    };
    const timer = setTimeout(() => fail(`no answer within ${ep.timeoutMs} ms`), ep.timeoutMs);
    req.on('error', (err: NodeJS.ErrnoException) => {
      const tls = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(err.code ?? '') ? ` (${TLS_HINT})` : '';
      fail(`${err.code ?? err.message}${tls}`);
    });
    req.end();
  });
}

/** A node's state from `opt=get&type=power`: [{"node1":"1","node2":"0",...}] ("Unknown" when bmcd cannot tell). */
export function nodePowerFromResult(result: unknown, node: number): 'on' | 'off' | 'unknown' {
  const first: unknown = Array.isArray(result) ? result[0] : result;
  if (typeof first !== 'object' || first === null) return 'unknown';
  const v = (first as Record<string, unknown>)[`node${node}`];
  if (v === 1 || v === '1' || v === true) return 'on';
  if (v === 0 || v === '0' || v === false) return 'off';
  return 'unknown';
}
