// Cluster-PaaS-RPi's REST API, answered by the controller for the whole fleet, with Drover's
// auth: tools written for it keep working. A node's "services" are device labels
// `service.<name>=1`; a device token changes its own node, other tokens name it with ?node=.
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { DroverError } from '../../domain/errors.js';
import type { Device } from '../../domain/records.js';
import { actorOf, assertDeviceScope, principalOf } from '../auth.js';
import type { ApiDeps } from '../app.js';
import { Json, errors } from '../schemas.js';

const Service = Type.Object({ service: Type.String({ pattern: '^[a-z0-9][a-z0-9_.-]{0,50}$', description: 'Service name, e.g. nginx_webserver (lowercase)' }) });
const NodeQuery = Type.Object({ node: Type.Optional(Type.String({ maxLength: 200, description: 'The node (id, serial, MAC, hostname); a device token may omit it' })) }, { additionalProperties: false });
const PREFIX = 'service.';

export const clusterPaasRoutes = (deps: ApiDeps): FastifyPluginAsyncTypebox => async (app) => {
  const { devices, health } = deps.services;

  /** Every device that is not retired, with health and its latest sample. */
  async function fleet(): Promise<{ device: Device; health: string; phi: number | null; connected: boolean }[]> {
    const out: { device: Device; health: string; phi: number | null; connected: boolean }[] = [];
    let cursor: string | undefined;
    do {
      const page = await devices.list({ state: ['accepted', 'booting', 'running', 'suspect', 'failed'] }, { limit: 500, cursor });
      const h = await health.get(page.items.map((d) => d.id));
      for (const d of page.items) {
        const x = h.get(d.id);
        out.push({ device: d, health: x?.health ?? 'unknown', phi: x?.phi ?? null, connected: x?.agent.connected ?? false });
      }
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    return out;
  }

  const services = (d: Device) => Object.keys(d.labels).filter((k) => k.startsWith(PREFIX) && d.labels[k] === '1').map((k) => k.slice(PREFIX.length));

  app.get('/nodes/alive', {
    config: { auth: 'read' },
    schema: { tags: ['cluster-paas'], summary: 'IP addresses of alive nodes (Cluster-PaaS)', response: { 200: Type.Array(Type.String()), ...errors() } },
  }, async () => (await fleet()).filter((n) => n.health === 'alive').map((n) => n.device.ipAddresses[0] ?? n.device.hostname ?? n.device.serial));

  app.get('/nodes/monitoring', {
    config: { auth: 'read' },
    schema: { tags: ['cluster-paas'], summary: 'Monitoring of every node: cpu, ram, load, phi (Cluster-PaaS)', response: { 200: Type.Array(Json), ...errors() } },
  }, async () => {
    const nodes = await fleet();
    return Promise.all(
      nodes.map(async (n) => {
        const s = await deps.services.ctx.store.metrics.latest(n.device.id);
        const m = s?.m;
        return {
          name: n.device.hostname ?? n.device.serial,
          id: n.device.id,
          ip: n.device.ipAddresses[0] ?? null,
          health: n.health,
          phi: n.phi,
          time: s?.ts ?? null,
          cpu: m ? Math.round((m.cpu.reduce((a, b) => a + b, 0) / Math.max(1, m.cpu.length)) * 1000) / 10 : null,
          ram: m ? { total: m.mem[0], free: m.mem[1], usedPercent: m.mem[0] ? Math.round((1 - m.mem[1] / m.mem[0]) * 1000) / 10 : null } : null,
          loadavg: m?.load ?? null,
          temp: m?.temp ?? null,
        };
      }),
    );
  });

  app.get('/nodes/workingService/:service', {
    config: { auth: 'read' },
    schema: { tags: ['cluster-paas'], summary: 'Nodes running a service, with all their services (Cluster-PaaS)', params: Service, response: { 200: Type.Array(Json), ...errors(400) } },
  }, async (req) =>
    (await fleet())
      .filter((n) => services(n.device).includes(req.params.service))
      .map((n) => ({ name: n.device.hostname ?? n.device.serial, id: n.device.id, ip: n.device.ipAddresses[0] ?? null, health: n.health, services: services(n.device) })),
  );

  for (const [path, value] of [['add-service', '1'], ['remove-service', null]] as const) {
    app.put(`/meta-data/${path}/:service`, {
      config: { auth: 'device-write' },
      schema: {
        tags: ['cluster-paas'],
        summary: `${value ? 'Add a service to' : 'Remove a service from'} a node's metadata (label service.<name>; Cluster-PaaS)`,
        params: Service,
        querystring: NodeQuery,
        response: { 200: Type.Object({ node: Type.String(), services: Type.Array(Type.String()) }), ...errors(400, 404) },
      },
    }, async (req) => {
      const p = principalOf(req);
      const ref = req.query.node ?? (p.role === 'device' ? p.deviceId : null);
      if (!ref) throw new DroverError('DROVER_VALIDATION', 'Name the node with ?node= (a device token may leave it out).');
      const device = await devices.get(ref);
      assertDeviceScope(req, device.id);
      const updated = await devices.patch(device.id, { labels: { [`${PREFIX}${req.params.service}`]: value } }, actorOf(req));
      return { node: updated.hostname ?? updated.serial, services: services(updated) };
    });
  }
};
