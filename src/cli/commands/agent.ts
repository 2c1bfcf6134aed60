// `drover agent`: the device agent from the full package (the image ships the same code as one
// bundled file, drover-agent.mjs, whose flags are these too).
import type { Command } from 'commander';
import { agentCommandDescription, agentCommandOptions, runAgent, type AgentCliOptions } from '../../agent/cli.js';

export function registerAgent(program: Command): void {
  const cmd = program.command('agent').description(agentCommandDescription);
  for (const o of agentCommandOptions) cmd.option(o.flags, o.description);
  cmd.action(async (o: AgentCliOptions) => {
    await runAgent(o);
  });
}
