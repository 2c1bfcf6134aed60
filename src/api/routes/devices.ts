import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { DEVICE_STATES, type DeviceState } from '../../domain/device.js';
import { DroverError } from '../../domain/errors.js';
import { publicHealth } from '../../domain/health.js';
import type { Device as DeviceRecord } from '../../domain/records.js';
import { actorOf, assertDeviceScope } from '../auth.js';
import { BootMode, Cursor, Device, Event, EventType, Json, Labels, Limit, Nullable, Ref, errors, page } from '../schemas.js';
import type { ApiDeps } from '../app.js';

const ListQuery = Type.Object(
  {
    state: Type.Optional(Type.String({ description: 'Comma-separated states', maxLength: 200 })),
    label: Type.Optional(Type.Union([Type.String({ maxLength: 400 }), Type.Array(Type.String({ maxLength: 400 }), { maxItems: 20 })], { description: 'key=value; repeat to AND several' })),
    group: Type.Optional(Type.String({ maxLength: 200 })),
    image: Type.Optional(Type.String({ maxLength: 200 })),
    q: Type.Optional(Type.String({ maxLength: 100, description: 'Substring of serial, hostname, model or MAC' })),
    limit: Type.Optional(Limit),
    cursor: Type.Optional(Cursor),
  },
  { additionalProperties: false },
);

const CreateBody = Type.Object(
  {
    serial: Type.String({ minLength: 1, maxLength: 40 }),
    macs: Type.Optional(Type.Array(Type.String({ maxLength: 40 }), { maxItems: 16 })),
    model: Type.Optional(Nullable(Type.String({ maxLength: 100 }))),
    boardRevision: Type.Optional(Nullable(Type.String({ maxLength: 40 }))),
    hostname: Type.Optional(Nullable(Type.String({ maxLength: 63 }))),
    labels: Type.Optional(Labels),
    groupId: Type.Optional(Nullable(Type.String({ maxLength: 200 }))),
    imageId: Type.Optional(Nullable(Type.String({ maxLength: 200 }))),
    bootMode: Type.Optional(Nullable(BootMode)),
    state: Type.Optional(Type.Unsafe<'incoming' | 'accepted'>({ type: 'string', enum: ['incoming', 'accepted'], default: 'accepted' })),
  },
  { additionalProperties: false },
);

const PatchBody = Type.Object(
  {
    hostname: Type.Optional(Nullable(Type.String({ maxLength: 63 }))),
    labels: Type.Optional(Type.Record(Type.String(), Nullable(Type.String()), { description: 'Merged: null removes a key' })),
    groupId: Type.Optional(Nullable(Type.String({ maxLength: 200 }))),
    model: Type.Optional(Nullable(Type.String({ maxLength: 100 }))),
    boardRevision: Type.Optional(Nullable(Type.String({ maxLength: 40 }))),
    bootMode: Type.Optional(Nullable(BootMode)),
    macs: Type.Optional(Type.Array(Type.String({ maxLength: 40 }), { maxItems: 16 })),
    settings: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'Per-device overrides of the group settings, replaced whole (e.g. `power`, see docs/power.md)' })),
  },
  { additionalProperties: false, minProperties: 1 },
);

const ActionBody = Type.Object({ reason: Type.Optional(Type.String({ maxLength: 500 })) }, { additionalProperties: false });
const AssignBody = Type.Object({ image: Nullable(Type.String({ minLength: 1, maxLength: 200 })) }, { additionalProperties: false });
const DeviceEventBody = Type.Object(
  { type: Type.String({ pattern: '^(boot|agent|report|note)\\.[a-z0-9-]+(\\.[a-z0-9-]+)*$', maxLength: 100 }), data: Type.Optional(Json) },
  { additionalProperties: false },
);
const EventsQuery = Type.Object(
  { type: Type.Optional(EventType), limit: Type.Optional(Limit), cursor: Type.Optional(Cursor) },
  { additionalProperties: false },
);

export function parseStates(s: string | undefined): DeviceState[] | undefined {
  if (!s) return undefined;
  const states = s.split(',').map((x) => x.trim()).filter(Boolean);
  for (const st of states) {
    if (!(DEVICE_STATES as readonly string[]).includes(st)) {
      throw new DroverError('DROVER_VALIDATION', `Unknown state "${st.slice(0, 40)}"; states are ${DEVICE_STATES.join(', ')}.`);
    }
  }
  return states as DeviceState[];
}

export function parseLabelFilter(l: string | string[] | undefined): Record<string, string> | undefined {
  if (l === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const pair of Array.isArray(l) ? l : [l]) {
    const i = pair.indexOf('=');
    if (i < 1) throw new DroverError('DROVER_VALIDATION', `Label filter "${pair.slice(0, 40)}" must be key=value.`);
    out[pair.slice(0, i)] = pair.slice(i + 1);
  }
  return out;
}

/** Devices with their health (live phi) attached, as the fleet page shows them. */
export async function withHealth(deps: ApiDeps, items: DeviceRecord[]): Promise<(DeviceRecord & { health?: ReturnType<typeof publicHealth> })[]> {
  if (items.length === 0) return items;
  const health = await deps.services.health.get(items.map((d) => d.id));
  return items.map((d) => {
    const h = health.get(d.id);
    return h ? { ...d, health: publicHealth(h) } : d;
  });
}

export const deviceRoutes = (deps: ApiDeps): FastifyPluginAsyncTypebox => async (app) => {
  const { devices, groups } = deps.services;

  app.get('/api/v1/devices', {
    config: { auth: 'read' },
    schema: { tags: ['devices'], summary: 'List devices', querystring: ListQuery, response: { 200: page(Type.Ref(Device)), ...errors(400) } },
  }, async (req) => {
    const q = req.query;
    const groupId = q.group ? (await groups.get(q.group)).id : undefined;
    const result = await devices.list(
      { state: parseStates(q.state), labels: parseLabelFilter(q.label), groupId, imageId: q.image, q: q.q },
      { limit: q.limit ?? 50, cursor: q.cursor },
    );
    return { ...result, items: await withHealth(deps, result.items) };
  });

  app.get('/api/v1/devices/summary', {
    config: { auth: 'read' },
    schema: {
      tags: ['devices'],
      summary: 'Device counts by state (every state present, zero included)',
      response: { 200: Type.Object({ total: Type.Integer(), byState: Type.Record(Type.String(), Type.Integer()) }), ...errors() },
    },
  }, async () => {
    const counts = await deps.services.ctx.store.devices.countByState();
    const byState = Object.fromEntries(DEVICE_STATES.map((s) => [s, counts[s] ?? 0]));
    return { total: Object.values(byState).reduce((a, b) => a + b, 0), byState };
  });

  app.post('/api/v1/devices', {
    config: { auth: 'operate' },
    schema: { tags: ['devices'], summary: 'Register a device', body: CreateBody, response: { 201: Type.Ref(Device), ...errors(400, 404, 409) } },
  }, async (req, reply) => {
    const device = await devices.create(req.body, actorOf(req));
    return reply.status(201).send(device);
  });

  app.get('/api/v1/devices/:id', {
    config: { auth: 'device-read' },
    schema: { tags: ['devices'], summary: 'Get a device by id, serial, MAC or hostname', params: Ref, response: { 200: Type.Ref(Device), ...errors(404) } },
  }, async (req) => {
    const device = await devices.get(req.params.id);
    assertDeviceScope(req, device.id);
    return (await withHealth(deps, [device]))[0]!;
  });

  app.patch('/api/v1/devices/:id', {
    config: { auth: 'operate' },
    schema: { tags: ['devices'], summary: 'Change hostname, labels, group, model or MACs', params: Ref, body: PatchBody, response: { 200: Type.Ref(Device), ...errors(400, 404, 409) } },
  }, async (req) => devices.patch(req.params.id, req.body, actorOf(req)));

  for (const action of ['accept', 'reject', 'retire'] as const) {
    app.post(`/api/v1/devices/:id/${action}`, {
      config: { auth: 'operate' },
      // The body is optional: `curl -X POST …/accept` with none is fine.
      preValidation: async (req) => {
        req.body ??= {};
      },
      schema: { tags: ['devices'], summary: `${action[0]!.toUpperCase()}${action.slice(1)} a device`, params: Ref, body: ActionBody, response: { 200: Type.Ref(Device), ...errors(404, 409) } },
    }, async (req) => devices.act(req.params.id, action, actorOf(req), req.body.reason));
  }

  app.post('/api/v1/devices/:id/assign', {
    config: { auth: 'operate' },
    schema: { tags: ['devices'], summary: 'Assign an image (null clears the assignment)', params: Ref, body: AssignBody, response: { 200: Type.Ref(Device), ...errors(400, 404) } },
  }, async (req) => devices.assignImage(req.params.id, req.body.image, actorOf(req)));

  app.get('/api/v1/devices/:id/events', {
    config: { auth: 'device-read' },
    schema: { tags: ['devices', 'events'], summary: "A device's events, newest first", params: Ref, querystring: EventsQuery, response: { 200: page(Type.Ref(Event)), ...errors(400, 404) } },
  }, async (req) => {
    const device = await devices.get(req.params.id);
    assertDeviceScope(req, device.id);
    return deps.services.events.list({ deviceId: device.id, type: req.query.type }, { limit: req.query.limit ?? 50, cursor: req.query.cursor });
  });

  app.post('/api/v1/devices/:id/events', {
    config: { auth: 'device-write' },
    schema: { tags: ['devices', 'events'], summary: 'Report an event for a device (boot phases, agent reports, notes)', params: Ref, body: DeviceEventBody, response: { 201: Type.Ref(Event), ...errors(400, 404) } },
  }, async (req, reply) => {
    const device = await devices.get(req.params.id);
    assertDeviceScope(req, device.id);
    const event = await deps.services.events.record({ type: req.body.type, deviceId: device.id, actor: actorOf(req), data: req.body.data ?? {} });
    return reply.status(201).send(event);
  });
};
