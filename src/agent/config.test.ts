import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { AgentConfigError, DEFAULT_CONFIG_PATH, loadAgentConfig, wsUrl } from './config.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'drover-agent-config-'));
  dirs.push(d);
  return d;
}

function configFile(content: unknown, mode = 0o600): string {
  const p = join(tempDir(), 'agent.json');
  writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content), { mode });
  return p;
}

const GOOD = { server: 'http://10.0.0.1:8080', node: 'dev_abc', serial: '1a2b3c4d', token: 'secret-token' };

describe('loadAgentConfig', () => {
  it('loads the overlay file with defaults', async () => {
    const path = configFile(GOOD);
    const c = await loadAgentConfig({ config: path });
    assert.deepEqual(c, { ...GOOD, stateDir: '/run/drover-agent', heartbeatMs: 10_000, procRoot: '/', gossip: { bindAddr: '0.0.0.0', bindPort: 7946 }, configPath: path, warnings: [] });
  });

  it('gossip: on by default, set by the file, overridden or turned off by flags, checked', async () => {
    const file = configFile({ ...GOOD, gossip: { listen: '192.0.2.7:7000', advertise: '198.51.100.1:7001', mdns: '192.0.2.7' } });
    assert.deepEqual((await loadAgentConfig({ config: file })).gossip, { bindAddr: '192.0.2.7', bindPort: 7000, advertiseAddr: '198.51.100.1', advertisePort: 7001, mdnsInterface: '192.0.2.7' });
    assert.deepEqual((await loadAgentConfig({ config: file, gossip: '127.0.0.1:0', gossipAdvertise: '127.0.0.2' })).gossip, { bindAddr: '127.0.0.1', bindPort: 0, advertiseAddr: '127.0.0.2', mdnsInterface: '192.0.2.7' });
    assert.equal((await loadAgentConfig({ config: file, gossip: 'off' })).gossip, null);
    assert.equal((await loadAgentConfig({ config: configFile({ ...GOOD, gossip: false }) })).gossip, null);
    await assert.rejects(loadAgentConfig({ config: configFile(GOOD), gossip: 'localhost' }), /IPv4 address and port/);
    await assert.rejects(loadAgentConfig({ config: configFile(GOOD), gossip: '1.2.3.4:70000' }), /IPv4 address and port/);
    await assert.rejects(loadAgentConfig({ config: configFile(GOOD), gossipMdns: 'eth0' }), /IPv4 address of the one interface/);
    await assert.rejects(loadAgentConfig({ config: configFile({ ...GOOD, gossip: { port: 1 } }) }), /gossip\.port" .* is not a setting/);
    await assert.rejects(loadAgentConfig({ config: configFile({ ...GOOD, gossip: 'yes' }) }), /must be false or an object/);
  });

  it('flags override the file; the token file is trimmed', async () => {
    const path = configFile(GOOD);
    const tokenFile = join(tempDir(), 'token');
    writeFileSync(tokenFile, 'other-token\n', { mode: 0o600 });
    const c = await loadAgentConfig({ config: path, server: 'https://ctl.example:443', node: 'dev_x', tokenFile, stateDir: '/tmp/s', heartbeatMs: '2500', procRoot: '/tmp/p' });
    assert.equal(c.server, 'https://ctl.example:443');
    assert.equal(c.node, 'dev_x');
    assert.equal(c.token, 'other-token');
    assert.equal(c.stateDir, '/tmp/s');
    assert.equal(c.heartbeatMs, 2500);
    assert.equal(c.procRoot, '/tmp/p');
  });

  it('flags alone suffice when the default file is absent; an explicit missing --config is an error', async () => {
    const tokenFile = join(tempDir(), 'token');
    writeFileSync(tokenFile, 't0k', { mode: 0o600 });
    const flags = { server: 'http://h:1', node: 'n', tokenFile };
    const c = await loadAgentConfig(flags);
    if (!existsSync(DEFAULT_CONFIG_PATH)) assert.equal(c.configPath, null); // (unless this machine is a device)
    assert.equal(c.token, 't0k');
    await assert.rejects(loadAgentConfig({ ...flags, config: '/nonexistent/agent.json' }), (e: Error) => e instanceof AgentConfigError && /does not exist/.test(e.message));
    await assert.rejects(loadAgentConfig({ config: '/nonexistent/agent.json' }), /overlay/);
  });

  it('says what is wrong with an invalid file', async () => {
    await assert.rejects(loadAgentConfig({ config: configFile('{"server": ') }), /not valid JSON/);
    await assert.rejects(loadAgentConfig({ config: configFile('[1,2]') }), /must be a JSON object/);
    await assert.rejects(loadAgentConfig({ config: configFile({ ...GOOD, token: '' }) }), /No device token/);
    await assert.rejects(loadAgentConfig({ config: configFile({ ...GOOD, token: 'a b' }) }), /No device token/);
    await assert.rejects(loadAgentConfig({ config: configFile({ ...GOOD, server: undefined }) }), /No controller URL/);
    await assert.rejects(loadAgentConfig({ config: configFile({ ...GOOD, server: 'ftp://x' }) }), /must start with http/);
    await assert.rejects(loadAgentConfig({ config: configFile({ ...GOOD, server: 'not a url' }) }), /not a URL/);
    await assert.rejects(loadAgentConfig({ config: configFile({ ...GOOD, node: 7 }) }), /No device id/);
    await assert.rejects(loadAgentConfig({ config: configFile(GOOD), heartbeatMs: 'fast' }), /--heartbeat-ms/);
    await assert.rejects(loadAgentConfig({ config: configFile(GOOD), heartbeatMs: 5 }), /--heartbeat-ms/);
    await assert.rejects(loadAgentConfig({ config: configFile(GOOD), tokenFile: '/nonexistent/token' }), /token file/);
  });

  it('never puts the token in an error message', async () => {
    await assert.rejects(loadAgentConfig({ config: configFile({ ...GOOD, server: 'bad' }) }), (e: Error) => !e.message.includes('secret-token'));
  });

  it('warns when the token file is readable by others', async () => {
    const c = await loadAgentConfig({ config: configFile(GOOD, 0o644) });
    assert.equal(c.warnings.length, 1);
    assert.match(c.warnings[0]!, /readable by others.*0600/);
  });
});

describe('wsUrl', () => {
  it('maps http(s) to ws(s) and appends the agent path, keeping a prefix', () => {
    assert.equal(wsUrl('http://10.0.0.1:8080'), 'ws://10.0.0.1:8080/agent/v1/ws');
    assert.equal(wsUrl('https://ctl.example/'), 'wss://ctl.example/agent/v1/ws');
    assert.equal(wsUrl('https://ctl.example/drover/'), 'wss://ctl.example/drover/agent/v1/ws');
    assert.equal(wsUrl('ws://h:1?x=1'), 'ws://h:1/agent/v1/ws');
  });
});
