import { Option, type Command } from 'commander';
import { describeConfig, loadConfig, type Config } from '../../config/load.js';
import { SETTINGS } from '../../config/settings.js';
import { startServer } from '../../server/serve.js';
import { printJson, printTable } from '../output.js';
import { startDemo } from '../../demo/demo.js';
import { action, bad, globals } from '../run.js';

/** Adds one flag per setting (docs/config.md), so serve and config print accept the same ones. */
function withSettingFlags(cmd: Command): Command {
  cmd.option('--config <file>', 'config file (YAML or JSON); default /etc/drover/config.yaml as root, else ~/.config/drover/config.yaml');
  for (const s of SETTINGS) cmd.addOption(new Option(`${s.flag} <value>`, s.description.split('. ')[0]!));
  return cmd;
}

export function configFromFlags(opts: Record<string, unknown>): Config {
  const flags: Record<string, string | undefined> = {};
  for (const s of SETTINGS) flags[s.key] = opts[s.key] as string | undefined;
  return loadConfig({ flags, configFile: opts.config as string | undefined });
}

export function registerDemo(program: Command): void {
  withSettingFlags(program.command('demo').description('a controller and N virtual Pis (mixed models) on a private network it creates; watch them arrive in the dashboard. Ctrl-C removes everything it created'))
    .option('--nodes <n>', 'how many virtual Pis', '12')
    .option('--loopback', 'boot the virtual Pis over loopback TFTP even as root (no network namespaces)')
    .option('--accept-after <ms>', 'accept each new Pi after this long, as an operator would (0: leave them incoming)', '3000')
    .action(
      action(async (opts: Record<string, unknown>) => {
        const nodes = Number(opts.nodes);
        if (!Number.isInteger(nodes) || nodes < 1 || nodes > 200) throw bad('--nodes takes 1 to 200.');
        const demo = await startDemo(configFromFlags(opts), { nodes, loopback: Boolean(opts.loopback), acceptAfterMs: Number(opts.acceptAfter) });
        let stopping = false;
        const stop = () => {
          if (stopping) return;
          stopping = true;
          process.stderr.write('demo: stopping and removing everything it created…\n');
          const force = setTimeout(() => process.exit(1), 15_000);
          force.unref();
          void demo.stop().then(() => process.exit(0));
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      }),
    );
}

export function registerServe(program: Command): void {
  withSettingFlags(program.command('serve').description('run the controller: API, dashboard and (later) netboot services')).action(
    action(async (opts: Record<string, unknown>) => {
      const config = configFromFlags(opts);
      const server = await startServer(config);
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        server.log.info({ signal }, 'shutting down');
        const force = setTimeout(() => process.exit(1), 10_000);
        force.unref();
        void server.close().then(() => process.exit(0));
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    }),
  );

  const config = program.command('config').description('inspect the configuration');
  withSettingFlags(config.command('print').description('print the effective configuration of `drover serve` and where each value came from')).action(
    action(async (opts: Record<string, unknown>, cmd: Command) => {
      const c = configFromFlags(opts);
      const shown = describeConfig(c);
      if (globals(cmd).json) return printJson(Object.fromEntries(Object.entries(shown).map(([k, v]) => [k, v.value])));
      process.stdout.write(`config file: ${c.configFile ?? '(none)'}\n`);
      printTable(
        Object.entries(shown).map(([k, v]) => ({ setting: k, value: v.value === null ? '' : String(v.value), source: v.source })),
        ['setting', 'value', 'source'],
      );
    }),
  );
}
