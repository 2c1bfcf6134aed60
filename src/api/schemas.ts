// TypeBox schemas: request validation, response serialization and the OpenAPI document all come
// from these. Response schemas double as an allow-list: fields not named here never leave.
import { Type, type TSchema } from '@sinclair/typebox';
import { BOOT_MODES, DEVICE_STATES } from '../domain/device.js';
import { PERSON_ROLES, ROLES } from '../domain/roles.js';

export const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
const StringEnum = <T extends readonly string[]>(values: T, opts: object = {}) =>
  Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...opts });

export const Timestamp = Type.String({ format: 'date-time' });
export const Labels = Type.Record(Type.String(), Type.String(), { description: 'key → value' });
export const Json = Type.Record(Type.String(), Type.Unknown());
export const DeviceState = StringEnum(DEVICE_STATES);
export const BootMode = StringEnum(BOOT_MODES);
export const Role = StringEnum(ROLES);
export const PersonRole = StringEnum(PERSON_ROLES);

export const ErrorBody = Type.Object(
  {
    statusCode: Type.Integer(),
    code: Type.String({ description: 'Stable DROVER_* code; see docs/errors.md' }),
    error: Type.String(),
    message: Type.String(),
    fix: Type.String(),
    details: Type.Optional(Json),
  },
  { $id: 'Error' },
);

export const DeviceHealth = Type.Object(
  {
    health: Type.String({ enum: ['unknown', 'alive', 'suspect', 'dead'] }),
    phi: Nullable(Type.Number({ description: 'Suspicion level of the heartbeat detector (phi accrual); suspect from the policy threshold, 8 by default' })),
    since: Nullable(Timestamp),
    reason: Nullable(Type.String()),
    lastHeartbeat: Nullable(Timestamp),
    agent: Type.Object({
      connected: Type.Boolean(),
      version: Nullable(Type.String()),
      bootId: Nullable(Type.String()),
      imageId: Nullable(Type.String()),
      bootedAt: Nullable(Timestamp),
    }),
    remediation: Type.Object({
      step: Type.Optional(Type.String({ description: 'The ladder step running now' })),
      stepStartedAt: Type.Optional(Timestamp),
      reason: Type.Optional(Type.String()),
      failed: Type.Optional(Type.Boolean()),
      stepsLastHour: Type.Integer(),
    }),
  },
  { description: 'Agent and health facts (device_health)' },
);

export const Device = Type.Object(
  {
    id: Type.String(),
    serial: Type.String({ description: '8 lowercase hex digits (the TFTP prefix)' }),
    macs: Type.Array(Type.String()),
    model: Nullable(Type.String()),
    boardRevision: Nullable(Type.String()),
    hostname: Nullable(Type.String()),
    labels: Labels,
    groupId: Nullable(Type.String()),
    imageId: Nullable(Type.String()),
    bootMode: Nullable(BootMode),
    state: Type.String({ enum: [...DEVICE_STATES] }),
    ipAddresses: Type.Array(Type.String()),
    settings: Type.Optional(Json),
    firstSeen: Nullable(Timestamp),
    lastSeen: Nullable(Timestamp),
    createdAt: Timestamp,
    updatedAt: Timestamp,
    health: Type.Optional(DeviceHealth),
  },
  { $id: 'Device' },
);

export const Group = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    description: Type.String(),
    imageId: Nullable(Type.String()),
    bootMode: Nullable(BootMode),
    settings: Json,
    policy: Json,
    createdAt: Timestamp,
    updatedAt: Timestamp,
  },
  { $id: 'Group' },
);

export const Image = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    tag: Type.String(),
    sha256: Nullable(Type.String()),
    status: Type.String(),
    kind: Type.String(),
    metadata: Json,
    createdAt: Timestamp,
    isDefault: Type.Optional(Type.Boolean({ description: 'Served to devices with no image of their own or of their group' })),
  },
  { $id: 'Image' },
);

export const Token = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    role: Role,
    prefix: Type.String({ description: 'First characters of the secret, to recognise it' }),
    deviceId: Nullable(Type.String()),
    userId: Nullable(Type.String()),
    kind: Type.String(),
    createdAt: Timestamp,
    expiresAt: Nullable(Timestamp),
    lastUsedAt: Nullable(Timestamp),
    revokedAt: Nullable(Timestamp),
  },
  { $id: 'Token' },
);

export const User = Type.Object(
  {
    id: Type.String(),
    username: Type.String(),
    role: PersonRole,
    disabled: Type.Boolean(),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  },
  { $id: 'User' },
);

export const Event = Type.Object(
  {
    id: Type.Integer(),
    time: Timestamp,
    type: Type.String(),
    deviceId: Nullable(Type.String()),
    actor: Nullable(Type.String()),
    data: Json,
  },
  { $id: 'Event' },
);

export const Job = Type.Object(
  {
    id: Type.String(),
    deviceId: Type.String(),
    kind: Type.String({ enum: ['reboot', 'shutdown', 'exec', 'write-file', 'restart-unit', 'logs', 'next-boot-image'] }),
    params: Json,
    state: Type.String({ enum: ['queued', 'running', 'succeeded', 'failed', 'timeout', 'lost'] }),
    actor: Nullable(Type.String()),
    timeoutMs: Type.Integer(),
    createdAt: Timestamp,
    startedAt: Nullable(Timestamp),
    finishedAt: Nullable(Timestamp),
    exitCode: Nullable(Type.Integer()),
    output: Nullable(Type.String()),
    error: Nullable(Type.String()),
  },
  { $id: 'Job' },
);

export const page = <T extends TSchema>(item: T) =>
  Type.Object({
    items: Type.Array(item),
    nextCursor: Nullable(Type.String({ description: 'Pass as `cursor` to get the next page' })),
    total: Type.Optional(Type.Integer()),
  });

export const list = <T extends TSchema>(item: T) => Type.Object({ items: Type.Array(item) });

export const Limit = Type.Integer({ minimum: 1, maximum: 500, default: 50 });
export const Cursor = Type.String({ maxLength: 300 });
export const Ref = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200, description: 'id, or a natural key (serial, MAC, hostname, name)' }) });
export const EventType = Type.String({ pattern: '^[a-z][a-z0-9-]*(\\.[a-z0-9-]+)*(\\.\\*)?$', maxLength: 100 });

/** Standard error responses, so every route documents them. */
export function errors(...statuses: number[]): Record<number, TSchema> {
  return Object.fromEntries([401, 403, 429, ...statuses].map((s) => [s, Type.Ref(ErrorBody)]));
}

export const sharedSchemas = [ErrorBody, Device, Group, Image, Token, User, Event, Job];
