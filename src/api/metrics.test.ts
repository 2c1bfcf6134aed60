// /metrics in Prometheus text format, checked by Prometheus's own promtool.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { startTestApi, type TestApi } from '../../test/helpers/api.js';
import { prereq, which } from '../../test/helpers/prereq.js';

const promtool = which('promtool');

describe('metrics', () => {
  let t: TestApi;
  before(async () => {
    t = await startTestApi();
  });
  after(() => t?.close());

  it('serves fleet gauges and request metrics', async () => {
    await t.call('POST', '/api/v1/devices', { serial: '11111111', state: 'incoming' });
    await t.call('POST', '/api/v1/devices', { serial: '22222222' });
    await t.call('GET', '/api/v1/devices');
    const r = await t.call('GET', '/metrics');
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /text\/plain/);
    assert.match(r.body, /^drover_devices\{state="incoming"\} 1$/m);
    assert.match(r.body, /^drover_devices\{state="accepted"\} 1$/m);
    assert.match(r.body, /^drover_devices\{state="retired"\} 0$/m);
    assert.match(r.body, /drover_http_request_duration_seconds_count\{method="GET",route="\/api\/v1\/devices",status_code="200"\} 1/);
  });

  it('passes `promtool check metrics`', prereq('promtool', promtool !== null, 'prometheus'), async () => {
    const r = await t.call('GET', '/metrics');
    const res = spawnSync(promtool!, ['check', 'metrics'], { input: r.body, encoding: 'utf8' });
    assert.equal(res.status, 0, `promtool: ${res.stdout}${res.stderr}`);
  });
});
