// Power settings: every driver's config is checked strictly (unknown driver, missing fields,
// wrong types, unknown keys, impossible combinations), each refusal names the field, and a
// device's settings override its group's key by key.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DroverError } from '../domain/errors.js';
import { createPowerDriver, mergePowerConfig, parsePowerConfig, POWER_DRIVERS } from './index.js';

const refusedFor = (field: string) => (e: unknown) => {
  assert.ok(e instanceof DroverError, `not a DroverError: ${String(e)}`);
  assert.equal(e.code, 'DROVER_POWER_CONFIG');
  assert.equal(e.details?.field, field, e.message);
  assert.ok(e.message.startsWith(`${field}: `), e.message);
  return true;
};

describe('parsePowerConfig', () => {
  const refused: [string, unknown, string][] = [
    ['not an object', 'exec', 'power'],
    ['an array', [{ driver: 'exec' }], 'power'],
    ['no driver', { command: ['/bin/true'] }, 'power.driver'],
    ['an unknown driver', { driver: 'ipmi', host: 'x' }, 'power.driver'],
    ['exec without command', { driver: 'exec' }, 'power.command'],
    ['exec with a string command', { driver: 'exec', command: '/usr/local/bin/ppi' }, 'power.command'],
    ['exec with an empty command', { driver: 'exec', command: [] }, 'power.command'],
    ['an unknown key', { driver: 'exec', command: ['/bin/ppi'], colour: 'red' }, 'power.colour'],
    ['another driver\'s key', { driver: 'exec', command: ['/bin/ppi'], host: 'x' }, 'power.host'],
    ['a timeout of the wrong type', { driver: 'exec', command: ['/bin/ppi'], timeoutMs: '10s' }, 'power.timeoutMs'],
    ['a timeout too small', { driver: 'exec', command: ['/bin/ppi'], timeoutMs: 5 }, 'power.timeoutMs'],
    ['a negative cycle delay', { driver: 'exec', command: ['/bin/ppi'], cycleDelayMs: -1 }, 'power.cycleDelayMs'],
    ['an unknown piId placeholder', { driver: 'exec', command: ['/bin/ppi'], piId: '{{mac}}' }, 'power.piId'],
    ['an unknown preset', { driver: 'http', preset: 'sonoff', host: 'plug' }, 'power.preset'],
    ['a preset without host', { driver: 'http', preset: 'shelly-gen1' }, 'power.host'],
    ['a host without preset', { driver: 'http', host: 'plug', url: 'http://plug/{{action}}' }, 'power.host'],
    ['http without URLs', { driver: 'http' }, 'power.on.url'],
    ['http with only an on URL', { driver: 'http', on: { url: 'http://relay/on' } }, 'power.off.url'],
    ['an unknown key inside on', { driver: 'http', url: 'http://relay/{{action}}', on: { url: 'http://relay/on', colour: 1 } }, 'power.on.colour'],
    ['a header that is not a string', { driver: 'http', url: 'http://relay/{{action}}', headers: { 'x-n': 1 } }, 'power.headers.x-n'],
    ['a bad method', { driver: 'http', url: 'http://relay/{{action}}', method: 'DELETE' }, 'power.method'],
    ['a regex that does not compile', { driver: 'http', url: 'http://relay/{{action}}', expectBody: '(' }, 'power.expectBody'],
    ['an unknown URL placeholder', { driver: 'http', url: 'http://relay/{{outlet}}/{{action}}' }, 'power.url'],
    ['{{port}} without port', { driver: 'http', url: 'http://relay/{{port}}/{{action}}' }, 'power.port'],
    ['credentials in a URL', { driver: 'http', url: 'http://admin:pw@relay/{{action}}' }, 'power.url'],
    ['not a URL', { driver: 'http', url: 'relay/{{action}}' }, 'power.url'],
    ['status without patterns', { driver: 'http', url: 'http://relay/{{action}}', status: { url: 'http://relay/state' } }, 'power.status.onPattern'],
    ['auth on Shelly Gen2 (digest)', { driver: 'http', preset: 'shelly-gen2', host: 'plug', auth: { user: 'admin', password: 'pw' } }, 'power.auth'],
    ['auth and an Authorization header', { driver: 'http', url: 'http://relay/{{action}}', auth: { user: 'a', password: 'b' }, headers: { Authorization: 'Bearer x' } }, 'power.auth'],
    ['uhubctl without port', { driver: 'uhubctl', location: '1-1' }, 'power.port'],
    ['uhubctl with a port name', { driver: 'uhubctl', location: '1-1', port: 'two' }, 'power.port'],
    ['a bad hub location', { driver: 'uhubctl', location: '1-1; reboot', port: 2 }, 'power.location'],
    ['snmp-poe without ifPort', { driver: 'snmp-poe', host: 'sw1', community: 'c' }, 'power.ifPort'],
    ['snmp-poe v2c without community', { driver: 'snmp-poe', host: 'sw1', ifPort: 3 }, 'power.community'],
    ['community and communityFile', { driver: 'snmp-poe', host: 'sw1', ifPort: 3, community: 'c', communityFile: '/etc/c' }, 'power.communityFile'],
    ['a relative communityFile', { driver: 'snmp-poe', host: 'sw1', ifPort: 3, communityFile: 'c.txt' }, 'power.communityFile'],
    ['a host with a port', { driver: 'snmp-poe', host: 'sw1:1161', ifPort: 3, community: 'c' }, 'power.host'],
    ['a v3 setting on v2c', { driver: 'snmp-poe', host: 'sw1', ifPort: 3, community: 'c', user: 'u' }, 'power.user'],
    ['v3 without user', { driver: 'snmp-poe', host: 'sw1', ifPort: 3, version: 'v3' }, 'power.user'],
    ['v3 privacy without authentication', { driver: 'snmp-poe', host: 'sw1', ifPort: 3, version: 'v3', user: 'u', privPassword: 'privpass1' }, 'power.authPassword'],
    ['tpi api without host', { driver: 'tpi', node: 1 }, 'power.host'],
    ['tpi node 5', { driver: 'tpi', node: 5, host: 'bmc' }, 'power.node'],
    ['tpi cli with a TLS setting', { driver: 'tpi', mode: 'cli', node: 1, insecureTls: true }, 'power.insecureTls'],
    ['a tpi password without user', { driver: 'tpi', host: 'bmc', node: 1, password: 'turing' }, 'power.user'],
    ['clusterhat node 0', { driver: 'clusterhat', node: 0 }, 'power.node'],
  ];
  for (const [what, raw, field] of refused) {
    it(`refuses ${what}, naming ${field}`, () => assert.throws(() => parsePowerConfig(raw), refusedFor(field)));
  }

  it('accepts one config of each driver and returns it unchanged (defaults stay out)', () => {
    const good = [
      { driver: 'exec', command: ['/usr/local/bin/ppi', '--board', '2'], piId: 'rack1-{{serial}}', timeoutMs: 5000, cycleDelayMs: 4000 },
      { driver: 'http', preset: 'tasmota', host: 'plug-7.lan', port: 2, auth: { user: 'admin', passwordFile: '/etc/drover/tasmota' } },
      { driver: 'http', url: 'http://relay.lan/out/{{port}}/{{action}}', port: 'A', method: 'POST', body: '{"id":"{{deviceId}}"}', headers: { 'content-type': 'application/json' }, expectStatus: [200, 204], status: { url: 'http://relay.lan/out/{{port}}', onPattern: 'ON' } },
      { driver: 'uhubctl', location: '1-1.3', port: 2, exact: true },
      { driver: 'snmp-poe', host: '10.0.0.2', port: 161, communityFile: '/etc/drover/poe', group: 1, ifPort: 12 },
      { driver: 'snmp-poe', host: '[fd00::2]', version: 'v3', user: 'drover', authProtocol: 'SHA-256', authPassword: 'authpass1', privProtocol: 'AES', privPasswordFile: '/etc/drover/priv', ifPort: 4 },
      { driver: 'tpi', node: 2, host: 'turingpi.lan', user: 'root', passwordFile: '/etc/drover/bmc', caFile: '/etc/drover/bmc.pem', cycleMode: 'reset' },
      { driver: 'tpi', mode: 'cli', node: 4 },
      { driver: 'clusterhat', node: 3, binary: '/usr/sbin/clusterctrl' },
    ];
    for (const raw of good) assert.deepEqual(parsePowerConfig(raw), raw);
    assert.deepEqual(POWER_DRIVERS, ['exec', 'http', 'uhubctl', 'snmp-poe', 'tpi', 'clusterhat']);
  });

  it('does not keep a reference to the caller\'s object', () => {
    const raw = { driver: 'exec', command: ['/bin/ppi'] };
    const cfg = parsePowerConfig(raw);
    raw.command.push('--evil');
    assert.deepEqual(cfg, { driver: 'exec', command: ['/bin/ppi'] });
  });

  it('builds a driver named after each config', () => {
    for (const raw of [
      { driver: 'exec', command: ['/bin/ppi'] },
      { driver: 'http', preset: 'shelly-gen1', host: 'plug' },
      { driver: 'uhubctl', location: '1-1', port: 1 },
      { driver: 'snmp-poe', host: 'sw', community: 'c', ifPort: 1 },
      { driver: 'tpi', host: 'bmc', node: 1 },
      { driver: 'clusterhat', node: 1 },
    ]) {
      assert.equal(createPowerDriver(parsePowerConfig(raw)).name, raw.driver);
    }
  });
});

describe('mergePowerConfig', () => {
  const group = { driver: 'snmp-poe', host: 'switch-1.lan', communityFile: '/etc/drover/poe', cycleDelayMs: 5000 };

  it('is null when neither the group nor the device sets power', () => {
    assert.equal(mergePowerConfig(undefined, undefined), null);
    assert.equal(mergePowerConfig(null, undefined), null);
  });

  it('lets the device add and override keys of its group', () => {
    assert.deepEqual(mergePowerConfig(group, { ifPort: 12 }), { ...group, ifPort: 12 });
    assert.deepEqual(mergePowerConfig(group, { ifPort: 12, cycleDelayMs: 8000 }), { ...group, ifPort: 12, cycleDelayMs: 8000 });
  });

  it('drops a group key the device sets to null', () => {
    assert.deepEqual(mergePowerConfig({ ...group, ifPort: 1, timeoutMs: 3000 }, { timeoutMs: null }), { ...group, ifPort: 1 });
  });

  it('starts afresh when the device names another driver', () => {
    assert.deepEqual(mergePowerConfig(group, { driver: 'clusterhat', node: 2 }), { driver: 'clusterhat', node: 2 });
  });

  it('works with only one side set', () => {
    assert.deepEqual(mergePowerConfig(undefined, { driver: 'clusterhat', node: 2 }), { driver: 'clusterhat', node: 2 });
    assert.deepEqual(mergePowerConfig({ driver: 'uhubctl', location: '1-1', port: 4 }, undefined), { driver: 'uhubctl', location: '1-1', port: 4 });
  });

  it('validates the merged result, naming the missing field', () => {
    assert.throws(() => mergePowerConfig(group, undefined), refusedFor('power.ifPort'));
    assert.throws(() => mergePowerConfig(group, { ifPort: 'twelve' }), refusedFor('power.ifPort'));
    assert.throws(() => mergePowerConfig(group, 'port 12'), refusedFor('power'));
  });
});
