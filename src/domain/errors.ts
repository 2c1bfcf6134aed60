// The one error catalogue. Every failure a person or script can see has a stable code here,
// an HTTP status, a message and a fix; docs/errors.md is generated from this table and a test
// fails when they drift apart.

export interface ErrorSpec {
  /** HTTP status for API answers; CLI-only and startup errors use 500 as a placeholder. */
  status: number;
  message: string;
  fix: string;
  /** Where the error shows up, for the docs. */
  where: 'api' | 'cli' | 'startup' | 'any';
}

const spec = (status: number, where: ErrorSpec['where'], message: string, fix: string): ErrorSpec => ({
  status,
  where,
  message,
  fix,
});

export const ERRORS = {
  // auth
  DROVER_AUTH_MISSING: spec(401, 'api', 'No bearer token was sent.', 'Send `Authorization: Bearer <token>`; use `drover login` or DROVER_TOKEN for the CLI.'),
  DROVER_AUTH_INVALID: spec(401, 'api', 'The token is unknown, revoked or expired.', 'Create a new token with `drover token create` or log in again.'),
  DROVER_AUTH_FORBIDDEN: spec(403, 'api', 'This token may not do that.', 'Use a token whose role allows the action (viewer reads, operator acts on devices, admin manages tokens and users).'),
  DROVER_AUTH_RATE_LIMITED: spec(429, 'api', 'Too many failed authentication attempts from this address.', 'Wait for the time in the Retry-After header, then retry with a valid token or password.'),
  DROVER_LOGIN_FAILED: spec(401, 'api', 'Unknown user name or wrong password.', 'Check the user name and password; an admin can reset it with `drover user passwd`.'),
  // request shape
  DROVER_VALIDATION: spec(400, 'api', 'The request does not match the schema.', 'Compare the request with the OpenAPI document at /api/v1/openapi.json; the message names the field.'),
  DROVER_BAD_JSON: spec(400, 'api', 'The request body is not valid JSON.', 'Send a well-formed JSON body with `Content-Type: application/json`.'),
  DROVER_BODY_TOO_LARGE: spec(413, 'api', 'The request body is larger than the server accepts.', 'Send a smaller body, or raise `bodyLimit` in the server config if this is intended.'),
  DROVER_UNSUPPORTED_MEDIA_TYPE: spec(415, 'api', 'The request body has a content type this route does not accept.', 'Send `Content-Type: application/json`.'),
  DROVER_ROUTE_NOT_FOUND: spec(404, 'api', 'No such route.', 'Check the path and method against /api/v1/openapi.json.'),
  DROVER_INVALID_CURSOR: spec(400, 'api', 'The paging cursor is malformed.', 'Pass back the `nextCursor` value from the previous page unchanged.'),
  // devices
  DROVER_DEVICE_NOT_FOUND: spec(404, 'api', 'No device matches that id, serial, MAC or hostname.', 'List devices with `drover node ls` and use one of the ids shown.'),
  DROVER_DEVICE_EXISTS: spec(409, 'api', 'A device with that serial or MAC address already exists.', 'Use the existing device (`drover node show <serial>`) or retire it first.'),
  DROVER_DEVICE_INVALID_TRANSITION: spec(409, 'api', 'The device is not in a state that allows this action.', 'Check the device state with `drover node show`; e.g. only incoming devices can be rejected.'),
  DROVER_INVALID_SERIAL: spec(400, 'api', 'The serial number is not valid.', 'Use the Pi serial as 8 or 16 hex digits (as in /proc/cpuinfo or the TFTP prefix).'),
  DROVER_INVALID_MAC: spec(400, 'api', 'A MAC address is not valid.', 'Write MAC addresses as six hex pairs, e.g. dc:a6:32:01:36:c2.'),
  DROVER_INVALID_LABEL: spec(400, 'api', 'A label key or value is not valid.', 'Label keys are 1-63 characters of a-z, 0-9, ".", "_", "-", "/" starting with a letter or digit; values are at most 253 printable characters.'),
  DROVER_INVALID_HOSTNAME: spec(400, 'api', 'The hostname is not a valid DNS label.', 'Use 1-63 characters of a-z, 0-9 and "-", not starting or ending with "-".'),
  // groups, images
  DROVER_GROUP_NOT_FOUND: spec(404, 'api', 'No group matches that id or name.', 'List groups with `drover group ls`.'),
  DROVER_GROUP_EXISTS: spec(409, 'api', 'A group with that name already exists.', 'Pick another name or update the existing group.'),
  DROVER_GROUP_NOT_EMPTY: spec(409, 'api', 'The group still has devices.', 'Move its devices to another group (`drover node assign --group`) before deleting it.'),
  DROVER_IMAGE_NOT_FOUND: spec(404, 'api', 'No image matches that id or name.', 'List images with `drover image ls`.'),
  DROVER_IMAGE_INVALID: spec(400, 'api', 'The image source is not usable.', 'The message says what is missing; a boot directory needs config.txt and a kernel*.img at its top level.'),
  DROVER_IMAGE_CORRUPT: spec(400, 'api', 'The image file is damaged: its compression or a filesystem structure does not check out.', 'Download the image again and compare its checksum with the publisher\'s; the message names the part that failed (e.g. a truncated .xz).'),
  DROVER_IMAGE_FORMAT: spec(415, 'api', 'The file is not an OS image Drover can read.', 'Give a whole-disk image: .img, .img.xz, .img.gz or a .zip holding one .img.'),
  DROVER_IMAGE_NO_BOOT: spec(400, 'api', 'The image has no FAT boot partition.', 'Use a Raspberry Pi OS style image: an MBR or GPT disk with a FAT boot partition and an ext4 root.'),
  DROVER_IMAGE_NO_ROOT: spec(400, 'api', 'The image has no ext4 root partition.', 'Use an image whose root filesystem is ext4 (btrfs, xfs and f2fs roots are not supported).'),
  DROVER_IMAGE_NO_KERNEL: spec(400, 'api', 'The image has no kernel Drover can boot.', 'The boot partition needs kernel*.img with its module tree under /lib/modules in the root.'),
  DROVER_IMAGE_UNSUPPORTED: spec(400, 'api', 'The image uses a filesystem feature Drover cannot read.', 'The message names the feature; rebuild the root without it (e.g. `tune2fs -O ^inline_data`) or report it.'),
  DROVER_IMAGE_IN_USE: spec(409, 'api', 'The image is still assigned or is the default image.', 'Assign another image to the devices and groups that use it (`drover image show` lists them), then remove it.'),
  DROVER_INGEST_NOT_FOUND: spec(404, 'api', 'No image ingest has that id.', 'List running ingests with `drover image ls --ingests`; finished ones are in the event log.'),
  DROVER_IMAGE_EXISTS: spec(409, 'api', 'An image with that name and tag already exists.', 'Pick another tag (`--name NAME:TAG`) or remove the old image first.'),
  DROVER_BOOT_FILE_NOT_FOUND: spec(404, 'api', 'The boot tree has no such file for this device.', 'Check the image\'s files (`drover image show IMAGE`) and that the device is not retired.'),
  DROVER_NFS_PREPARING: spec(503, 'api', 'The NFS root of this image is still being unpacked for its first NFS boot.', 'Nothing to do: the device retries its config request with back-off and boots once the unpack is done.'),
  DROVER_NFS_FAILED: spec(500, 'api', 'The NFS root could not be prepared (unpack, device layer, exports or the NFS server reload failed).', 'Read the message and the controller log; check nfsExportRoot, nfsExportsFile, nfsReloadCommand and that the NFS server (kernel nfsd or nfs-ganesha) runs.'),
  DROVER_RUNTIME_UNREACHABLE: spec(502, 'api', 'The npm registry could not be reached for the Node.js runtime the image needs, and no fitting runtime is cached.', 'Check `npm config get registry` on the controller host and that the host reaches it (proxy, DNS); once one ingest has fetched the runtime, later ones reuse DATA/runtimes offline. Or ingest without the agent, or use an image that has Node.js 18 or newer.'),
  DROVER_RUNTIME_NOT_FOUND: spec(502, 'api', 'The npm registry has no Node.js runtime package or release that fits the image.', 'The message names the package and the majors the registry has; pick an available major for the runtime, or use an image that has Node.js 18 or newer.'),
  DROVER_RUNTIME_INTEGRITY: spec(502, 'api', 'The downloaded Node.js runtime does not match the integrity (sha512) the registry publishes for it.', 'Retry the ingest; if it persists, the registry or a proxy serves altered files: check `npm config get registry` on the controller host. Nothing was cached.'),
  DROVER_RUNTIME_CORRUPT: spec(502, 'api', 'The Node.js runtime tarball is truncated or damaged.', 'Retry the ingest (a cut download is fetched again); nothing was cached. If it persists, check the network path to the npm registry configured on the controller host.'),
  DROVER_NO_DEFAULT_IMAGE: spec(404, 'api', 'No image is assigned to the device, its group, or as the default.', 'Assign one (`drover node assign NODE IMAGE`) or set a default (`drover image default IMAGE`).'),
  // agent, jobs, health, power
  DROVER_AGENT_OFFLINE: spec(409, 'api', 'The device has no connected agent, so the job cannot be sent.', 'Check that drover-agent.service runs on the device (`journalctl -u drover-agent`) and can reach the controller; `drover node show` gives its last heartbeat.'),
  DROVER_AGENT_PROTOCOL: spec(400, 'api', 'The agent sent a message that does not follow the agent protocol.', 'Run an agent of the same Drover version as the controller (re-image the device or update the image).'),
  DROVER_JOB_NOT_FOUND: spec(404, 'api', 'No job has that id.', 'List the device\'s jobs with `drover node jobs NODE`; finished jobs are also in the event log.'),
  DROVER_JOB_INVALID: spec(400, 'api', 'The job parameters are not valid for its kind.', 'See the message; e.g. exec needs `argv` or `sh`, write-file needs an absolute `path`.'),
  DROVER_POWER_NOT_CONFIGURED: spec(409, 'api', 'The device has no power driver configured.', 'Set `power` in the device\'s or its group\'s settings, e.g. `{"driver":"exec","command":["/usr/local/bin/ppi"]}`; docs/power.md lists the drivers.'),
  DROVER_POWER_CONFIG: spec(400, 'api', 'The power driver configuration is not valid.', 'The message names the field; docs/power.md gives every driver\'s settings.'),
  DROVER_POWER_FAILED: spec(502, 'api', 'The power driver could not carry out the action.', 'Read the message (the driver\'s exit code, HTTP status or SNMP error) and check the relay, hub, switch or BMC it drives.'),
  DROVER_WEBHOOK_CONFIG: spec(500, 'startup', 'The webhook settings are not valid.', 'Give webhookUrl as an http(s) URL and webhookSecretFile as a readable file holding the HMAC secret.'),
  // tokens, users
  DROVER_TOKEN_NOT_FOUND: spec(404, 'api', 'No token has that id.', 'List tokens with `drover token ls`.'),
  DROVER_TOKEN_DEVICE_REQUIRED: spec(400, 'api', 'A device token must name its device, and only a device token may.', 'Pass `deviceId` together with role `device`, or drop it for other roles.'),
  DROVER_USER_NOT_FOUND: spec(404, 'api', 'No user has that id or name.', 'List users with `drover user ls`.'),
  DROVER_USER_EXISTS: spec(409, 'api', 'A user with that name already exists.', 'Pick another user name.'),
  DROVER_WEAK_PASSWORD: spec(400, 'api', 'The password is too short.', 'Use at least 12 characters.'),
  DROVER_LAST_ADMIN: spec(409, 'api', 'This would leave the controller without any admin.', 'Create another admin user or token first.'),
  // server side
  DROVER_INTERNAL: spec(500, 'any', 'Something failed inside Drover.', 'Retry; if it persists, look for the request id in the controller log (`journalctl -u drover`) and report it.'),
  DROVER_NOT_READY: spec(503, 'api', 'The controller is starting or its database is unreachable.', 'Wait a moment; check `/readyz` and the database connection.'),
  DROVER_CONFIG_INVALID: spec(500, 'startup', 'The configuration is invalid.', 'Fix the setting named in the message; `drover config print` shows the effective configuration and docs/config.md lists every setting.'),
  DROVER_CONFIG_UNREADABLE: spec(500, 'startup', 'The configuration file cannot be read or parsed.', 'Check the path given with --config or DROVER_CONFIG and that the file is valid YAML or JSON.'),
  DROVER_DATA_DIR_UNUSABLE: spec(500, 'startup', 'The data directory cannot be created or written.', 'Pass a writable --data-dir or fix its ownership (the service runs as user drover).'),
  DROVER_DATABASE_UNREACHABLE: spec(503, 'any', 'The database cannot be opened or reached.', 'Check --database: the SQLite file must be writable; a PostgreSQL URL must name a running server and valid credentials.'),
  DROVER_DHCP_UNAVAILABLE: spec(500, 'startup', 'DHCP cannot be served on the named interface.', 'Check that the interface exists and has an IPv4 address, that Drover runs as root or with CAP_NET_BIND_SERVICE and CAP_NET_RAW, and that the native addon is built (`npm run build:native`).'),
  DROVER_LISTEN_FAILED: spec(500, 'startup', 'The HTTP listener could not start.', 'Another process may hold the port; pass a free --listen HOST:PORT.'),
  // CLI
  DROVER_CLI_NO_SERVER: spec(500, 'cli', 'No controller address is known.', 'Pass --server URL, set DROVER_SERVER, or run `drover login --server URL` once.'),
  DROVER_CLI_NO_TOKEN: spec(500, 'cli', 'No API token is known.', 'Pass --token, set DROVER_TOKEN, or run `drover login`.'),
  DROVER_CLI_SERVER_UNREACHABLE: spec(500, 'cli', 'The controller cannot be reached.', 'Check that `drover serve` is running and that --server points at it (curl SERVER/healthz).'),
  DROVER_CLI_BAD_ARGUMENT: spec(500, 'cli', 'An argument is not valid.', 'See `drover <command> --help`.'),
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export class DroverError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly fix: string;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message?: string, details?: Record<string, unknown>) {
    const entry: ErrorSpec = ERRORS[code];
    super(message ?? entry.message);
    this.name = 'DroverError';
    this.code = code;
    this.status = entry.status;
    this.fix = entry.fix;
    this.details = details;
  }
}

export const isDroverError = (e: unknown): e is DroverError => e instanceof DroverError;

/** The JSON body every API error answers with. */
export interface ErrorBody {
  statusCode: number;
  code: string;
  error: string;
  message: string;
  fix: string;
  details?: Record<string, unknown>;
}
