// What a virtual Pi does after its firmware's TFTP boot, in place of the initramfs and the OS:
// read drover.server/node/token from the cmdline.txt it was served, fetch its boot config and
// overlay with that token (as data/initramfs/init does), report the phases, take
// etc/drover/agent.json out of the overlay and run the real device agent (src/agent) with it,
// with the simulator's synthetic, moving metrics and, optionally, a gossip member. Reboot and shutdown jobs
// are handed back to the caller, which decides what "boot again" means.
import { gunzipSync } from 'node:zlib';
import { Agent } from '../../agent/agent.js';
import { AgentGossip } from '../../agent/gossip.js';
import { silentLogger, type AgentLogger } from '../../agent/log.js';
import { SyntheticMetrics } from '../../agent/simulator.js';
import type { GossipTimings } from '../../gossip/config.js';
import { tarFiles } from '../../images/tar-reader.js';
import type { VirtualPiReport } from './run.js';

export interface VirtualOsOptions {
  report: VirtualPiReport;
  /** The agent's buffer lives here (one directory per Pi; kept across its reboots). */
  stateDir: string;
  /** Synthetic metrics and the boot id follow from (seed, node, boot number): a new boot, a new boot id. */
  metricsSeed: number;
  bootNumber: number;
  /** Run a gossip member on this loopback address (port chosen by the kernel); none = no gossip. */
  gossip?: { bindAddr: string; timings?: GossipTimings } | undefined;
  /** A reboot or shutdown job arrived (after its result was sent). */
  onReboot: () => void;
  onShutdown: () => void;
  /** Called instead of the controller URL in agent.json (the demo's loopback). */
  serverOverride?: string | undefined;
  log?: AgentLogger;
}

export interface VirtualOs {
  node: string;
  agent: Agent;
  gossip: AgentGossip | null;
  /** Dies as a crashed Pi does: no leave, no close frame. */
  crash(): Promise<void>;
  /** A clean shutdown: leave the group, close the socket. */
  stop(): Promise<void>;
}

export class VirtualOsError extends Error {
  override readonly name = 'VirtualOsError';
}

/** drover.* kernel arguments from a cmdline.txt. */
export function droverArgs(cmdline: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const w of cmdline.trim().split(/\s+/)) {
    const m = /^drover\.([a-z]+)=(.*)$/.exec(w);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

/** Runs the post-firmware boot of a virtual Pi whose TFTP boot succeeded. */
export async function bootVirtualOs(o: VirtualOsOptions): Promise<VirtualOs> {
  const log = o.log ?? silentLogger;
  if (!o.report.ok || !o.report.tftp?.cmdline) throw new VirtualOsError(`the firmware boot did not finish (${o.report.reason ?? 'no cmdline.txt'})`);
  const args = droverArgs(o.report.tftp.cmdline);
  if (!args.server || !args.token || args.token === 'none') throw new VirtualOsError('cmdline.txt carries no drover.server/drover.token: is the device accepted?');
  const server = o.serverOverride ?? args.server;
  const auth = { authorization: `Bearer ${args.token}` };
  const report = (phase: string, status: 'ok' | 'failed', message: string) =>
    fetch(`${server}/boot/v1/report`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ phase, status, message }) }).catch(() => undefined);

  // The boot config names the root filesystem to download. A virtual Pi has no use for it, and
  // the demo's image is a bare boot tree (which the config refuses): only 401/403 stop the boot.
  const cfgRes = await fetch(`${server}/boot/v1/config`, { headers: auth });
  let cfg: { image?: { id?: string; name?: string } } = {};
  if (cfgRes.status === 401 || cfgRes.status === 403) throw new VirtualOsError(`boot config: HTTP ${cfgRes.status} (the token in cmdline.txt is not accepted)`);
  if (cfgRes.ok) {
    cfg = (await cfgRes.json()) as typeof cfg;
    await report('config', 'ok', `image ${cfg.image?.name ?? '?'}`);
  } else log.debug({ status: cfgRes.status, body: (await cfgRes.text()).slice(0, 200) }, 'boot config refused; a virtual Pi boots without a root filesystem');

  const ovRes = await fetch(`${server}/boot/v1/overlay`, { headers: auth });
  if (!ovRes.ok) throw new VirtualOsError(`overlay: HTTP ${ovRes.status}`);
  const files = await tarFiles(gunzipSync(Buffer.from(await ovRes.arrayBuffer())));
  const agentJson = files.get('etc/drover/agent.json');
  if (!agentJson) throw new VirtualOsError('the overlay has no etc/drover/agent.json');
  const ac = JSON.parse(agentJson.toString('utf8')) as { server: string; node: string; token: string };
  await report('overlay', 'ok', `hostname ${files.get('etc/hostname')?.toString('utf8').trim() ?? '?'}`);
  await report('switch-root', 'ok', 'virtual OS');

  const agent = new Agent({
    server: o.serverOverride ?? ac.server,
    node: ac.node,
    token: ac.token,
    stateDir: o.stateDir,
    metrics: new SyntheticMetrics(o.metricsSeed, ac.node, o.bootNumber, { imageId: cfg.image?.id ?? null }),
    commands: { reboot: () => o.onReboot(), shutdown: () => o.onShutdown() },
    jobs: { powerDelayMs: 200 },
    client: { backoff: { baseMs: 200, capMs: 2000 } },
    log,
  });
  const gossip = o.gossip ? new AgentGossip(agent, { name: ac.node, bindAddr: o.gossip.bindAddr, bindPort: 0, ...(o.gossip.timings ? { timings: o.gossip.timings } : {}), log }) : null;
  await gossip?.start();
  await agent.start();
  let down = false;
  return {
    node: ac.node,
    agent,
    gossip,
    async crash() {
      if (down) return;
      down = true;
      await gossip?.crash();
      await agent.crash();
    },
    async stop() {
      if (down) return;
      down = true;
      await gossip?.stop();
      await agent.stop();
    },
  };
}
