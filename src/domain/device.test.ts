import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEVICE_STATES, mergeLabels, normalizeMac, normalizeSerial, transition, validateHostname, validateLabels } from './device.js';
import { allows, type Principal } from './roles.js';

describe('device identity', () => {
  it('normalises serials to the 8-digit TFTP form', () => {
    assert.equal(normalizeSerial('10000000ABCDEF01'), 'abcdef01');
    assert.equal(normalizeSerial(' 1A2B3C4D '), '1a2b3c4d');
    assert.equal(normalizeSerial('0x1a2b3c4d'), '1a2b3c4d');
    for (const bad of ['', '1a2b3c4', '1a2b3c4d5', 'zzzzzzzz', '../../etc', '1a2b3c4d\0']) {
      assert.throws(() => normalizeSerial(bad), { code: 'DROVER_INVALID_SERIAL' }, JSON.stringify(bad));
    }
  });

  it('normalises MACs in any common notation', () => {
    for (const m of ['DC:A6:32:01:36:C2', 'dc-a6-32-01-36-c2', 'dca6.3201.36c2', 'dca6320136c2']) assert.equal(normalizeMac(m), 'dc:a6:32:01:36:c2');
    assert.throws(() => normalizeMac('dc:a6:32:01:36'), { code: 'DROVER_INVALID_MAC' });
  });

  it('validates labels and hostnames', () => {
    validateLabels({ rack: 'a1', 'example.com/role': 'ci', zone: null as unknown as string });
    assert.throws(() => validateLabels({ 'Bad Key': 'x' }), { code: 'DROVER_INVALID_LABEL' });
    assert.throws(() => validateLabels({ k: 'line\nbreak' }), { code: 'DROVER_INVALID_LABEL' });
    assert.equal(validateHostname('Node-01'), 'node-01');
    assert.throws(() => validateHostname('node_01'), { code: 'DROVER_INVALID_HOSTNAME' });
    assert.deepEqual(mergeLabels({ a: '1', b: '2' }, { b: null, c: '3' }), { a: '1', c: '3' });
  });
});

describe('device lifecycle', () => {
  it('allows exactly the documented operator transitions', () => {
    const table: Record<string, string[]> = {
      accept: ['incoming', 'retired'],
      reject: ['incoming'],
      retire: ['incoming', 'accepted', 'booting', 'running', 'suspect', 'failed'],
    };
    for (const [action, from] of Object.entries(table)) {
      for (const s of DEVICE_STATES) {
        if (from.includes(s)) assert.ok(transition(s, action as 'accept'), `${action} from ${s}`);
        else assert.throws(() => transition(s, action as 'accept'), { code: 'DROVER_DEVICE_INVALID_TRANSITION' }, `${action} from ${s}`);
      }
    }
  });
});

describe('roles', () => {
  const p = (role: Principal['role']): Principal => ({ tokenId: 't', role, deviceId: role === 'device' ? 'dev_1' : null, userId: null, name: 'n' });
  it('ranks viewer < operator < admin and keeps device tokens to device routes', () => {
    const grid: [Principal['role'], string[]][] = [
      ['viewer', ['read', 'device-read']],
      ['operator', ['read', 'operate', 'device-read', 'device-write']],
      ['admin', ['read', 'operate', 'admin', 'device-read', 'device-write']],
      ['device', ['device-read', 'device-write']],
    ];
    for (const [role, ok] of grid) {
      for (const need of ['read', 'operate', 'admin', 'device-read', 'device-write'] as const) {
        assert.equal(allows(p(role), need), ok.includes(need), `${role} ${need}`);
      }
    }
  });
});
