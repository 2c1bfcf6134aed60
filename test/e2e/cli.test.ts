// The `drover` binary as a user runs it: a real `drover serve` process and CLI invocations,
// checking output, saved login, and exit codes that scripts can trust.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../helpers/postgres.js';
import { drover, droverArgv, spawnServer, type ServerProcess } from '../helpers/server.js';

describe('drover CLI against a running controller', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'drover-cli-'));
  const dataDir = join(tmp, 'data');
  const home = join(tmp, 'home');
  let server: ServerProcess;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    server = await spawnServer({ dataDir });
    env = { XDG_CONFIG_HOME: join(home, '.config'), HOME: home, DROVER_SERVER: server.url, DROVER_TOKEN: server.adminToken() };
  });
  after(async () => {
    await server?.kill9();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('first start prints the admin token once and saves it with mode 0600', () => {
    const token = server.adminToken();
    assert.match(token, /^drv_[\w-]{43}$/);
    assert.ok(server.stderr().includes(token), 'printed for the person starting it');
    assert.ok(!server.stdout().includes(token), 'never in the structured log');
    assert.equal(statSync(join(dataDir, 'initial-admin-token')).mode & 0o777, 0o600);
  });

  it('lists nodes with the initial admin token, as a table and as JSON', () => {
    let r = drover(['node', 'ls'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /No devices/);
    assert.equal(drover(['node', 'add', '10000000abcdef01', '--mac', 'dc:a6:32:01:36:c2', '--hostname', 'n1', '--label', 'rack=a1'], env).code, 0);
    assert.equal(drover(['node', 'add', '1a2b3c4d', '--incoming', '--model', 'Raspberry Pi 4 Model B'], env).code, 0);
    r = drover(['node', 'ls'], env);
    assert.match(r.stdout.split('\n')[0]!, /^ID\s+SERIAL\s+HOSTNAME\s+STATE/);
    assert.match(r.stdout, /abcdef01\s+n1\s+accepted/);
    r = drover(['--json', 'node', 'ls', '--state', 'incoming'], env);
    assert.equal(r.code, 0);
    assert.deepEqual(r.json.items.map((d: any) => d.serial), ['1a2b3c4d']);
  });

  it('accepts, labels, shows, moves groups and lists events', () => {
    assert.equal(drover(['node', 'accept', '1a2b3c4d'], env).code, 0);
    assert.match(drover(['node', 'label', 'n1', 'role=ci', 'rack-'], env).stdout, /abcdef01: role=ci/);
    assert.equal(drover(['group', 'create', 'ci-farm', '--description', 'runners', '--auto-accept', 'yes'], env).code, 0);
    assert.equal(drover(['node', 'assign', 'n1', '--group', 'ci-farm'], env).code, 0);
    const show = drover(['--json', 'node', 'show', 'dc:a6:32:01:36:c2'], env);
    assert.equal(show.json.hostname, 'n1');
    assert.deepEqual(show.json.labels, { role: 'ci' });
    assert.ok(show.json.groupId);
    assert.ok(show.json.events.some((e: any) => e.type === 'device.updated'));
    const events = drover(['events', '--type', 'device.*'], env);
    assert.match(events.stdout, /device\.created/);
    assert.match(events.stdout, /device\.accepted/);
  });

  it('exits with documented codes and prints the error code and fix', async () => {
    const nf = drover(['node', 'show', 'nope'], env);
    assert.equal(nf.code, 4);
    assert.match(nf.stderr, /error DROVER_DEVICE_NOT_FOUND: .*\n\s+fix: /);
    assert.equal(drover(['node', 'reject', 'n1'], env).code, 5, 'invalid transition is a conflict');
    assert.equal(drover(['node', 'add', 'zz'], env).code, 6, 'invalid input');
    assert.equal(drover(['node', 'frobnicate'], env).code, 2, 'usage');
    assert.equal(drover(['node', 'ls'], { ...env, DROVER_TOKEN: `drv_${'x'.repeat(43)}` }).code, 3, 'auth');
    const viewer = drover(['token', 'create', '--name', 'v', '--role', 'viewer'], env).stdout.trim();
    const denied = drover(['node', 'add', 'eeee0001'], { ...env, DROVER_TOKEN: viewer });
    assert.equal(denied.code, 3);
    assert.match(denied.stderr, /DROVER_AUTH_FORBIDDEN/);
    const down = drover(['node', 'ls'], { ...env, DROVER_SERVER: `http://127.0.0.1:${await freePort()}` });
    assert.equal(down.code, 7);
    assert.match(down.stderr, /DROVER_CLI_SERVER_UNREACHABLE/);
    const json = drover(['--json', 'node', 'show', 'nope'], env);
    assert.equal(JSON.parse(json.stderr).code, 'DROVER_DEVICE_NOT_FOUND');
    const noServer = drover(['node', 'ls'], { XDG_CONFIG_HOME: join(tmp, 'empty'), HOME: join(tmp, 'empty') });
    assert.match(noServer.stderr, /DROVER_CLI_NO_SERVER/);
  });

  it('saves a login (0600) and uses it without flags or env; user login with a password', () => {
    const noEnv = { XDG_CONFIG_HOME: env.XDG_CONFIG_HOME, HOME: home };
    const tokenFile = join(dataDir, 'initial-admin-token');
    const login = drover(['login', '--server', server.url, '--token-file', tokenFile], noEnv);
    assert.equal(login.code, 0, login.stderr);
    const saved = join(env.XDG_CONFIG_HOME!, 'drover', 'cli.json');
    assert.equal(statSync(saved).mode & 0o777, 0o600);
    assert.equal(JSON.parse(readFileSync(saved, 'utf8')).server, server.url);
    assert.match(drover(['whoami'], noEnv).stdout, /role:\s+admin/);
    assert.equal(drover(['user', 'add', 'ada', '--role', 'operator', '--password-stdin'], noEnv, 'correct horse battery\n').code, 0);
    const asAda = drover(['login', '--server', server.url, '--username', 'ada', '--password-stdin'], noEnv, 'correct horse battery\n');
    assert.equal(asAda.code, 0, asAda.stderr);
    assert.match(drover(['whoami'], noEnv).stdout, /role:\s+operator/);
    assert.equal(drover(['token', 'ls'], noEnv).code, 3, 'an operator may not list tokens');
    assert.equal(drover(['logout'], noEnv).code, 0);
    assert.equal(drover(['node', 'ls'], noEnv).code, 2, 'after logout no server is known');
  });

  it('follows the live event stream', async () => {
    const child = spawn(process.execPath, [...droverArgv(), 'events', '--follow', '--limit', '1'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(drover(['node', 'add', 'feed0001'], env).code, 0);
      const deadline = Date.now() + 10_000;
      while (!out.includes('device.created') || !out.includes('feed0001')) {
        if (Date.now() > deadline) assert.fail(`no streamed event; got: ${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      child.kill('SIGINT');
    }
  });

  it('config print shows values and their sources', () => {
    const r = drover(['config', 'print', '--listen', '127.0.0.1:9999'], { DROVER_LOG_LEVEL: 'debug', HOME: home, DROVER_CONFIG: '' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /listen\s+127\.0\.0\.1:9999\s+flag/);
    assert.match(r.stdout, /logLevel\s+debug\s+env/);
    const bad = drover(['config', 'print', '--listen', 'nope'], { HOME: home });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /DROVER_CONFIG_INVALID/);
  });

  it('restarts without a new token and stops cleanly on SIGTERM', async () => {
    const before = server.adminToken();
    assert.equal(await server.stop(), 0);
    server = await spawnServer({ dataDir, port: server.port });
    assert.equal(server.adminToken(), before);
    assert.ok(!server.stderr().includes('First start'));
    assert.equal(drover(['node', 'ls'], env).code, 0);
    // A second controller on the same port fails with a coded error, not a stack trace.
    const clash = drover(['serve', '--data-dir', join(tmp, 'other'), '--listen', `127.0.0.1:${server.port}`, '--log-level', 'silent'], {});
    assert.notEqual(clash.code, 0);
    assert.match(clash.stderr, /DROVER_LISTEN_FAILED/);
  });
});
