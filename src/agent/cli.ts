// `drover agent` and the standalone bundle share this: the option list (data, so commander in
// src/cli and node:util parseArgs in main.ts describe the same flags) and runAgent, which loads
// the config, runs the agent until SIGTERM/SIGINT and exits.
import { Agent } from './agent.js';
import { AgentGossip } from './gossip.js';
import { AgentConfigError, loadAgentConfig } from './config.js';
import { createAgentLogger, isLogLevel, type AgentLogger } from './log.js';

/** Flag values as both parsers hand them over (strings, camelCase keys as commander makes them). */
export interface AgentCliOptions {
  config?: string | undefined;
  server?: string | undefined;
  tokenFile?: string | undefined;
  node?: string | undefined;
  stateDir?: string | undefined;
  heartbeatMs?: string | undefined;
  procRoot?: string | undefined;
  logLevel?: string | undefined;
  rebootCommand?: string | undefined;
  shutdownCommand?: string | undefined;
  gossip?: string | undefined;
  gossipAdvertise?: string | undefined;
  gossipMdns?: string | undefined;
}

export interface AgentOptionSpec {
  /** Commander-style flags, e.g. `--token-file <path>`. */
  flags: string;
  /** The key in AgentCliOptions (commander's camelCase of the long flag). */
  key: keyof AgentCliOptions;
  description: string;
}

export const agentCommandDescription =
  'run the device agent: report metrics to the controller, keep them while offline, run jobs (normally started by drover-agent.service)';

/**
 * The agent's flags. No defaults are given to the parser on purpose: the config loader applies
 * them, and can then tell "--config given" (a missing file is an error) from the default path.
 */
export const agentCommandOptions: readonly AgentOptionSpec[] = [
  { flags: '--config <file>', key: 'config', description: 'agent config written by the controller (default /etc/drover/agent.json)' },
  { flags: '--server <url>', key: 'server', description: 'controller URL, http://host:port (overrides the config)' },
  { flags: '--token-file <file>', key: 'tokenFile', description: 'read the device token from this file (overrides the config)' },
  { flags: '--node <id>', key: 'node', description: 'device id (overrides the config)' },
  { flags: '--state-dir <dir>', key: 'stateDir', description: 'buffer of unsent samples (default /run/drover-agent)' },
  { flags: '--heartbeat-ms <ms>', key: 'heartbeatMs', description: "sampling interval until the controller's welcome sets it (default 10000)" },
  { flags: '--proc-root <dir>', key: 'procRoot', description: 'read proc/, sys/ and etc/drover/image-id under this root (default /; for tests)' },
  { flags: '--log-level <level>', key: 'logLevel', description: 'debug, info, warn, error or silent (default info); JSON lines on stderr' },
  { flags: '--gossip <host:port|off>', key: 'gossip', description: 'where the gossip member listens (UDP and TCP; default 0.0.0.0:7946), or off' },
  { flags: '--gossip-advertise <addr[:port]>', key: 'gossipAdvertise', description: 'the address peers use to reach this member (default: the listen address, or the first non-loopback IPv4)' },
  { flags: '--gossip-mdns <ipv4>', key: 'gossipMdns', description: 'also find peers by mDNS (_drover._udp), only on the interface with this IPv4 address' },
  { flags: '--reboot-command <cmd>', key: 'rebootCommand', description: 'what a reboot job runs, words split on spaces (default "systemctl reboot")' },
  { flags: '--shutdown-command <cmd>', key: 'shutdownCommand', description: 'what a shutdown job runs (default "systemctl poweroff")' },
];

/** sysexits EX_CONFIG: the unit does not restart on it (RestartPreventExitStatus=78). */
export const EXIT_CONFIG = 78;
const STOP_DEADLINE_MS = 5000;

/** Runs the agent until a signal stops it; exits the process (78 for a config error). */
export async function runAgent(opts: AgentCliOptions): Promise<never> {
  const level = opts.logLevel ?? 'info';
  if (!isLogLevel(level)) return fail(createAgentLogger(), `--log-level must be debug, info, warn, error or silent, not "${level}".`);
  const log = createAgentLogger(level);

  let agent: Agent;
  let gossip: AgentGossip | null = null;
  try {
    const cfg = await loadAgentConfig({
      config: opts.config,
      server: opts.server,
      tokenFile: opts.tokenFile,
      node: opts.node,
      stateDir: opts.stateDir,
      heartbeatMs: opts.heartbeatMs,
      procRoot: opts.procRoot,
      gossip: opts.gossip,
      gossipAdvertise: opts.gossipAdvertise,
      gossipMdns: opts.gossipMdns,
    });
    for (const w of cfg.warnings) log.warn({}, w);
    const commands: { reboot?: string[]; shutdown?: string[] } = {};
    if (opts.rebootCommand !== undefined) commands.reboot = words(opts.rebootCommand, '--reboot-command');
    if (opts.shutdownCommand !== undefined) commands.shutdown = words(opts.shutdownCommand, '--shutdown-command');
    agent = new Agent({
      server: cfg.server,
      node: cfg.node,
      token: cfg.token,
      stateDir: cfg.stateDir,
      heartbeatMs: cfg.heartbeatMs,
      procRoot: cfg.procRoot,
      commands,
      log,
    });
    if (cfg.gossip) gossip = new AgentGossip(agent, { name: cfg.node, ...cfg.gossip, log });
  } catch (err) {
    if (err instanceof AgentConfigError) return fail(log, err.message);
    throw err;
  }

  try {
    // Gossip first, so the first hello already carries its address.
    await gossip?.start();
    await agent.start();
  } catch (err) {
    // Not a config error: systemd restarts the agent and it tries again.
    return fail(log, `The agent cannot start: ${(err as Error).message}`, 1);
  }

  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      // A second signal means "now": the buffer is written on every sample anyway.
      process.exit(130);
    }
    stopping = true;
    log.info({ signal }, 'stopping');
    const deadline = setTimeout(() => {
      log.warn({ deadlineMs: STOP_DEADLINE_MS }, 'stop took too long; exiting');
      process.exit(0);
    }, STOP_DEADLINE_MS);
    deadline.unref();
    Promise.all([gossip?.stop(), agent.stop()]).then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err: (err as Error).message }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return new Promise<never>(() => {});
}

function fail(log: AgentLogger, message: string, code = EXIT_CONFIG): never {
  log.error({}, message);
  // Also plain text, for someone running the agent by hand.
  if (process.stderr.isTTY) process.stderr.write(`drover agent: ${message}\n`);
  process.exit(code);
}

function words(s: string, flag: string): string[] {
  const w = s.trim().split(/\s+/).filter(Boolean);
  if (w.length === 0) throw new AgentConfigError(`${flag} must name a command.`);
  return w;
}
