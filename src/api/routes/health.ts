// Health, metrics, jobs and power of one device: what the device page shows and its actions.
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { DroverError } from '../../domain/errors.js';
import { publicHealth } from '../../domain/health.js';
import { JOB_KINDS } from '../../services/jobs.service.js';
import type { JobKind } from '../../agent/protocol.js';
import { actorOf, assertDeviceScope } from '../auth.js';
import type { ApiDeps } from '../app.js';
import { Job, Json, Ref, Timestamp, errors } from '../schemas.js';

const MetricsQuery = Type.Object(
  {
    since: Type.Optional(Timestamp),
    until: Type.Optional(Timestamp),
    resolution: Type.Optional(Type.Union([Type.Literal('raw'), Type.Literal('minute'), Type.Literal('auto')], { description: 'raw samples, one-minute rollups, or auto (raw up to 2 hours)' })),
  },
  { additionalProperties: false },
);

const JobBody = Type.Object(
  {
    kind: Type.Unsafe<JobKind>({ type: 'string', enum: [...JOB_KINDS] }),
    params: Type.Optional(Json),
    timeoutMs: Type.Optional(Type.Integer({ minimum: 1000, maximum: 3_600_000 })),
  },
  { additionalProperties: false },
);

const PowerBody = Type.Object(
  {
    action: Type.Union([Type.Literal('on'), Type.Literal('off'), Type.Literal('cycle')]),
    reason: Type.Optional(Type.String({ maxLength: 500 })),
  },
  { additionalProperties: false },
);
const PowerResult = Type.Object({
  action: Type.String(),
  state: Type.Union([Type.String({ enum: ['on', 'off', 'unknown'] }), Type.Null()]),
  driver: Type.String(),
  ms: Type.Integer(),
});

const HOUR = 3600_000;

export const healthRoutes = (deps: ApiDeps): FastifyPluginAsyncTypebox => async (app) => {
  const { devices, health, jobs, power } = deps.services;
  const store = deps.services.ctx.store;

  app.get('/api/v1/devices/:id/health', {
    config: { auth: 'device-read' },
    schema: { tags: ['health'], summary: 'Health of a device: alive/suspect/dead, phi, agent, remediation', params: Ref, response: { 200: Json, ...errors(404) } },
  }, async (req) => {
    const device = await devices.get(req.params.id);
    assertDeviceScope(req, device.id);
    const h = (await health.get([device.id])).get(device.id);
    return h ? publicHealth(h) : { health: 'unknown', phi: null, since: null, reason: 'no agent has connected yet', lastHeartbeat: null, agent: { connected: false, version: null, bootId: null, imageId: null, bootedAt: null }, remediation: { stepsLastHour: 0 } };
  });

  app.get('/api/v1/devices/:id/metrics', {
    config: { auth: 'device-read' },
    schema: {
      tags: ['health'],
      summary: 'Metric samples of a device (raw for the last hours, one-minute rollups for longer)',
      params: Ref,
      querystring: MetricsQuery,
      response: { 200: Type.Object({ resolution: Type.String(), items: Type.Array(Json) }), ...errors(400, 404) },
    },
  }, async (req) => {
    const device = await devices.get(req.params.id);
    assertDeviceScope(req, device.id);
    const until = req.query.until ?? new Date(Date.now() + 60_000).toISOString();
    const since = req.query.since ?? new Date(Date.parse(until) - HOUR).toISOString();
    if (since >= until) throw new DroverError('DROVER_VALIDATION', '"since" must be before "until".');
    const span = Date.parse(until) - Date.parse(since);
    const resolution = req.query.resolution === 'auto' || !req.query.resolution ? (span <= 2 * HOUR ? 'raw' : 'minute') : req.query.resolution;
    if (resolution === 'raw') {
      const items = await store.metrics.range(device.id, since, until);
      return { resolution, items: items.map((s) => ({ ts: s.ts, seq: s.seq, ...s.m })) };
    }
    const items = await store.metrics.rollups(device.id, since.slice(0, 16), until.slice(0, 16));
    return { resolution, items: items.map((r) => ({ minute: r.minute, n: r.n, ...r.data })) };
  });

  app.post('/api/v1/devices/:id/jobs', {
    config: { auth: 'operate' },
    schema: {
      tags: ['jobs'],
      summary: 'Send a job to the device\'s agent (reboot, shutdown, exec, write-file, restart-unit, logs, next-boot-image); follow it on the event stream',
      params: Ref,
      body: JobBody,
      response: { 202: Type.Ref(Job), ...errors(400, 404, 409) },
    },
  }, async (req, reply) => {
    const device = await devices.get(req.params.id);
    const params = req.body.params ?? {};
    if (req.body.kind === 'next-boot-image') {
      // The image is set here (an event of its own); the agent only reboots into it.
      const image = await deps.services.images.get(String(params.imageId ?? ''));
      await devices.assignImage(device.id, image.id, actorOf(req));
      params.imageId = image.id;
    }
    const job = await jobs.create(device.id, req.body.kind, params, actorOf(req), req.body.timeoutMs);
    return reply.status(202).send(job);
  });

  app.get('/api/v1/devices/:id/jobs', {
    config: { auth: 'read' },
    schema: { tags: ['jobs'], summary: 'Jobs of a device, newest first', params: Ref, response: { 200: Type.Object({ items: Type.Array(Type.Ref(Job)) }), ...errors(404) } },
  }, async (req) => ({ items: await jobs.list(req.params.id) }));

  app.get('/api/v1/jobs/:id', {
    config: { auth: 'read' },
    schema: { tags: ['jobs'], summary: 'One job with its output so far', params: Ref, response: { 200: Type.Ref(Job), ...errors(404) } },
  }, async (req) => jobs.get(req.params.id));

  app.post('/api/v1/devices/:id/power', {
    config: { auth: 'operate' },
    schema: { tags: ['power'], summary: 'Power a device on, off, or cycle it through its power driver', params: Ref, body: PowerBody, response: { 200: PowerResult, ...errors(400, 404, 409, 502) } },
  }, async (req) => {
    const r = await power.act(req.params.id, req.body.action, actorOf(req), req.body.reason);
    return { action: r.action, state: r.state, driver: r.driver, ms: r.ms };
  });

  app.get('/api/v1/devices/:id/power', {
    config: { auth: 'read' },
    schema: { tags: ['power'], summary: 'Power state as the driver reports it', params: Ref, response: { 200: PowerResult, ...errors(404, 409, 502) } },
  }, async (req) => {
    const r = await power.act(req.params.id, 'status', actorOf(req));
    return { action: r.action, state: r.state, driver: r.driver, ms: r.ms };
  });
};
