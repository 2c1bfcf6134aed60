import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { BusMessage } from '../../services/event-bus.js';
import { principalOf } from '../auth.js';
import type { ApiDeps } from '../app.js';
import fastJson from 'fast-json-stringify';
import { publicHealth } from '../../domain/health.js';
import { Cursor, Device, Event, EventType, Job, Limit, Timestamp, errors, page } from '../schemas.js';

const ListQuery = Type.Object(
  {
    device: Type.Optional(Type.String({ maxLength: 200, description: 'Device id, serial, MAC or hostname' })),
    type: Type.Optional(EventType),
    since: Type.Optional(Timestamp),
    until: Type.Optional(Timestamp),
    limit: Type.Optional(Limit),
    cursor: Type.Optional(Cursor),
  },
  { additionalProperties: false },
);
const StreamQuery = Type.Object(
  {
    device: Type.Optional(Type.String({ maxLength: 200 })),
    after: Type.Optional(Type.Integer({ minimum: 0, description: 'Replay events with a larger id first (also read from Last-Event-ID)' })),
  },
  { additionalProperties: false },
);

// Stream messages go through the same schemas as REST responses: fields not named there never leave.
const serializeDevice = fastJson(Device as object);
const serializeEvent = fastJson(Event as object);
const serializeJob = fastJson(Job as object);

const HEARTBEAT_MS = 15_000;
const REPLAY_LIMIT = 1000;

export const eventRoutes = (deps: ApiDeps): FastifyPluginAsyncTypebox => async (app) => {
  const { events, devices } = deps.services;

  /** Device tokens see only their own device, whatever they ask for. */
  async function scopeDevice(principal: ReturnType<typeof principalOf>, ref: string | undefined): Promise<string | undefined> {
    if (principal.role === 'device') return principal.deviceId ?? '\u0000none';
    return ref ? (await devices.get(ref)).id : undefined;
  }

  app.get('/api/v1/events', {
    config: { auth: 'device-read' },
    schema: { tags: ['events'], summary: 'Events, newest first, filtered by device, type (`boot.*` for a prefix) and time', querystring: ListQuery, response: { 200: page(Type.Ref(Event)), ...errors(400, 404) } },
  }, async (req) => {
    const q = req.query;
    const deviceId = await scopeDevice(principalOf(req), q.device);
    return events.list({ deviceId, type: q.type, since: q.since, until: q.until }, { limit: q.limit ?? 50, cursor: q.cursor });
  });

  app.get('/api/v1/events/stream', {
    config: { auth: 'device-read' },
    schema: {
      tags: ['events'],
      summary: 'Live stream (Server-Sent Events): `event: event` for each new event, `event: device` for each changed device, `event: health` for health changes, `event: job` / `job-output` for jobs, `event: progress` for running image ingests; a device-scoped stream also carries `event: sample` (live metrics)',
      querystring: StreamQuery,
      produces: ['text/event-stream'],
      response: { 200: Type.String({ description: 'text/event-stream' }), ...errors(404) },
    },
  }, async (req, reply) => {
    const deviceId = await scopeDevice(principalOf(req), req.query.device);
    const lastId = Number(req.headers['last-event-id'] ?? req.query.after ?? NaN);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(': drover event stream\nretry: 3000\n\n');
    const send = (m: BusMessage) => {
      if (m.kind === 'event') {
        if (deviceId && m.event.deviceId !== deviceId) return;
        res.write(`id: ${m.event.id}\nevent: event\ndata: ${serializeEvent(m.event)}\n\n`);
      } else if (m.kind === 'progress') {
        // Image ingests are controller-wide work; device-scoped streams do not see them.
        if (deviceId) return;
        res.write(`event: progress\ndata: ${JSON.stringify(m.job)}\n\n`);
      } else if (m.kind === 'device') {
        if (deviceId && m.device.id !== deviceId) return;
        res.write(`event: device\ndata: ${serializeDevice(m.device)}\n\n`);
      } else if (m.kind === 'health') {
        if (deviceId && m.health.deviceId !== deviceId) return;
        res.write(`event: health\ndata: ${JSON.stringify({ deviceId: m.health.deviceId, ...publicHealth(m.health) })}\n\n`);
      } else if (m.kind === 'job') {
        if (deviceId && m.job.deviceId !== deviceId) return;
        res.write(`event: job\ndata: ${serializeJob(m.job)}\n\n`);
      } else if (m.kind === 'job-output') {
        if (deviceId && m.deviceId !== deviceId) return;
        res.write(`event: job-output\ndata: ${JSON.stringify(m)}\n\n`);
      } else if (m.kind === 'sample') {
        // Live metrics only on a device's own stream: a fleet-wide stream would carry every heartbeat.
        if (!deviceId || m.deviceId !== deviceId) return;
        res.write(`event: sample\ndata: ${JSON.stringify({ ts: m.ts, m: m.m })}\n\n`);
      }
    };
    // Subscribe before replaying so nothing committed in between is missed; drop duplicates.
    const buffered: BusMessage[] = [];
    let replaying = Number.isInteger(lastId) && lastId >= 0;
    let highest = replaying ? lastId : -1;
    const unsubscribe = deps.services.ctx.bus.subscribe((m) => {
      if (replaying) buffered.push(m);
      else if (m.kind !== 'event' || m.event.id > highest) send(m);
    });
    deps.metrics.streamClients.inc();
    const heartbeat = setInterval(() => res.write(': ping\n\n'), HEARTBEAT_MS);
    const close = () => {
      clearInterval(heartbeat);
      unsubscribe();
      deps.metrics.streamClients.dec();
    };
    res.once('close', close);
    if (replaying) {
      try {
        for (const e of await events.since(lastId, REPLAY_LIMIT, deviceId)) {
          send({ kind: 'event', event: e });
          highest = Math.max(highest, e.id);
        }
      } finally {
        replaying = false;
        for (const m of buffered.splice(0)) if (m.kind !== 'event' || m.event.id > highest) send(m);
      }
    }
  });
};
