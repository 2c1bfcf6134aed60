// The agent's configuration: /etc/drover/agent.json (written by the controller into the device's
// overlay, mode 0600) with flags on top. Everything is checked here, once, so the rest of the
// agent can trust it and a bad setup fails at start with a message that says what to fix.
import { readFile, stat } from 'node:fs/promises';
import { AGENT_WS_PATH } from './protocol.js';

export const DEFAULT_CONFIG_PATH = '/etc/drover/agent.json';
export const DEFAULT_STATE_DIR = '/run/drover-agent';
export const DEFAULT_HEARTBEAT_MS = 10_000;
/** memberlist's port; the controller's `--gossip-listen` uses the same by convention. */
export const DEFAULT_GOSSIP_PORT = 7946;
const MIN_HEARTBEAT_MS = 100;
const MAX_HEARTBEAT_MS = 3_600_000;

export interface AgentConfig {
  /** Controller base URL, http(s)://host:port[/prefix]. */
  server: string;
  /** Device id (what the token belongs to). */
  node: string;
  /** Board serial, informational. */
  serial: string | null;
  /** Device token; never logged. */
  token: string;
  /** Buffer and stream id live here. */
  stateDir: string;
  /** Sampling interval until the controller's welcome says otherwise. */
  heartbeatMs: number;
  /** /proc, /sys and etc/drover/image-id are read under this root (tests use fixtures). */
  procRoot: string;
  /** The gossip member (null = off): where it binds, what it advertises, mDNS on one interface. */
  gossip: GossipConfig | null;
  /** The file the config came from, or null when flags gave everything. */
  configPath: string | null;
  /** Non-fatal findings worth a log line (e.g. a world-readable token file). */
  warnings: string[];
}

export interface GossipConfig {
  bindAddr: string;
  bindPort: number;
  advertiseAddr?: string;
  advertisePort?: number;
  /** IPv4 address of the interface mDNS may use. */
  mdnsInterface?: string;
}

/** Flag values as the CLI gives them (strings), or typed values from code. */
export interface ConfigOverrides {
  config?: string | undefined;
  server?: string | undefined;
  tokenFile?: string | undefined;
  node?: string | undefined;
  stateDir?: string | undefined;
  heartbeatMs?: number | string | undefined;
  procRoot?: string | undefined;
  /** `host:port` or `off`. */
  gossip?: string | undefined;
  /** `addr` or `addr:port`. */
  gossipAdvertise?: string | undefined;
  /** IPv4 address of one interface. */
  gossipMdns?: string | undefined;
}

export class AgentConfigError extends Error {
  override readonly name = 'AgentConfigError';
}

interface FileShape {
  server?: unknown;
  node?: unknown;
  serial?: unknown;
  token?: unknown;
  gossip?: unknown;
}

export async function loadAgentConfig(o: ConfigOverrides = {}): Promise<AgentConfig> {
  const warnings: string[] = [];
  const explicit = o.config !== undefined;
  const path = o.config ?? DEFAULT_CONFIG_PATH;
  // Flags alone are enough (a hand-installed agent); then a missing default file is fine.
  const flagsSuffice = o.server !== undefined && o.node !== undefined && o.tokenFile !== undefined;

  let file: FileShape = {};
  let configPath: string | null = null;
  let text: string | null = null;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' || explicit || !flagsSuffice) {
      const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable (the agent runs as root)' : `cannot be read (${code ?? String(err)})`;
      throw new AgentConfigError(
        `The agent config ${path} ${why}. The controller writes it into the device overlay at boot; on a hand-installed device pass --server, --node and --token-file.`,
      );
    }
  }
  if (text !== null) {
    configPath = path;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new AgentConfigError(`The agent config ${path} is not valid JSON (${(err as Error).message}).`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new AgentConfigError(`The agent config ${path} must be a JSON object like {"server": "http://host:port", "node": "…", "serial": "…", "token": "…"}.`);
    }
    file = parsed as FileShape;
    await checkPrivate(path, warnings);
  }

  let token: unknown = file.token;
  if (o.tokenFile !== undefined) {
    try {
      token = (await readFile(o.tokenFile, 'utf8')).trim();
    } catch (err) {
      throw new AgentConfigError(`The token file ${o.tokenFile} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)}).`);
    }
    await checkPrivate(o.tokenFile, warnings);
  }
  const where = configPath ?? 'the flags';
  if (typeof token !== 'string' || token.trim() === '' || /\s/.test(token.trim())) {
    throw new AgentConfigError(`No device token: ${where} has no "token" (a non-empty string without spaces); pass --token-file or re-image the device.`);
  }

  const server = o.server ?? file.server;
  if (typeof server !== 'string' || server === '') throw new AgentConfigError(`No controller URL: ${where} has no "server"; pass --server http://host:port.`);
  wsUrl(server); // validates

  const node = o.node ?? file.node;
  if (typeof node !== 'string' || node === '' || node.length > 100) throw new AgentConfigError(`No device id: ${where} has no "node" (1–100 characters); pass --node.`);

  const serial = file.serial === undefined || file.serial === null ? null : String(file.serial);

  let heartbeatMs = DEFAULT_HEARTBEAT_MS;
  if (o.heartbeatMs !== undefined) {
    heartbeatMs = typeof o.heartbeatMs === 'number' ? o.heartbeatMs : Number(o.heartbeatMs);
    if (!Number.isInteger(heartbeatMs) || heartbeatMs < MIN_HEARTBEAT_MS || heartbeatMs > MAX_HEARTBEAT_MS) {
      throw new AgentConfigError(`--heartbeat-ms must be a whole number of milliseconds between ${MIN_HEARTBEAT_MS} and ${MAX_HEARTBEAT_MS}, not "${String(o.heartbeatMs)}".`);
    }
  }

  const stateDir = o.stateDir ?? DEFAULT_STATE_DIR;
  const procRoot = o.procRoot ?? '/';
  if (stateDir === '' || procRoot === '') throw new AgentConfigError('--state-dir and --proc-root must not be empty.');

  const gossip = gossipConfig(file.gossip, o, where);
  return { server, node, serial, token: token.trim(), stateDir, heartbeatMs, procRoot, gossip, configPath, warnings };
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function hostPort(s: string, what: string, portRequired: boolean): { addr: string; port?: number } {
  const m = /^([^:\s]+)(?::(\d{1,5}))?$/.exec(s.trim());
  const port = m?.[2] !== undefined ? Number(m[2]) : undefined;
  if (!m || !IPV4.test(m[1]!) || (port !== undefined && port > 65535) || (portRequired && port === undefined)) {
    throw new AgentConfigError(`${what} must be ${portRequired ? 'an IPv4 address and port, like 0.0.0.0:7946' : 'an IPv4 address with an optional port, like 192.0.2.7 or 192.0.2.7:7946'}, not "${s}".`);
  }
  return port === undefined ? { addr: m[1]! } : { addr: m[1]!, port };
}

/** Gossip from the file's "gossip" (false or {listen, advertise, mdns}) with flags on top; on by default. */
function gossipConfig(fileValue: unknown, o: ConfigOverrides, where: string): GossipConfig | null {
  let listen: string | undefined;
  let advertise: string | undefined;
  let mdns: string | undefined;
  let off = false;
  if (fileValue === false) off = true;
  else if (fileValue !== undefined && fileValue !== null) {
    if (typeof fileValue !== 'object' || Array.isArray(fileValue)) throw new AgentConfigError(`"gossip" in ${where} must be false or an object like {"listen": "0.0.0.0:7946", "advertise": "192.0.2.7", "mdns": "192.0.2.7"}.`);
    const g = fileValue as Record<string, unknown>;
    for (const k of Object.keys(g)) if (!['listen', 'advertise', 'mdns'].includes(k)) throw new AgentConfigError(`"gossip.${k}" in ${where} is not a setting; use listen, advertise or mdns.`);
    for (const k of ['listen', 'advertise', 'mdns'] as const) if (g[k] !== undefined && typeof g[k] !== 'string') throw new AgentConfigError(`"gossip.${k}" in ${where} must be a string.`);
    listen = g.listen as string | undefined;
    advertise = g.advertise as string | undefined;
    mdns = g.mdns as string | undefined;
  }
  if (o.gossip !== undefined) {
    off = o.gossip.trim() === 'off';
    listen = off ? undefined : o.gossip;
  }
  if (o.gossipAdvertise !== undefined) advertise = o.gossipAdvertise;
  if (o.gossipMdns !== undefined) mdns = o.gossipMdns;
  if (off) return null;
  const l = hostPort(listen ?? `0.0.0.0:${DEFAULT_GOSSIP_PORT}`, '--gossip (gossip.listen)', true);
  const out: GossipConfig = { bindAddr: l.addr, bindPort: l.port! };
  if (advertise !== undefined) {
    const a = hostPort(advertise, '--gossip-advertise (gossip.advertise)', false);
    out.advertiseAddr = a.addr;
    if (a.port !== undefined) out.advertisePort = a.port;
  }
  if (mdns !== undefined) {
    if (!IPV4.test(mdns.trim())) throw new AgentConfigError(`--gossip-mdns (gossip.mdns) must be the IPv4 address of the one interface mDNS may use, not "${mdns}".`);
    out.mdnsInterface = mdns.trim();
  }
  return out;
}

/** The agent endpoint for a controller base URL: http→ws, https→wss, plus AGENT_WS_PATH. */
export function wsUrl(server: string): string {
  let u: URL;
  try {
    u = new URL(server);
  } catch {
    throw new AgentConfigError(`The controller URL "${server}" is not a URL; expected http://host:port.`);
  }
  const scheme = { 'http:': 'ws:', 'https:': 'wss:', 'ws:': 'ws:', 'wss:': 'wss:' }[u.protocol];
  if (!scheme) throw new AgentConfigError(`The controller URL "${server}" must start with http://, https://, ws:// or wss://.`);
  u.protocol = scheme;
  u.pathname = u.pathname.replace(/\/+$/, '') + AGENT_WS_PATH;
  u.search = '';
  u.hash = '';
  return u.toString();
}

/** The token is a secret: say so when others can read the file holding it. */
async function checkPrivate(path: string, warnings: string[]): Promise<void> {
  try {
    const st = await stat(path);
    if ((st.mode & 0o077) !== 0) warnings.push(`${path} is readable by others (mode ${(st.mode & 0o777).toString(8)}); it holds the device token, make it 0600.`);
  } catch {
    /* it was just read; a race is not worth an error */
  }
}
