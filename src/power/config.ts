// The shape of a `power` setting, one TypeBox schema per driver. Every object is closed
// (additionalProperties: false) so a misspelt key is an error instead of a silently ignored
// setting that leaves a Pi powered. Defaults are filled in when a driver is built (registry.ts and
// the drivers); a parsed config keeps exactly what was written.
import { Type, type Static, type TSchema } from '@sinclair/typebox';

const Timing = {
  /** Per action (each half of a cycle has its own). */
  timeoutMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 600_000 })),
  /** How long a cycle keeps the power off. */
  cycleDelayMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 600_000 })),
};

const NonEmpty = (maxLength = 4096) => Type.String({ minLength: 1, maxLength });
/** A host name or address, optionally with :port; no scheme, no path. */
const Host = Type.String({ minLength: 1, maxLength: 255, pattern: '^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9._-]+)(:[0-9]{1,5})?$' });
/** An absolute path of a file holding a secret (first line is used). */
const SecretFile = Type.String({ minLength: 2, maxLength: 4096, pattern: '^/' });

const closed = { additionalProperties: false } as const;

export const ExecConfig = Type.Object(
  {
    driver: Type.Literal('exec'),
    /** argv, no shell: the PPI executable and its arguments. */
    command: Type.Array(NonEmpty(), { minItems: 1, maxItems: 64 }),
    /** Template for the piId sent on stdin; default {{serial}} (what bakery sends). */
    piId: Type.Optional(NonEmpty(256)),
    ...Timing,
  },
  closed,
);

const HttpMethod = Type.Union([Type.Literal('GET'), Type.Literal('POST'), Type.Literal('PUT')]);
const HttpRequestFields = {
  url: Type.Optional(NonEmpty()),
  method: Type.Optional(HttpMethod),
  body: Type.Optional(Type.String({ maxLength: 65_536 })),
  headers: Type.Optional(Type.Record(Type.String({ minLength: 1, maxLength: 256 }), Type.String({ maxLength: 8192 }))),
  /** Status codes that mean success; default any 2xx. */
  expectStatus: Type.Optional(Type.Array(Type.Integer({ minimum: 100, maximum: 599 }), { minItems: 1, maxItems: 32 })),
  /** A regular expression the response body must match. */
  expectBody: Type.Optional(NonEmpty(1024)),
};
export const HttpRequestOverride = Type.Object(HttpRequestFields, closed);
export const HttpStatusOverride = Type.Object(
  { ...HttpRequestFields, onPattern: Type.Optional(NonEmpty(1024)), offPattern: Type.Optional(NonEmpty(1024)) },
  closed,
);
export const HttpPreset = Type.Union([Type.Literal('shelly-gen1'), Type.Literal('shelly-gen2'), Type.Literal('tasmota')]);

export const HttpConfig = Type.Object(
  {
    driver: Type.Literal('http'),
    preset: Type.Optional(HttpPreset),
    /** Preset devices: host[:port] of the plug or relay board. */
    host: Type.Optional(Host),
    scheme: Type.Optional(Type.Union([Type.Literal('http'), Type.Literal('https')])),
    /** The relay/outlet index or name: {{port}} in templates. */
    port: Type.Optional(Type.Union([Type.Integer({ minimum: 0, maximum: 65_535 }), NonEmpty(64)])),
    /** Basic auth (Tasmota: user/password query parameters). Never logged. */
    auth: Type.Optional(
      Type.Object({ user: NonEmpty(256), password: Type.Optional(Type.String({ maxLength: 1024 })), passwordFile: Type.Optional(SecretFile) }, closed),
    ),
    // The on/off request for both actions ({{action}} is on/off), and per-action overrides.
    ...HttpRequestFields,
    on: Type.Optional(HttpRequestOverride),
    off: Type.Optional(HttpRequestOverride),
    status: Type.Optional(HttpStatusOverride),
    ...Timing,
  },
  closed,
);

export const UhubctlConfig = Type.Object(
  {
    driver: Type.Literal('uhubctl'),
    /** Hub location as uhubctl prints it, e.g. 1-1.3 (bus-port.port...). */
    location: Type.String({ minLength: 1, maxLength: 64, pattern: '^[0-9]+(-[0-9]+(\\.[0-9]+)*)?$' }),
    port: Type.Integer({ minimum: 1, maximum: 255 }),
    binary: Type.Optional(NonEmpty()),
    /** -e: act on this exact location only, not also the USB3 companion hub. */
    exact: Type.Optional(Type.Boolean()),
    ...Timing,
  },
  closed,
);

export const SnmpPoeConfig = Type.Object(
  {
    driver: Type.Literal('snmp-poe'),
    host: Host,
    /** UDP port of the switch's SNMP agent. */
    port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65_535 })),
    version: Type.Optional(Type.Union([Type.Literal('v2c'), Type.Literal('v3')])),
    community: Type.Optional(NonEmpty(256)),
    communityFile: Type.Optional(SecretFile),
    /** pethPsePortGroupIndex: the PSE (stack member), 1 on a single switch. */
    group: Type.Optional(Type.Integer({ minimum: 1, maximum: 2_147_483_647 })),
    /** pethPsePortIndex: the switch port the Pi is plugged into. */
    ifPort: Type.Integer({ minimum: 1, maximum: 2_147_483_647 }),
    retries: Type.Optional(Type.Integer({ minimum: 0, maximum: 5 })),
    // SNMPv3 (user-based security).
    user: Type.Optional(NonEmpty(256)),
    authProtocol: Type.Optional(
      Type.Union(['MD5', 'SHA', 'SHA-224', 'SHA-256', 'SHA-384', 'SHA-512'].map((p) => Type.Literal(p))),
    ),
    authPassword: Type.Optional(Type.String({ minLength: 8, maxLength: 1024 })),
    authPasswordFile: Type.Optional(SecretFile),
    privProtocol: Type.Optional(Type.Union(['DES', 'AES', 'AES-192', 'AES-256'].map((p) => Type.Literal(p)))),
    privPassword: Type.Optional(Type.String({ minLength: 8, maxLength: 1024 })),
    privPasswordFile: Type.Optional(SecretFile),
    ...Timing,
  },
  closed,
);

export const TpiConfig = Type.Object(
  {
    driver: Type.Literal('tpi'),
    mode: Type.Optional(Type.Union([Type.Literal('api'), Type.Literal('cli')])),
    /** Slot on the board, 1-4. */
    node: Type.Integer({ minimum: 1, maximum: 4 }),
    /** The BMC: required for api; for cli it becomes --host (the tpi default is turingpi.local). */
    host: Type.Optional(Host),
    /** BMC firmware 2.x serves https; 1.x serves http. */
    scheme: Type.Optional(Type.Union([Type.Literal('https'), Type.Literal('http')])),
    user: Type.Optional(NonEmpty(256)),
    password: Type.Optional(Type.String({ maxLength: 1024 })),
    passwordFile: Type.Optional(SecretFile),
    /** Trust this PEM certificate (the BMC's self-signed one). */
    caFile: Type.Optional(SecretFile),
    /** Accept any certificate; only on a trusted management network. */
    insecureTls: Type.Optional(Type.Boolean()),
    binary: Type.Optional(NonEmpty()),
    /** power: off, wait, on. reset: the BMC's reset line (the node keeps power). */
    cycleMode: Type.Optional(Type.Union([Type.Literal('power'), Type.Literal('reset')])),
    ...Timing,
  },
  closed,
);

export const ClusterhatConfig = Type.Object(
  {
    driver: Type.Literal('clusterhat'),
    /** pN as clusterctrl names it (p1-p4 on a Cluster HAT, more with Cluster CTRL boards). */
    node: Type.Integer({ minimum: 1, maximum: 255 }),
    binary: Type.Optional(NonEmpty()),
    ...Timing,
  },
  closed,
);

export type ExecPowerConfig = Static<typeof ExecConfig>;
export type HttpPowerConfig = Static<typeof HttpConfig>;
export type HttpRequestOverrideConfig = Static<typeof HttpRequestOverride>;
export type HttpStatusOverrideConfig = Static<typeof HttpStatusOverride>;
export type HttpPresetName = Static<typeof HttpPreset>;
export type UhubctlPowerConfig = Static<typeof UhubctlConfig>;
export type SnmpPoePowerConfig = Static<typeof SnmpPoeConfig>;
export type TpiPowerConfig = Static<typeof TpiConfig>;
export type ClusterhatPowerConfig = Static<typeof ClusterhatConfig>;

export type PowerConfig =
  | ExecPowerConfig
  | HttpPowerConfig
  | UhubctlPowerConfig
  | SnmpPoePowerConfig
  | TpiPowerConfig
  | ClusterhatPowerConfig;

export type PowerDriverName = PowerConfig['driver'];

/** Schema per driver name; parsePowerConfig picks one by `driver` so errors name the right fields. */
export const POWER_SCHEMAS: Record<PowerDriverName, TSchema> = {
  exec: ExecConfig,
  http: HttpConfig,
  uhubctl: UhubctlConfig,
  'snmp-poe': SnmpPoeConfig,
  tpi: TpiConfig,
  clusterhat: ClusterhatConfig,
};
