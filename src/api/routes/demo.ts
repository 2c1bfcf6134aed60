// The demo's API: whether `drover demo` runs this controller (the dashboard then shows a Kill
// button), its virtual Pis, and "kill this Pi" (it hangs like a crashed Pi; the remediation
// ladder then heals it through the demo's power switch). Outside the demo, GET says demo: false
// and kill is 404.
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { DroverError } from '../../domain/errors.js';
import { actorOf } from '../auth.js';
import type { ApiDeps } from '../app.js';
import { Ref, errors } from '../schemas.js';

/** What the demo's virtual fleet offers the API (src/demo/virtual-fleet.ts). */
export interface DemoControl {
  status(): { serial: string; model: string; power: 'on' | 'off'; state: 'off' | 'firmware' | 'running' | 'crashed' | 'halted'; node: string | null }[];
  /** false when that Pi is not running. */
  kill(serial: string): Promise<boolean>;
}

const DemoPi = Type.Object({
  serial: Type.String(),
  model: Type.String(),
  power: Type.String({ enum: ['on', 'off'] }),
  state: Type.String({ enum: ['off', 'firmware', 'running', 'crashed', 'halted'] }),
  node: Type.Union([Type.String(), Type.Null()]),
});

export const demoRoutes = (deps: ApiDeps): FastifyPluginAsyncTypebox => async (app) => {
  const fleet = deps.demo;
  app.get('/api/v1/demo', {
    config: { auth: 'read' },
    schema: { tags: ['demo'], summary: 'Whether `drover demo` runs this controller, and its virtual Pis with their power and state', response: { 200: Type.Object({ demo: Type.Boolean(), pis: Type.Array(DemoPi) }) } },
  }, async () => ({ demo: fleet !== undefined, pis: fleet?.status() ?? [] }));

  app.post('/api/v1/demo/devices/:id/kill', {
    config: { auth: 'operate' },
    schema: { tags: ['demo'], summary: 'Hang a virtual Pi as a crash would (its agent and gossip member stop without a word); the ladder heals it', params: Ref, response: { 200: Type.Object({ killed: Type.Literal(true), serial: Type.String() }), ...errors(404, 409) } },
  }, async (req) => {
    if (!fleet) throw new DroverError('DROVER_ROUTE_NOT_FOUND', 'Killing a Pi is a demo feature: this controller is not running `drover demo`.');
    const device = await deps.services.devices.get(req.params.id);
    if (!(await fleet.kill(device.serial))) throw new DroverError('DROVER_DEVICE_INVALID_TRANSITION', `Virtual Pi ${device.serial} is not running, so there is nothing to kill.`);
    await deps.services.events.record({ type: 'demo.killed', deviceId: device.id, actor: actorOf(req), data: { serial: device.serial } });
    return { killed: true as const, serial: device.serial };
  });
};
