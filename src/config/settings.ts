// Every setting of `drover serve`, once: its config-file key, environment variable, flag,
// type, default and meaning. The loader, `drover config print` and docs/config.md read this.
import { availableParallelism, homedir } from 'node:os';
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
    key: 'tftpThreads',
    env: 'DROVER_TFTP_THREADS',
    flag: '--tftp-threads',
    type: 'integer',
    min: 0,
    max: 64,
    default: () => Math.min(4, availableParallelism()),
    description: 'Threads of the native TFTP transfer engine (one per core is best; 0 runs transfers in JavaScript on the main thread, as happens when the native addon is not built). Default: the number of cores, at most 4.',
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
  {
    key: 'dhcpInterface',
    env: 'DROVER_DHCP_INTERFACE',
    flag: '--dhcp-interface',
    type: 'string',
    default: () => undefined,
    description: 'The one network interface on which Drover answers DHCP (e.g. `eth0`). Unset: no DHCP at all. Drover never answers on any other interface.',
  },
  {
    key: 'dhcpMode',
    env: 'DROVER_DHCP_MODE',
    flag: '--dhcp-mode',
    type: 'enum',
    values: ['proxy', 'full'],
    default: () => 'proxy',
    description: '`proxy`: add Pi boot information beside the LAN\'s own DHCP server (never hands out addresses). `full`: also lease addresses from `dhcpRange` (only on an isolated cluster network with no other DHCP server).',
  },
  {
    key: 'dhcpRange',
    env: 'DROVER_DHCP_RANGE',
    flag: '--dhcp-range',
    type: 'string',
    default: () => undefined,
    description: 'Full mode: the addresses to lease, `FIRST-LAST` (e.g. `10.42.0.100-10.42.0.250`), inside the interface\'s subnet.',
  },
  {
    key: 'dhcpLeaseTime',
    env: 'DROVER_DHCP_LEASE_TIME',
    flag: '--dhcp-lease-time',
    type: 'integer',
    min: 120,
    max: 30 * 86400,
    default: () => 3600,
    description: 'Full mode: lease time in seconds. Leases are kept in `DATA_DIR/dhcp-leases.json`.',
  },
  {
    key: 'dhcpRouter',
    env: 'DROVER_DHCP_ROUTER',
    flag: '--dhcp-router',
    type: 'string',
    default: () => undefined,
    description: 'Full mode: the default gateway to hand out (option 3). Unset: none.',
  },
  {
    key: 'dhcpDns',
    env: 'DROVER_DHCP_DNS',
    flag: '--dhcp-dns',
    type: 'string',
    default: () => undefined,
    description: 'Full mode: comma-separated DNS servers to hand out (option 6).',
  },
  {
    key: 'pxeClients',
    env: 'DROVER_PXE_CLIENTS',
    flag: '--pxe-clients',
    type: 'enum',
    values: ['off', 'on'],
    default: () => 'off',
    description: 'Also answer standard PXE and iPXE clients that are not Pis (PCs, VMs) on the DHCP interface: PXE ROMs get iPXE by architecture (`undionly.kpxe`, `ipxe.efi`, `ipxe-i386.efi`, `ipxe-arm64.efi`, served from the default image\'s tree, e.g. copied from Debian\'s `ipxe` package), iPXE gets the script `/boot/v1/ipxe`.',
  },
  {
    key: 'pi3ReplyDelay',
    env: 'DROVER_PI3_REPLY_DELAY',
    flag: '--pi3-reply-delay',
    type: 'integer',
    min: 0,
    max: 4000,
    default: () => 1000,
    description: 'Proxy mode: milliseconds to wait before answering a Pi 3 boot ROM, which can miss a boot OFFER that arrives before the LAN\'s address OFFER.',
  },
  {
    key: 'piOuis',
    env: 'DROVER_PI_OUIS',
    flag: '--pi-ouis',
    type: 'string',
    default: () => undefined,
    description: 'Extra Raspberry Pi MAC prefixes, comma-separated (e.g. `88:a2:9e,aa:bb:cc`), added to the built-in list in data/raspberry-pi-ouis.json.',
  },
  {
    key: 'bootTmpfsSize',
    env: 'DROVER_BOOT_TMPFS_SIZE',
    flag: '--boot-tmpfs-size',
    type: 'string',
    default: () => '50%',
    description: 'Size of the tmpfs that holds a RAM-booted device\'s writes (mount `size=` syntax: `50%`, `2G`). A group\'s `tmpfsSize` setting overrides it.',
  },
  {
    key: 'bootRetry',
    env: 'DROVER_BOOT_RETRY',
    flag: '--boot-retry',
    type: 'integer',
    min: 1,
    max: 86400,
    default: () => 60,
    description: 'Seconds a device whose boot failed shows the error on its console before it reboots and tries again.',
  },
  {
    key: 'bootOfflineAfter',
    env: 'DROVER_BOOT_OFFLINE_AFTER',
    flag: '--boot-offline-after',
    type: 'integer',
    min: 1,
    max: 86400,
    default: () => 30,
    description: 'Seconds an SD-stub device keeps trying to reach the controller before it boots its cached last-known-good image.',
  },
  {
    key: 'authorizedKeysFile',
    env: 'DROVER_AUTHORIZED_KEYS_FILE',
    flag: '--authorized-keys-file',
    type: 'string',
    default: () => undefined,
    description: 'An authorized_keys file whose keys every device gets for root (a group\'s `authorizedKeys` setting adds more).',
  },
  {
    key: 'nfsExportRoot',
    env: 'DROVER_NFS_EXPORT_ROOT',
    flag: '--nfs-export-root',
    type: 'string',
    default: () => undefined,
    description: 'Boot mode `nfs`: where OS image roots are unpacked (once per image) and device layers kept; default `DATA_DIR/nfs`. Every path under it is exported only to the device that uses it.',
  },
  {
    key: 'nfsServer',
    env: 'DROVER_NFS_SERVER',
    flag: '--nfs-server',
    type: 'string',
    default: () => undefined,
    description: 'Boot mode `nfs`: the IPv4 address devices mount their root from; default the address in the controller URL devices use.',
  },
  {
    key: 'nfsExportsFile',
    env: 'DROVER_NFS_EXPORTS_FILE',
    flag: '--nfs-exports-file',
    type: 'string',
    default: () => '/etc/exports.d/drover.exports',
    description: 'Boot mode `nfs`: the exports(5) file Drover writes for the kernel NFS server (`off`: none).',
  },
  {
    key: 'nfsGaneshaConfig',
    env: 'DROVER_NFS_GANESHA_CONFIG',
    flag: '--nfs-ganesha-config',
    type: 'string',
    default: () => undefined,
    description: 'Boot mode `nfs`: also write this nfs-ganesha configuration file (FSAL_VFS, NFSv4, one EXPORT per path and device) for a userspace NFS server.',
  },
  {
    key: 'nfsReloadCommand',
    env: 'DROVER_NFS_RELOAD_COMMAND',
    flag: '--nfs-reload-command',
    type: 'string',
    default: () => undefined,
    description: 'Boot mode `nfs`: a shell command run after the export files change (default `exportfs -ra` when the exports file is on and exportfs is installed; for ganesha e.g. `pkill -HUP ganesha.nfsd`; `off`: none).',
  },
  {
    key: 'imageUploadLimit',
    env: 'DROVER_IMAGE_UPLOAD_LIMIT',
    flag: '--image-upload-limit',
    type: 'integer',
    min: 1024 * 1024,
    max: 1024 ** 4,
    default: () => 64 * 1024 ** 3,
    description: 'Largest OS image upload (`POST /api/v1/images`) in bytes; larger ones get DROVER_BODY_TOO_LARGE and nothing is stored.',
  },
] as const satisfies readonly Setting[];

export type SettingKey = (typeof SETTINGS)[number]['key'];
