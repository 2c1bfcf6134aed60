// `drover`: one binary, subcommands. Only this file reads argv and decides the exit code.
import { Command, CommanderError } from 'commander';
import { VERSION } from '../version.js';
import { registerAgent } from './commands/agent.js';
import { registerGroup, registerImage, registerToken, registerUser } from './commands/admin.js';
import { registerEvents } from './commands/events.js';
import { registerLogin } from './commands/login.js';
import { registerNetboot } from './commands/netboot.js';
import { registerNode } from './commands/node.js';
import { registerNodeHealth, registerPower } from './commands/health.js';
import { registerSdcard } from './commands/images.js';
import { registerDemo, registerServe } from './commands/serve.js';
import { registerVirtualPi } from './commands/virtual-pi.js';
import { EXIT } from './output.js';

export function buildProgram(): Command {
  const program = new Command('drover')
    .description('Drover: network-boot, image, watch and heal fleets of Raspberry Pis')
    .version(VERSION)
    .option('--server <url>', 'controller URL (env DROVER_SERVER, or the saved login)')
    .option('--token <token>', 'API token (env DROVER_TOKEN, or the saved login)')
    .option('--json', 'machine-readable JSON output')
    .showHelpAfterError()
    .exitOverride();
  registerServe(program);
  registerDemo(program);
  registerLogin(program);
  registerNode(program);
  registerNodeHealth(program);
  registerPower(program);
  registerGroup(program);
  registerSdcard(program);
  registerImage(program);
  registerToken(program);
  registerUser(program);
  registerEvents(program);
  registerVirtualPi(program);
  registerNetboot(program);
  registerAgent(program);
  return program;
}

try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version are not failures; everything else commander rejects is a usage error.
    process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  } else {
    throw err;
  }
}
