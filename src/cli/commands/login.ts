import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { ApiClient, CliError, normalizeServer, readSavedLogin, saveLogin } from '../client.js';
import { printFields, printJson } from '../output.js';
import { action, bad, client, globals } from '../run.js';

export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/** Reads a secret from the terminal without echoing it. */
export function promptHidden(question: string): Promise<string> {
  if (!process.stdin.isTTY) return Promise.reject(bad('No terminal to ask for a password; use --password-stdin.'));
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    const out = rl as unknown as { _writeToOutput: (s: string) => void };
    process.stderr.write(question);
    out._writeToOutput = () => undefined;
    rl.question('', (answer) => {
      rl.close();
      process.stderr.write('\n');
      resolve(answer);
    });
  });
}

export function promptLine(question: string): Promise<string> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    rl.question(question, (a) => {
      rl.close();
      resolve(a.trim());
    });
  });
}

export function registerLogin(program: Command): void {
  program
    .command('login')
    .description('save a server address and token for later commands (~/.config/drover/cli.json, mode 0600)')
    .option('--token-file <file>', 'read the token from a file (e.g. DATA_DIR/initial-admin-token)')
    .option('--username <name>', 'log in as a dashboard user (asks for the password)')
    .option('--password-stdin', 'read the password from standard input')
    .action(
      action(async (opts: { tokenFile?: string; username?: string; passwordStdin?: boolean }, cmd: Command) => {
        const g = globals(cmd);
        const server = normalizeServer(g.server ?? process.env.DROVER_SERVER ?? readSavedLogin()?.server ?? 'http://127.0.0.1:8080');
        let token = g.token ?? (opts.tokenFile ? readFileSync(opts.tokenFile, 'utf8').trim() : undefined);
        if (!token && opts.username) {
          const password = opts.passwordStdin ? await readStdin() : await promptHidden(`Password for ${opts.username}: `);
          const anon = new ApiClient({ server }, false);
          const res = await anon.request<{ token: string; expiresAt: string }>('POST', '/api/v1/auth/login', { username: opts.username, password });
          token = res.token;
        }
        if (!token && !process.stdin.isTTY) token = (await readStdin()).trim();
        if (!token) token = (await promptLine('API token: ')).trim();
        if (!token) throw bad('No token given: pass --token, --token-file, --username or pipe the token on stdin.');
        const me = await new ApiClient({ server, token }).request<{ name: string; role: string }>('GET', '/api/v1/me');
        const file = saveLogin({ server, token });
        if (g.json) return printJson({ server, name: me.name, role: me.role, file });
        process.stdout.write(`Logged in to ${server} as ${me.name} (${me.role}); saved in ${file}\n`);
      }),
    );

  program
    .command('logout')
    .description('end a dashboard session token and forget the saved login')
    .action(
      action(async () => {
        const saved = readSavedLogin();
        if (saved) {
          try {
            const me = await new ApiClient(saved).request<{ userId: string | null }>('GET', '/api/v1/me');
            if (me.userId) await new ApiClient(saved).request('POST', '/api/v1/auth/logout');
          } catch (err) {
            if (!(err instanceof CliError)) throw err;
          }
        }
        saveLogin(null);
        process.stdout.write('Logged out.\n');
      }),
    );

  program
    .command('whoami')
    .description('show who the current token is')
    .action(
      action(async (_opts: unknown, cmd: Command) => {
        const c = client(cmd);
        const me = await c.request('GET', '/api/v1/me');
        if (globals(cmd).json) return printJson({ server: c.server, ...me });
        printFields([['server', c.server], ['name', me.name], ['role', me.role], ['device', me.deviceId], ['token id', me.tokenId]]);
      }),
    );
}
