// The power drivers. Each maps on/off/cycle/status onto one real-world control: a script
// (bakery's PPI contract), an HTTP relay or smart plug, a USB hub port (uhubctl), a PoE switch
// port (SNMP pethPsePortAdminEnable), a Turing Pi 2 BMC, a Cluster HAT. Failures are
// DROVER_POWER_FAILED with what the driver saw (exit code and stderr tail, HTTP status, SNMP
// error); secrets (SNMP community, HTTP auth, BMC password) never reach a message or a log.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { DroverError } from '../domain/errors.js';
import type { PowerConfig } from './config.js';

export type PowerState = 'on' | 'off' | 'unknown';
export interface PowerTarget {
  deviceId: string;
  serial: string;
  hostname: string | null;
}
export interface PowerDriver {
  readonly name: string;
  on(t: PowerTarget): Promise<void>;
  off(t: PowerTarget): Promise<void>;
  cycle(t: PowerTarget): Promise<void>;
  status(t: PowerTarget): Promise<PowerState>;
}

const DEFAULT_TIMEOUT = 10_000;
const DEFAULT_CYCLE_DELAY = 3000;
const fail = (message: string) => new DroverError('DROVER_POWER_FAILED', message);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program (no shell) with a time limit; a missing program or a timeout is a power failure. */
export function run(argv: string[], opts: { input?: string; env?: Record<string, string>; timeoutMs: number; redact?: string[] }): Promise<RunResult> {
  const shown = argv.map((a) => (opts.redact?.includes(a) ? '***' : a)).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...opts.env }, detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout = (stdout + d.toString()).slice(-8192)));
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8192)));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
      reject(fail(`${shown} did not finish within ${opts.timeoutMs} ms and was killed.`));
    }, opts.timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(fail(`Cannot run ${argv[0]}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : err.message}.`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

const tail = (s: string) => s.trim().split('\n').slice(-3).join(' | ').slice(0, 300);

/** on/off by two primitives, cycle = off, pause, on. */
abstract class Base implements PowerDriver {
  abstract readonly name: string;
  protected readonly timeoutMs: number;
  protected readonly cycleDelayMs: number;
  constructor(c: { timeoutMs?: number | undefined; cycleDelayMs?: number | undefined }) {
    this.timeoutMs = c.timeoutMs ?? DEFAULT_TIMEOUT;
    this.cycleDelayMs = c.cycleDelayMs ?? DEFAULT_CYCLE_DELAY;
  }
  abstract on(t: PowerTarget): Promise<void>;
  abstract off(t: PowerTarget): Promise<void>;
  abstract status(t: PowerTarget): Promise<PowerState>;
  async cycle(t: PowerTarget): Promise<void> {
    await this.off(t);
    await sleep(this.cycleDelayMs);
    await this.on(t);
  }
}

/** bakery's PPI: JSON {"piId", "action": "poweron"|"poweroff"} on stdin; success is exit 0 and "ok" on stdout. */
export class ExecDriver extends Base {
  readonly name = 'exec';
  constructor(private readonly c: Extract<PowerConfig, { driver: 'exec' }>) {
    super(c);
  }
  private async call(t: PowerTarget, action: 'poweron' | 'poweroff' | 'status'): Promise<string> {
    const piId = (this.c.piId ?? '{{serial}}').replace(/\{\{\s*(serial|hostname|id)\s*\}\}/g, (_, k: string) => (k === 'serial' ? t.serial : k === 'id' ? t.deviceId : (t.hostname ?? t.serial)));
    const r = await run(this.c.command, {
      input: `${JSON.stringify({ piId, action })}\n`,
      env: { DROVER_DEVICE_ID: t.deviceId, DROVER_SERIAL: t.serial, DROVER_HOSTNAME: t.hostname ?? '', DROVER_ACTION: action },
      timeoutMs: this.timeoutMs,
    });
    if (r.code !== 0) throw fail(`${this.c.command[0]} ${action} exited with ${r.code}${r.stderr.trim() ? `: ${tail(r.stderr)}` : ''}.`);
    return r.stdout.trim();
  }
  async on(t: PowerTarget) {
    const out = await this.call(t, 'poweron');
    if (out !== 'ok') throw fail(`${this.c.command[0]} poweron printed "${out.slice(0, 80)}", not "ok".`);
  }
  async off(t: PowerTarget) {
    const out = await this.call(t, 'poweroff');
    if (out !== 'ok') throw fail(`${this.c.command[0]} poweroff printed "${out.slice(0, 80)}", not "ok".`);
  }
  async status(t: PowerTarget): Promise<PowerState> {
    try {
      const out = await this.call(t, 'status');
      return out === 'on' || out === 'off' ? out : 'unknown';
    } catch {
      return 'unknown';
    }
  }
}

const PRESETS = {
  'shelly-gen1': { on: 'http://{{host}}/relay/{{relay}}?turn=on', off: 'http://{{host}}/relay/{{relay}}?turn=off', status: 'http://{{host}}/relay/{{relay}}', onPattern: '"ison"\\s*:\\s*true', offPattern: '"ison"\\s*:\\s*false' },
  'shelly-gen2': { on: 'http://{{host}}/rpc/Switch.Set?id={{relay}}&on=true', off: 'http://{{host}}/rpc/Switch.Set?id={{relay}}&on=false', status: 'http://{{host}}/rpc/Switch.GetStatus?id={{relay}}', onPattern: '"output"\\s*:\\s*true', offPattern: '"output"\\s*:\\s*false' },
  tasmota: { on: 'http://{{host}}/cm?cmnd=Power{{relay1}}%20On', off: 'http://{{host}}/cm?cmnd=Power{{relay1}}%20Off', status: 'http://{{host}}/cm?cmnd=Power{{relay1}}', onPattern: '"POWER\\d*"\\s*:\\s*"ON"', offPattern: '"POWER\\d*"\\s*:\\s*"OFF"' },
} as const;

/** Smart plugs and relay boards over HTTP: URL templates, or a preset for Shelly and Tasmota. */
export class HttpDriver extends Base {
  readonly name = 'http';
  private readonly urls: { on: string; off: string; status?: string | undefined; onPattern?: string | undefined; offPattern?: string | undefined };
  constructor(private readonly c: Extract<PowerConfig, { driver: 'http' }>) {
    super(c);
    const p = c.preset ? PRESETS[c.preset] : undefined;
    this.urls = { on: c.on ?? p!.on, off: c.off ?? p!.off, status: c.status ?? p?.status, onPattern: c.onPattern ?? p?.onPattern, offPattern: c.offPattern ?? p?.offPattern };
  }
  private fill(template: string, t: PowerTarget, action: string, encode = true): string {
    const relay = this.c.relay ?? 0;
    const vars: Record<string, string> = { host: this.c.host ?? '', relay: String(relay), relay1: String(relay + 1), port: this.c.port ?? '', serial: t.serial, hostname: t.hostname ?? '', id: t.deviceId, action };
    return template.replace(/\{\{\s*(\w+)\s*\}\}/g, (all, k: string) => (k in vars ? (encode && k !== 'host' ? encodeURIComponent(vars[k]!) : vars[k]!) : all));
  }
  private async call(template: string, t: PowerTarget, action: string): Promise<string> {
    const url = this.fill(template, t, action);
    const shown = url.replace(/\/\/[^@/]*@/, '//***@');
    let res: Response;
    try {
      res = await fetch(url, {
        method: this.c.method ?? 'GET',
        headers: this.c.headers ?? {},
        ...(this.c.body ? { body: this.fill(this.c.body, t, action, false) } : {}),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      const e = err as Error;
      throw fail(`${this.c.method ?? 'GET'} ${shown}: ${e.name === 'TimeoutError' ? `no answer within ${this.timeoutMs} ms` : ((e.cause as Error | undefined)?.message ?? e.message)}.`);
    }
    const body = await res.text();
    if (!res.ok) throw fail(`${this.c.method ?? 'GET'} ${shown} answered HTTP ${res.status}.`);
    if (this.c.expectBody && action !== 'status' && !new RegExp(this.c.expectBody).test(body)) throw fail(`${shown} answered without the expected body (${this.c.expectBody}).`);
    return body;
  }
  async on(t: PowerTarget) {
    await this.call(this.urls.on, t, 'on');
  }
  async off(t: PowerTarget) {
    await this.call(this.urls.off, t, 'off');
  }
  async status(t: PowerTarget): Promise<PowerState> {
    if (!this.urls.status) return 'unknown';
    const body = await this.call(this.urls.status, t, 'status');
    if (this.urls.onPattern && new RegExp(this.urls.onPattern).test(body)) return 'on';
    if (this.urls.offPattern && new RegExp(this.urls.offPattern).test(body)) return 'off';
    return 'unknown';
  }
}

/** USB hub port power: `uhubctl -l LOCATION -p PORT -a on|off|cycle`. */
export class UhubctlDriver extends Base {
  readonly name = 'uhubctl';
  constructor(private readonly c: Extract<PowerConfig, { driver: 'uhubctl' }>) {
    super(c);
  }
  private async call(action: string, extra: string[] = []): Promise<string> {
    const argv = [this.c.binary ?? 'uhubctl', '-l', this.c.location, '-p', String(this.c.port), ...(action ? ['-a', action] : []), ...extra];
    const r = await run(argv, { timeoutMs: this.timeoutMs + this.cycleDelayMs });
    if (r.code !== 0) throw fail(`uhubctl ${action || 'status'} on ${this.c.location} port ${this.c.port} exited with ${r.code}: ${tail(r.stderr || r.stdout)}.`);
    return r.stdout;
  }
  async on() {
    await this.call('on');
  }
  async off() {
    await this.call('off');
  }
  override async cycle() {
    await this.call('cycle', ['-d', String(Math.max(1, Math.round(this.cycleDelayMs / 1000)))]);
  }
  async status(): Promise<PowerState> {
    const out = await this.call('');
    // "  Port 2: 0503 power highspeed enable connect [...]" — the last block is the current state
    const lines = out.split('\n').filter((l) => new RegExp(`^\\s*Port ${this.c.port}:`).test(l));
    const line = lines[lines.length - 1];
    if (!line) return 'unknown';
    return /\boff\b/.test(line) || !/\bpower\b/.test(line) ? 'off' : 'on';
  }
}

/** PoE switch port: POWER-ETHERNET-MIB pethPsePortAdminEnable.<group>.<port>, true(1) / false(2), via net-snmp. */
export class SnmpPoeDriver extends Base {
  readonly name = 'snmp-poe';
  private readonly oid: string;
  constructor(private readonly c: Extract<PowerConfig, { driver: 'snmp-poe' }>) {
    super(c);
    this.oid = `1.3.6.1.2.1.105.1.1.1.3.${c.group ?? 1}.${c.port}`;
  }
  private community(): string {
    if (this.c.communityFile) {
      try {
        return readFileSync(this.c.communityFile, 'utf8').trim();
      } catch (err) {
        throw fail(`Cannot read the SNMP community file ${this.c.communityFile}: ${(err as Error).message}.`);
      }
    }
    return this.c.community ?? 'private';
  }
  private async snmp(tool: 'snmpset' | 'snmpget', extra: string[]): Promise<string> {
    const community = this.community();
    const bin = tool === 'snmpset' ? (this.c.binary ?? 'snmpset') : (this.c.binary ? this.c.binary.replace(/snmpset$/, 'snmpget') : 'snmpget');
    const argv = [bin, '-v2c', '-c', community, '-t', String(Math.max(1, Math.round(this.timeoutMs / 3000))), '-r', '2', '-Oqv', `${this.c.host}:${this.c.snmpPort ?? 161}`, this.oid, ...extra];
    const r = await run(argv, { timeoutMs: this.timeoutMs, redact: [community] });
    if (r.code !== 0) throw fail(`${tool} ${this.c.host} ${this.oid} failed (exit ${r.code}): ${tail(r.stderr.split(community).join('***'))}.`);
    return r.stdout.trim();
  }
  async on() {
    await this.snmp('snmpset', ['i', '1']);
  }
  async off() {
    await this.snmp('snmpset', ['i', '2']);
  }
  async status(): Promise<PowerState> {
    const v = await this.snmp('snmpget', []);
    return /^(1|true)/.test(v) ? 'on' : /^(2|false)/.test(v) ? 'off' : 'unknown';
  }
}

/** Turing Pi 2 BMC: its HTTP API (`/api/bmc?opt=set&type=power&nodeN=1|0`) or the `tpi` CLI. */
export class TpiDriver extends Base {
  readonly name = 'tpi';
  constructor(private readonly c: Extract<PowerConfig, { driver: 'tpi' }>) {
    super(c);
  }
  private async api(query: string): Promise<string> {
    const url = `${this.c.url!.replace(/\/$/, '')}/api/bmc?${query}`;
    const headers: Record<string, string> = {};
    if (this.c.username) headers.authorization = `Basic ${Buffer.from(`${this.c.username}:${this.c.password ?? ''}`).toString('base64')}`;
    let res: Response;
    try {
      res = await fetch(url, { headers, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (err) {
      throw fail(`Turing Pi BMC ${this.c.url}: ${((err as Error).cause as Error | undefined)?.message ?? (err as Error).message}.`);
    }
    const body = await res.text();
    if (!res.ok) throw fail(`Turing Pi BMC ${this.c.url} answered HTTP ${res.status}.`);
    return body;
  }
  private async cli(args: string[]): Promise<string> {
    const r = await run([this.c.binary ?? 'tpi', ...args], { timeoutMs: this.timeoutMs });
    if (r.code !== 0) throw fail(`tpi ${args.join(' ')} exited with ${r.code}: ${tail(r.stderr || r.stdout)}.`);
    return r.stdout;
  }
  private async set(on: boolean): Promise<void> {
    if ((this.c.mode ?? 'api') === 'cli') await this.cli(['power', on ? 'on' : 'off', '-n', String(this.c.node)]);
    else await this.api(`opt=set&type=power&node${this.c.node}=${on ? 1 : 0}`);
  }
  async on() {
    await this.set(true);
  }
  async off() {
    await this.set(false);
  }
  async status(): Promise<PowerState> {
    if ((this.c.mode ?? 'api') === 'cli') {
      const out = await this.cli(['power', 'status']);
      const m = new RegExp(`node${this.c.node}\\s*:\\s*(on|off)`, 'i').exec(out);
      return m ? (m[1]!.toLowerCase() as PowerState) : 'unknown';
    }
    const body = await this.api('opt=get&type=power');
    const m = new RegExp(`"node${this.c.node}"\\s*:\\s*"?(\\d)`).exec(body);
    return m ? (m[1] === '1' ? 'on' : 'off') : 'unknown';
  }
}

/** 8086.net Cluster HAT: `clusterctrl on|off pN`; status from `clusterctrl status` (`pN:1`). */
export class ClusterHatDriver extends Base {
  readonly name = 'clusterhat';
  constructor(private readonly c: Extract<PowerConfig, { driver: 'clusterhat' }>) {
    super(c);
  }
  private async call(args: string[]): Promise<string> {
    const r = await run([this.c.binary ?? 'clusterctrl', ...args], { timeoutMs: this.timeoutMs });
    if (r.code !== 0) throw fail(`clusterctrl ${args.join(' ')} exited with ${r.code}: ${tail(r.stderr || r.stdout)}.`);
    return r.stdout;
  }
  async on() {
    await this.call(['on', `p${this.c.node}`]);
  }
  async off() {
    await this.call(['off', `p${this.c.node}`]);
  }
  async status(): Promise<PowerState> {
    const m = new RegExp(`^p${this.c.node}:(\\d)`, 'm').exec(await this.call(['status']));
    return m ? (m[1] === '1' ? 'on' : 'off') : 'unknown';
  }
}
