// Entry of the standalone agent bundle (dist/agent/drover-agent.mjs). Flags are parsed with
// node:util rather than commander, so the bundle carries only the agent and ws.
import { parseArgs } from 'node:util';
import { agentCommandDescription, agentCommandOptions, runAgent, type AgentCliOptions } from './cli.js';
import { AGENT_VERSION } from './version.js';

const EX_USAGE = 64;

function usage(): string {
  const rows = agentCommandOptions.map((o) => [o.flags, o.description] as const);
  rows.push(['-h, --help', 'show this help'], ['-V, --version', 'print the version']);
  const w = Math.max(...rows.map(([f]) => f.length));
  return `Usage: drover-agent [options]\n\n${agentCommandDescription}\n\nOptions:\n${rows.map(([f, d]) => `  ${f.padEnd(w)}  ${d}`).join('\n')}\n`;
}

/** `--token-file <file>` → `token-file`. */
function longName(flags: string): string {
  return /^--([a-z0-9-]+)/.exec(flags)![1]!;
}

export async function main(argv: string[]): Promise<void> {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'V' } };
  for (const o of agentCommandOptions) options[longName(o.flags)] = { type: 'string' };
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false }));
  } catch (err) {
    process.stderr.write(`drover-agent: ${(err as Error).message}\n\n${usage()}`);
    process.exit(EX_USAGE);
  }
  if (values.help) {
    process.stdout.write(usage());
    return;
  }
  if (values.version) {
    process.stdout.write(`${AGENT_VERSION}\n`);
    return;
  }
  const opts: AgentCliOptions = {};
  for (const o of agentCommandOptions) {
    const v = values[longName(o.flags)];
    if (typeof v === 'string') opts[o.key] = v;
  }
  await runAgent(opts);
}

await main(process.argv.slice(2));
