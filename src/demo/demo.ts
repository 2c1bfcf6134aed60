// `drover demo --nodes N`: a controller and N virtual Pis of mixed models, so a person can watch
// a fleet arrive in the dashboard. As root (with iproute2 and dnsmasq) the Pis live in network
// namespaces on a private bridge, with dnsmasq as the LAN's DHCP server and Drover's proxy DHCP
// and TFTP beside it; otherwise they boot over loopback TFTP. New Pis arrive as incoming and are
// accepted a moment later (as an operator would), then boot again with their own token. A booted
// Pi runs the real device agent (virtual-fleet.ts): metrics move on the dashboard, and a Pi
// killed from the dashboard is healed by the remediation ladder through the demo's power switch.
// Everything the demo creates is removed when it stops.
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/load.js';
import { runVirtualPi } from '../netboot/virtual-pi/run.js';
import type { PiHardware, VirtualPiModel } from '../netboot/virtual-pi/models.js';
import { freePort } from '../server/free-port.js';
import { startServer, type RunningServer } from '../server/serve.js';
import { makeBootTree } from './boot-tree.js';
import { freeLabSubnet, hasTool, Lab, netnsAvailable } from './lab.js';
import { VirtualFleet } from './virtual-fleet.js';
import type { VirtualPiReport } from '../netboot/virtual-pi/run.js';

export interface DemoOptions {
  nodes: number;
  /** Force loopback mode even as root. */
  loopback?: boolean;
  /** Accept new Pis automatically after this many ms (0: leave them incoming). */
  acceptAfterMs?: number;
  /** Stagger between Pis powering on. */
  staggerMs?: number;
  announce?: (line: string) => void;
}

export interface RunningDemo {
  server: RunningServer;
  mode: 'netns' | 'loopback';
  pis: PiHardware[];
  /** Resolves when every Pi has finished its first boot attempt. */
  settled: Promise<void>;
  fleet: VirtualFleet;
  stop(): Promise<void>;
}

const MODELS: VirtualPiModel[] = ['pi4', 'pi4', 'pi5', 'pi3b+', 'pi4', 'pi3b', 'pi5', 'pi4'];
const OUI: Record<VirtualPiModel, string> = { pi3b: 'b8:27:eb', 'pi3b+': 'b8:27:eb', pi4: 'dc:a6:32', pi5: '2c:cf:67' };
const REV: Record<VirtualPiModel, string> = { pi3b: 'a02082', 'pi3b+': 'a020d3', pi4: 'c03111', pi5: 'd04170' };

export function demoFleet(n: number): PiHardware[] {
  return Array.from({ length: n }, (_, i) => {
    const model = MODELS[i % MODELS.length]!;
    const tail = (i + 1).toString(16).padStart(4, '0');
    return { model, serial: `de${tail}${(i * 7 + 11).toString(16).padStart(2, '0').slice(-2)}`, mac: `${OUI[model]}:de:${tail.slice(0, 2)}:${tail.slice(2)}`, boardRevision: REV[model] };
  });
}

const hasDnsmasq = () => hasTool('dnsmasq');

export async function startDemo(base: Config, o: DemoOptions): Promise<RunningDemo> {
  const say = o.announce ?? ((l: string) => process.stderr.write(`${l}\n`));
  const mode: RunningDemo['mode'] = !o.loopback && netnsAvailable() && hasDnsmasq() ? 'netns' : 'loopback';
  const pis = demoFleet(o.nodes);
  const cleanups: (() => Promise<void> | void)[] = [];
  let lab: Lab | undefined;
  let config: Config;
  if (mode === 'netns') {
    lab = await Lab.create();
    cleanups.push(() => lab!.destroy());
    const net = freeLabSubnet();
    const uplink = await lab.uplink({ addr: `${net}.1/24` });
    await lab.host('dhcp', { addr: `${net}.2/24` });
    const leases = join(base.dataDir, 'demo-dnsmasq');
    mkdirSync(leases, { recursive: true });
    lab.spawn('dhcp', 'dnsmasq', [
      '--no-daemon', '--port=0', '--conf-file=/dev/null', '--interface=eth0', '--bind-interfaces',
      `--dhcp-range=${net}.100,${net}.250,255.255.255.0,1h`, `--dhcp-leasefile=${join(leases, 'leases')}`, `--pid-file=${join(leases, 'pid')}`,
      '--log-dhcp', `--log-facility=${join(leases, 'dnsmasq.log')}`,
    ]).stderr!.on('data', () => undefined);
    for (const [i, hw] of pis.entries()) await lab.host(`p${i}`, { mac: hw.mac });
    for (let t = 0; t < 50 && !existsSync(join(leases, 'pid')); t++) await new Promise((r) => setTimeout(r, 100));
    config = {
      ...base,
      tftpListen: { host: `${net}.1`, port: 69 },
      dhcp: { interface: uplink, mode: 'proxy', range: undefined, leaseTime: 3600, router: undefined, dns: [], pi3ReplyDelay: 300, pxeClients: false },
      publicUrl: base.publicUrl ?? `http://${net}.1:${base.listen.port}`,
    };
    say(`demo: ${o.nodes} virtual Pis in network namespaces ${lab.name('')}* on a private bridge (${net}.0/24), dnsmasq as the LAN DHCP server, Drover's proxy DHCP on ${uplink}`);
  } else {
    config = { ...base, tftpListen: { host: '127.0.0.1', port: await freePort('127.0.0.1') }, dhcp: null };
    say(`demo: ${o.nodes} virtual Pis booting over loopback TFTP (run as root with iproute2 and dnsmasq for the full network version)`);
  }

  // Heartbeats every second and the controller in the gossip group: a killed Pi is noticed in seconds.
  config = { ...config, agent: { ...config.agent, heartbeatMs: 1000 }, gossipListen: config.gossipListen ?? { host: '127.0.0.1', port: 0 } };
  let stopping = false;
  const fleet: VirtualFleet = new VirtualFleet({
    pis,
    dir: join(base.dataDir, 'demo-fleet'),
    firmware: (i) => firmware(i),
    server: () => server.url,
    say,
  });
  let server: RunningServer;
  try {
    server = await startServer(config, { demo: fleet, healthTickMs: 500 });
  } catch (err) {
    for (const c of cleanups.reverse()) await c();
    throw err;
  }
  const { services } = server;
  fleet.start();
  // The demo's rack: powered through the demo's switch (a real PPI script), healed quickly.
  const rack = (await services.ctx.store.groups.findByName('demo-rack')) ?? (await services.groups.create({
    name: 'demo-rack',
    description: 'Virtual Pis of drover demo: exec power driver (the demo power switch), fast health policy',
    settings: { power: { driver: 'exec', command: [fleet.powerScript], cycleDelayMs: 1000 } },
    policy: { health: { deadAfterSeconds: 5, acceptablePauseSeconds: 2, graceAfterBootSeconds: 0, stepTimeoutSeconds: 30, maxRemediationsPerHour: 30, backoffSeconds: 5 } },
  }, 'demo'));
  if (!(await services.images.defaultImage())) {
    const dir = join(config.dataDir, 'demo-boot');
    rmSync(dir, { recursive: true, force: true });
    makeBootTree(dir, 'demo');
    const existing = await services.ctx.store.images.findByName('demo-pios', 'latest');
    if (existing) await services.images.setDefault(existing.id, 'demo');
    else await services.images.addBootDir({ name: 'demo-pios', path: dir, makeDefault: true }, 'demo');
    rmSync(dir, { recursive: true, force: true });
  }
  say(`demo: dashboard at ${server.url}/ (log in with the token in ${config.dataDir}/initial-admin-token, or create a user)`);

  const timers = new Set<NodeJS.Timeout>();
  // One boot at a time per Pi (the fleet serialises them): a reboot after acceptance waits for the first boot to finish.
  const bootOnce = (i: number): Promise<void> => fleet.boot(i);
  async function firmware(i: number): Promise<VirtualPiReport | null> {
    const hw = pis[i]!;
    if (stopping) return null;
    if (mode === 'netns') {
      const args = [process.argv[1]!, 'virtual-pi', '--model', hw.model, '--serial', hw.serial, '--mac', hw.mac, '--dhcp', 'eth0', '--json'];
      const r = await lab!.exec(`p${i}`, process.execPath, [...process.execArgv, ...args], { timeout: 120_000 });
      if (r.code !== 0 && !stopping) say(`demo: ${hw.model} ${hw.serial} did not boot: ${r.stdout.slice(0, 300)}${r.stderr.slice(0, 300)}`);
      try {
        return JSON.parse(r.stdout) as VirtualPiReport;
      } catch {
        return null;
      }
    }
    const r = await runVirtualPi({ hw, tftpServer: '127.0.0.1', tftpPort: config.tftpListen!.port });
    if (!r.ok && !stopping) say(`demo: ${hw.model} ${hw.serial} did not boot: ${r.reason}`);
    return r;
  }

  const accept = o.acceptAfterMs ?? 3000;
  const unsubscribe = services.ctx.bus.subscribe((m) => {
    if (stopping || accept <= 0 || m.kind !== 'event' || m.event.type !== 'device.discovered' || !m.event.deviceId) return;
    const deviceId = m.event.deviceId;
    const t = setTimeout(async () => {
      timers.delete(t);
      try {
        const d = await services.devices.get(deviceId);
        if (d.state !== 'incoming') return;
        await services.devices.act(deviceId, 'accept', 'demo', 'accepted by the demo');
        await services.devices.patch(deviceId, { groupId: rack.id }, 'demo');
        const i = pis.findIndex((p) => p.serial === d.serial);
        if (i >= 0) await bootOnce(i); // the accepted Pi boots again, now with its own token
      } catch {
        /* stopping */
      }
    }, accept);
    timers.add(t);
  });

  const settled = (async () => {
    const runs: Promise<void>[] = [];
    for (let i = 0; i < pis.length && !stopping; i++) {
      runs.push(bootOnce(i));
      await new Promise((r) => setTimeout(r, o.staggerMs ?? (mode === 'netns' ? 1500 : 400)));
    }
    await Promise.all(runs);
  })();

  return {
    server,
    mode,
    pis,
    settled,
    fleet,
    async stop() {
      stopping = true;
      unsubscribe();
      for (const t of timers) clearTimeout(t);
      await fleet.stop();
      await server.close();
      for (const c of cleanups.reverse()) await c();
    },
  };
}
