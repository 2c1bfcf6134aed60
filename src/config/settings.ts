// Every setting of `drover serve`, once: its config-file key, environment variable, flag,
// type, default and meaning. The loader, `drover config print` and docs/config.md read this.
import { homedir } from 'node:os';
import { join } from 'node:path';

export type SettingType = 'string' | 'integer' | 'listen' | 'listen-or-off' | 'enum' | 'url';

export interface Setting {
  key: string;
  env: string;
  flag: string;
  type: SettingType;
  values?: readonly string[];
  min?: number;
  max?: number;
  /** A function so defaults that depend on the user (data dir) are computed at load time. */
  default: () => string | number | undefined;
  /** Shown redacted by `config print` and never logged. */
  secret?: boolean;
  description: string;
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export function defaultDataDir(): string {
  if (process.getuid?.() === 0) return '/var/lib/drover';
  const xdg = process.env.XDG_DATA_HOME;
  return join(xdg && xdg.startsWith('/') ? xdg : join(homedir(), '.local', 'share'), 'drover');
}

export const SETTINGS = [
  {
    key: 'dataDir',
    env: 'DROVER_DATA_DIR',
    flag: '--data-dir',
    type: 'string',
    default: defaultDataDir,
    description: 'Where Drover keeps its SQLite database, the initial admin token and (later) images. `/var/lib/drover` as root, else `~/.local/share/drover`.',
  },
  {
    key: 'listen',
    env: 'DROVER_LISTEN',
    flag: '--listen',
    type: 'listen',
    default: () => '0.0.0.0:8080',
    description: 'HOST:PORT of the HTTP API and dashboard. `[::]:8080` for IPv6.',
  },
  {
    key: 'database',
    env: 'DROVER_DATABASE',
    flag: '--database',
    type: 'url',
    default: () => undefined,
    secret: true,
    description: 'Database URL. Unset: the SQLite file `DATA_DIR/drover.db`. `postgres://user:pass@host:5432/db` selects PostgreSQL.',
  },
  {
    key: 'publicUrl',
    env: 'DROVER_PUBLIC_URL',
    flag: '--public-url',
    type: 'url',
    default: () => undefined,
    description: 'The URL devices and people use to reach this controller (rendered into boot files). Unset: derived from the listen address.',
  },
  {
    key: 'logLevel',
    env: 'DROVER_LOG_LEVEL',
    flag: '--log-level',
    type: 'enum',
    values: LOG_LEVELS,
    default: () => 'info',
    description: 'Log level of the structured (pino, JSON lines) log on stdout.',
  },
  {
    key: 'bodyLimit',
    env: 'DROVER_BODY_LIMIT',
    flag: '--body-limit',
    type: 'integer',
    min: 1024,
    max: 64 * 1024 * 1024,
    default: () => 1024 * 1024,
    description: 'Largest JSON request body in bytes; larger ones get DROVER_BODY_TOO_LARGE.',
  },
  {
    key: 'authFailureLimit',
    env: 'DROVER_AUTH_FAILURE_LIMIT',
    flag: '--auth-failure-limit',
    type: 'integer',
    min: 1,
    max: 100000,
    default: () => 10,
    description: 'Failed authentications allowed per client address per window before answering 429.',
  },
  {
    key: 'authFailureWindow',
    env: 'DROVER_AUTH_FAILURE_WINDOW',
    flag: '--auth-failure-window',
    type: 'integer',
    min: 1,
    max: 86400,
    default: () => 60,
    description: 'The window of the auth failure limit, in seconds; a blocked address waits this long.',
  },
  {
    key: 'sessionTtl',
    env: 'DROVER_SESSION_TTL',
    flag: '--session-ttl',
    type: 'integer',
    min: 60,
    max: 90 * 86400,
    default: () => 12 * 3600,
    description: 'Lifetime in seconds of a dashboard login session.',
  },
  {
    key: 'tftpListen',
    env: 'DROVER_TFTP_LISTEN',
    flag: '--tftp-listen',
    type: 'listen-or-off',
    default: () => '0.0.0.0:69',
    description: 'HOST:PORT of the TFTP server that serves the per-device boot trees, or `off`. Port 69 needs root or CAP_NET_BIND_SERVICE; without it Drover starts with TFTP off and says so.',
  },
  {
    key: 'bootPolicy',
    env: 'DROVER_BOOT_POLICY',
    flag: '--boot-policy',
    type: 'enum',
    values: ['default-image', 'known-only'],
    default: () => 'default-image',
    description: '`default-image`: serve the default image to devices nobody accepted yet (they appear as incoming either way); `known-only`: serve boot files only to accepted devices.',
  },
] as const satisfies readonly Setting[];

export type SettingKey = (typeof SETTINGS)[number]['key'];
