// Loads the effective configuration once at start: defaults < config file < DROVER_* env < flags.
// Every value is validated here, so the rest of the program can trust Config.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { DroverError } from '../domain/errors.js';
import { parseRange } from '../netboot/dhcp/leases.js';
import { normalizeOui } from '../netboot/dhcp/ouis.js';
import { isIPv4 } from '../images/nfs-root.js';
import { redactUrl } from '../store/db.js';
import { SETTINGS, type Setting } from './settings.js';

export interface Config {
  dataDir: string;
  listen: { host: string; port: number };
  database: string;
  publicUrl: string | undefined;
  logLevel: string;
  bodyLimit: number;
  authFailureLimit: number;
  authFailureWindow: number;
  sessionTtl: number;
  tftpListen: { host: string; port: number } | null;
  tftpThreads: number;
  bootPolicy: 'default-image' | 'known-only';
  dhcp: {
    interface: string;
    mode: 'proxy' | 'full';
    range: string | undefined;
    leaseTime: number;
    router: string | undefined;
    dns: string[];
    pi3ReplyDelay: number;
    pxeClients: boolean;
  } | null;
  piOuis: string[];
  boot: { tmpfsSize: string; retrySeconds: number; offlineAfterSeconds: number; authorizedKeysFile: string | undefined };
  imageUploadLimit: number;
  imageAgent: 'runtime' | 'agent' | 'off';
  agent: { heartbeatMs: number; rawRetentionHours: number; rollupRetentionDays: number };
  gossipListen: { host: string; port: number } | null;
  webhook: { url: string; secretFile: string | undefined } | null;
  nfs: { exportRoot: string; server: string | undefined; exportsFile: string | null; ganeshaConfig: string | null; reloadCommand: string | null | undefined };
  /** Which file was read, if any. */
  configFile: string | undefined;
  /** Where each value came from, for `config print`. */
  sources: Record<string, 'default' | 'file' | 'env' | 'flag'>;
}

export interface LoadOptions {
  /** Values from command-line flags, keyed by setting key. */
  flags?: Record<string, string | number | undefined>;
  env?: NodeJS.ProcessEnv;
  /** Explicit config file (--config); otherwise DROVER_CONFIG, then the default locations. */
  configFile?: string | undefined;
}

export function defaultConfigFiles(): string[] {
  return process.getuid?.() === 0
    ? ['/etc/drover/config.yaml', '/etc/drover/config.json']
    : [join(homedir(), '.config', 'drover', 'config.yaml'), join(homedir(), '.config', 'drover', 'config.json')];
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new DroverError('DROVER_CONFIG_UNREADABLE', `Cannot read config file ${path}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new DroverError('DROVER_CONFIG_UNREADABLE', `Config file ${path} is not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new DroverError('DROVER_CONFIG_INVALID', `Config file ${path} must hold a mapping of settings.`);
  }
  const known = new Set<string>(SETTINGS.map((s) => s.key));
  for (const key of Object.keys(doc)) {
    if (!known.has(key)) throw new DroverError('DROVER_CONFIG_INVALID', `Unknown setting "${key}" in ${path}; known: ${[...known].join(', ')}.`);
  }
  return doc as Record<string, unknown>;
}

export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]*)):(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`"${value}" is not HOST:PORT`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

function coerce(s: Setting, raw: unknown, origin: string): string | number {
  const fail = (why: string): never => {
    throw new DroverError('DROVER_CONFIG_INVALID', `Setting ${s.key} (${origin}): ${why}.`);
  };
  switch (s.type) {
    case 'integer': {
      const n = typeof raw === 'number' ? raw : /^-?\d+$/.test(String(raw).trim()) ? Number(String(raw).trim()) : NaN;
      if (!Number.isInteger(n)) fail(`"${String(raw)}" is not a whole number`);
      if ((s.min !== undefined && n < s.min) || (s.max !== undefined && n > s.max)) fail(`${n} is outside ${s.min}..${s.max}`);
      return n;
    }
    case 'enum':
      if (!s.values?.includes(String(raw))) fail(`"${String(raw)}" is not one of ${s.values?.join(', ')}`);
      return String(raw);
    case 'listen-or-off':
    case 'listen':
      if (s.type === 'listen-or-off' && String(raw).trim() === 'off') return 'off';
      try {
        parseListen(String(raw));
      } catch (err) {
        fail((err as Error).message);
      }
      return String(raw);
    case 'url':
    case 'string':
      if (typeof raw !== 'string' || raw.trim() === '') fail('must be a non-empty string');
      return String(raw).trim();
  }
}

export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  let file = opts.configFile ?? (env.DROVER_CONFIG || undefined);
  if (file !== undefined && !existsSync(file)) {
    throw new DroverError('DROVER_CONFIG_UNREADABLE', `Config file ${file} does not exist.`);
  }
  file ??= defaultConfigFiles().find((f) => existsSync(f));
  const fromFile = file ? readConfigFile(file) : {};

  const values: Record<string, string | number | undefined> = {};
  const sources: Config['sources'] = {};
  for (const s of SETTINGS as readonly Setting[]) {
    let value: string | number | undefined = s.default();
    let source: Config['sources'][string] = 'default';
    if (fromFile[s.key] !== undefined && fromFile[s.key] !== null) {
      value = coerce(s, fromFile[s.key], `file ${file}`);
      source = 'file';
    }
    const e = env[s.env];
    if (e !== undefined && e !== '') {
      value = coerce(s, e, `env ${s.env}`);
      source = 'env';
    }
    const f = opts.flags?.[s.key];
    if (f !== undefined) {
      value = coerce(s, f, `flag ${s.flag}`);
      source = 'flag';
    }
    values[s.key] = value;
    sources[s.key] = source;
  }

  const dataDir = resolve(String(values.dataDir));
  const database = (values.database as string | undefined) ?? join(dataDir, 'drover.db');
  if (values.publicUrl !== undefined) {
    try {
      const u = new URL(String(values.publicUrl));
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
    } catch {
      throw new DroverError('DROVER_CONFIG_INVALID', `Setting publicUrl: "${values.publicUrl}" is not an http(s) URL.`);
    }
  }
  if (!/^postgres(ql)?:\/\//i.test(database) && !isAbsolute(database.replace(/^(sqlite|file):(\/\/)?/i, '')) && database !== ':memory:') {
    throw new DroverError('DROVER_CONFIG_INVALID', `Setting database: "${redactUrl(database)}" must be postgres://… or an absolute SQLite file path.`);
  }
  return {
    dataDir,
    listen: parseListen(String(values.listen)),
    database,
    publicUrl: values.publicUrl as string | undefined,
    logLevel: String(values.logLevel),
    bodyLimit: Number(values.bodyLimit),
    authFailureLimit: Number(values.authFailureLimit),
    authFailureWindow: Number(values.authFailureWindow),
    sessionTtl: Number(values.sessionTtl),
    tftpListen: values.tftpListen === 'off' ? null : parseListen(String(values.tftpListen)),
    tftpThreads: Number(values.tftpThreads),
    bootPolicy: values.bootPolicy as Config['bootPolicy'],
    dhcp: dhcpConfig(values),
    piOuis: listOf(values.piOuis).map((o) => {
      try {
        return normalizeOui(o);
      } catch {
        throw new DroverError('DROVER_CONFIG_INVALID', `Setting piOuis: "${o}" is not a MAC prefix like b8:27:eb.`);
      }
    }),
    boot: {
      tmpfsSize: tmpfsSize(String(values.bootTmpfsSize)),
      retrySeconds: Number(values.bootRetry),
      offlineAfterSeconds: Number(values.bootOfflineAfter),
      authorizedKeysFile: values.authorizedKeysFile as string | undefined,
    },
    imageUploadLimit: Number(values.imageUploadLimit),
    imageAgent: values.imageAgent as Config['imageAgent'],
    nfs: nfsConfig(values, dataDir),
    agent: { heartbeatMs: Number(values.agentHeartbeat) * 1000, rawRetentionHours: Number(values.metricsRetention), rollupRetentionDays: Number(values.metricsRollupRetention) },
    gossipListen: values.gossipListen === 'off' ? null : parseListen(String(values.gossipListen)),
    webhook: webhookConfig(values),
    configFile: file,
    sources,
  };
}

function webhookConfig(values: Record<string, unknown>): Config['webhook'] {
  const url = values.webhookUrl as string | undefined;
  const secretFile = values.webhookSecretFile as string | undefined;
  if (url === undefined) {
    if (secretFile !== undefined) throw new DroverError('DROVER_CONFIG_INVALID', 'Setting webhookSecretFile needs webhookUrl.');
    return null;
  }
  if (!/^https?:\/\//.test(url)) throw new DroverError('DROVER_CONFIG_INVALID', `Setting webhookUrl: "${url}" is not an http(s) URL.`);
  if (secretFile !== undefined && !isAbsolute(secretFile)) throw new DroverError('DROVER_CONFIG_INVALID', `Setting webhookSecretFile: "${secretFile}" is not an absolute path.`);
  return { url, secretFile };
}

function nfsConfig(values: Record<string, unknown>, dataDir: string): Config['nfs'] {
  const server = values.nfsServer as string | undefined;
  if (server !== undefined && !isIPv4(server)) throw new DroverError('DROVER_CONFIG_INVALID', `Setting nfsServer: "${server}" is not an IPv4 address.`);
  const path = (key: string): string | null => {
    const v = values[key] as string | undefined;
    if (v === undefined || v === 'off' || v === '') return null;
    if (!isAbsolute(v)) throw new DroverError('DROVER_CONFIG_INVALID', `Setting ${key}: "${v}" is not an absolute path.`);
    return v;
  };
  const reload = values.nfsReloadCommand as string | undefined;
  return {
    exportRoot: path('nfsExportRoot') ?? join(dataDir, 'nfs'),
    server,
    exportsFile: path('nfsExportsFile'),
    ganeshaConfig: path('nfsGaneshaConfig'),
    // undefined: the default (exportfs -ra when there is an exports file and exportfs exists).
    reloadCommand: reload === 'off' ? null : reload || undefined,
  };
}

function tmpfsSize(v: string): string {
  if (!/^(\d{1,3}%|\d+[kKmMgG]?)$/.test(v) || v === '0' || v === '0%') throw new DroverError('DROVER_CONFIG_INVALID', `Setting bootTmpfsSize: "${v}" is not a tmpfs size like 50% or 2G.`);
  return v;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

function listOf(v: string | number | undefined): string[] {
  return v === undefined ? [] : String(v).split(',').map((x) => x.trim()).filter(Boolean);
}

function dhcpConfig(values: Record<string, string | number | undefined>): Config['dhcp'] {
  if (values.dhcpInterface === undefined) return null;
  const iface = String(values.dhcpInterface);
  if (!/^[\w.:@-]{1,15}$/.test(iface)) throw new DroverError('DROVER_CONFIG_INVALID', `Setting dhcpInterface: "${iface}" is not an interface name.`);
  const mode = values.dhcpMode as 'proxy' | 'full';
  const range = values.dhcpRange as string | undefined;
  if (mode === 'full') {
    if (!range) throw new DroverError('DROVER_CONFIG_INVALID', 'Setting dhcpRange: full DHCP mode needs an address range (--dhcp-range FIRST-LAST).');
    try {
      parseRange(range);
    } catch (err) {
      throw new DroverError('DROVER_CONFIG_INVALID', `Setting dhcpRange: ${(err as Error).message}.`);
    }
  }
  const router = values.dhcpRouter as string | undefined;
  if (router && !IPV4.test(router)) throw new DroverError('DROVER_CONFIG_INVALID', `Setting dhcpRouter: "${router}" is not an IPv4 address.`);
  const dns = listOf(values.dhcpDns);
  for (const d of dns) if (!IPV4.test(d)) throw new DroverError('DROVER_CONFIG_INVALID', `Setting dhcpDns: "${d}" is not an IPv4 address.`);
  return { interface: iface, mode, range, leaseTime: Number(values.dhcpLeaseTime), router, dns, pi3ReplyDelay: Number(values.pi3ReplyDelay), pxeClients: values.pxeClients === 'on' };
}

/** The effective configuration as shown to people: secrets redacted, sources named. */
export function describeConfig(c: Config): Record<string, { value: unknown; source: string }> {
  const host = c.listen.host.includes(':') ? `[${c.listen.host}]` : c.listen.host;
  const shown: Record<string, unknown> = {
    dataDir: c.dataDir,
    listen: `${host}:${c.listen.port}`,
    database: redactUrl(c.database),
    publicUrl: c.publicUrl ?? null,
    logLevel: c.logLevel,
    bodyLimit: c.bodyLimit,
    authFailureLimit: c.authFailureLimit,
    authFailureWindow: c.authFailureWindow,
    sessionTtl: c.sessionTtl,
    tftpListen: c.tftpListen ? `${c.tftpListen.host}:${c.tftpListen.port}` : 'off',
    tftpThreads: c.tftpThreads,
    bootPolicy: c.bootPolicy,
    dhcpInterface: c.dhcp?.interface ?? null,
    dhcpMode: c.dhcp ? c.dhcp.mode : null,
    dhcpRange: c.dhcp?.range ?? null,
    pxeClients: c.dhcp ? (c.dhcp.pxeClients ? 'on' : 'off') : null,
    piOuis: c.piOuis.join(',') || null,
    bootTmpfsSize: c.boot.tmpfsSize,
    bootRetry: c.boot.retrySeconds,
    bootOfflineAfter: c.boot.offlineAfterSeconds,
    authorizedKeysFile: c.boot.authorizedKeysFile ?? null,
    imageUploadLimit: c.imageUploadLimit,
    imageAgent: c.imageAgent,
    nfsExportRoot: c.nfs.exportRoot,
    nfsServer: c.nfs.server ?? null,
    nfsExportsFile: c.nfs.exportsFile ?? 'off',
    nfsGaneshaConfig: c.nfs.ganeshaConfig,
    nfsReloadCommand: c.nfs.reloadCommand === null ? 'off' : (c.nfs.reloadCommand ?? null),
    agentHeartbeat: c.agent.heartbeatMs / 1000,
    metricsRetention: c.agent.rawRetentionHours,
    metricsRollupRetention: c.agent.rollupRetentionDays,
    gossipListen: c.gossipListen ? `${c.gossipListen.host}:${c.gossipListen.port}` : 'off',
    webhookUrl: c.webhook?.url ?? null,
    webhookSecretFile: c.webhook?.secretFile ?? null,
  };
  return Object.fromEntries(Object.entries(shown).map(([k, v]) => [k, { value: v, source: c.sources[k] ?? 'default' }]));
}
