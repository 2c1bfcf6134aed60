// The HTTP API end to end in-process: auth and roles on every route, coded errors that change
// nothing, device lifecycle, groups, users and sessions, tokens, events and the live stream.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import SwaggerParser from '@apidevtools/swagger-parser';
import { startTestApi, type TestApi } from '../../test/helpers/api.js';
import { newId } from '../domain/ids.js';

type Op = { method: string; path: string };

function operations(doc: any): Op[] {
  const ops: Op[] = [];
  for (const [path, item] of Object.entries<any>(doc.paths)) {
    for (const method of Object.keys(item)) {
      if (['get', 'post', 'patch', 'put', 'delete'].includes(method)) ops.push({ method: method.toUpperCase(), path });
    }
  }
  return ops;
}

const concrete = (path: string, id = 'x') => path.replace(/\{[^}]+\}/g, id);

describe('API', () => {
  let t: TestApi;
  let doc: any;
  before(async () => {
    t = await startTestApi({ api: { bodyLimit: 4096, authFailureLimit: 20, authFailureWindowSeconds: 60 } });
    doc = (await t.call('GET', '/api/v1/openapi.json')).json;
  });
  after(() => t?.close());

  describe('OpenAPI document', () => {
    it('is valid according to swagger-parser and lists every route', async () => {
      const copy = structuredClone(doc);
      const api = await SwaggerParser.validate(copy);
      assert.equal((api as any).openapi, '3.1.0');
      const paths = Object.keys(doc.paths);
      for (const p of ['/api/v1/devices', '/api/v1/devices/{id}', '/api/v1/groups', '/api/v1/tokens', '/api/v1/users', '/api/v1/events', '/api/v1/events/stream', '/metrics', '/healthz']) {
        assert.ok(paths.includes(p), `${p} is documented`);
      }
      assert.ok(doc.components.schemas.Device && doc.components.schemas.Error, 'shared schemas are named components');
    });
  });

  describe('authentication and roles', () => {
    it('answers 401 DROVER_AUTH_MISSING on every route but health without a token', async () => {
      const ops = [...operations(doc), { method: 'GET', path: '/api/v1/openapi.json' }];
      assert.ok(ops.length > 20);
      for (const op of ops) {
        const r = await t.call(op.method as any, concrete(op.path), op.method === 'GET' || op.method === 'DELETE' ? undefined : {}, null);
        // Open by design: health, login, and the boot tree a token-less bootloader fetches.
        if (['/healthz', '/readyz', '/api/v1/auth/login', '/boot/v1/files/{*}', '/boot/v1/ipxe', '/boot/v1/ipxe/{mac}'].includes(op.path)) {
          assert.notEqual(r.status, 401, `${op.method} ${op.path} is open`);
          continue;
        }
        assert.equal(r.status, 401, `${op.method} ${op.path}`);
        assert.equal(r.json.code, 'DROVER_AUTH_MISSING');
        assert.ok(r.json.fix, 'error carries a fix');
      }
    });

    it('answers 401 DROVER_AUTH_INVALID for unknown or malformed tokens', async () => {
      const r = await t.call('GET', '/api/v1/devices', undefined, 'drv_' + 'A'.repeat(43));
      assert.equal(r.status, 401);
      assert.equal(r.json.code, 'DROVER_AUTH_INVALID');
      const r2 = await t.app.inject({ method: 'GET', url: '/api/v1/devices', headers: { authorization: 'Basic abc' }, remoteAddress: '127.0.0.9' });
      assert.equal(r2.statusCode, 401);
    });

    it('gives a viewer 403 DROVER_AUTH_FORBIDDEN on every write', async () => {
      const viewer = await t.tokenFor('viewer');
      const writes = operations(doc).filter((o) => o.method !== 'GET' && !o.path.startsWith('/api/v1/auth/'));
      assert.ok(writes.length >= 12);
      for (const op of writes) {
        const r = await t.call(op.method as any, concrete(op.path), op.method === 'DELETE' ? undefined : {}, viewer);
        assert.equal(r.status, 403, `${op.method} ${op.path}`);
        assert.equal(r.json.code, 'DROVER_AUTH_FORBIDDEN');
      }
      const read = await t.call('GET', '/api/v1/devices', undefined, viewer);
      assert.equal(read.status, 200);
    });

    it('lets an operator act on devices but not manage tokens or users', async () => {
      const op = await t.tokenFor('operator');
      assert.equal((await t.call('POST', '/api/v1/devices', { serial: 'a0a0a0a0' }, op)).status, 201);
      assert.equal((await t.call('GET', '/api/v1/tokens', undefined, op)).status, 403);
      assert.equal((await t.call('POST', '/api/v1/users', { username: 'x', password: 'p'.repeat(12), role: 'viewer' }, op)).status, 403);
    });

    it('confines a device token to its own device', async () => {
      const mine = (await t.call('POST', '/api/v1/devices', { serial: 'b1b1b1b1' })).json;
      const other = (await t.call('POST', '/api/v1/devices', { serial: 'c2c2c2c2', hostname: 'other' })).json;
      const dev = await t.tokenFor('device', mine.id);
      assert.equal((await t.call('GET', `/api/v1/devices/${mine.id}`, undefined, dev)).status, 200);
      assert.equal((await t.call('GET', '/api/v1/devices/b1b1b1b1', undefined, dev)).status, 200);
      assert.equal((await t.call('POST', `/api/v1/devices/${mine.id}/events`, { type: 'boot.tftp', data: { files: 3 } }, dev)).status, 201);
      for (const ref of [other.id, other.serial, 'other']) {
        const g = await t.call('GET', `/api/v1/devices/${ref}`, undefined, dev);
        assert.equal(g.status, 403, `GET other by ${ref}`);
        assert.equal(g.json.code, 'DROVER_AUTH_FORBIDDEN');
        assert.equal((await t.call('GET', `/api/v1/devices/${ref}/events`, undefined, dev)).status, 403);
        assert.equal((await t.call('POST', `/api/v1/devices/${ref}/events`, { type: 'boot.tftp' }, dev)).status, 403);
      }
      // Listing and every person-facing route is closed to device tokens.
      for (const [m, u] of [['GET', '/api/v1/devices'], ['GET', '/api/v1/groups'], ['GET', '/api/v1/images'], ['GET', '/metrics'], ['GET', '/api/v1/tokens'], ['PATCH', `/api/v1/devices/${mine.id}`], ['POST', `/api/v1/devices/${mine.id}/retire`]] as const) {
        assert.equal((await t.call(m, u, m === 'GET' ? undefined : { hostname: 'x' }, dev)).status, 403, `${m} ${u}`);
      }
      // The event log a device token reads is its own, whatever it asks for.
      const events = await t.call('GET', `/api/v1/events?device=${other.id}`, undefined, dev);
      assert.equal(events.status, 200);
      assert.ok(events.json.items.length > 0);
      assert.ok(events.json.items.every((e: any) => e.deviceId === mine.id));
    });

    it('rate-limits repeated auth failures per address with 429 and Retry-After', async () => {
      const ip = '127.0.0.77';
      const bad = () => t.app.inject({ method: 'GET', url: '/api/v1/devices', headers: { authorization: `Bearer drv_${'Z'.repeat(43)}` }, remoteAddress: ip });
      for (let i = 0; i < 20; i++) assert.equal((await bad()).statusCode, 401);
      const blocked = await bad();
      assert.equal(blocked.statusCode, 429);
      assert.equal(blocked.json().code, 'DROVER_AUTH_RATE_LIMITED');
      assert.ok(Number(blocked.headers['retry-after']) > 0);
      const good = await t.app.inject({ method: 'GET', url: '/api/v1/devices', headers: { authorization: `Bearer ${t.adminToken}` }, remoteAddress: ip });
      assert.equal(good.statusCode, 429, 'even a valid token waits out the block from that address');
      const elsewhere = await t.app.inject({ method: 'GET', url: '/api/v1/devices', headers: { authorization: `Bearer ${t.adminToken}` }, remoteAddress: '127.0.0.78' });
      assert.equal(elsewhere.statusCode, 200);
    });
  });

  describe('bad input gets a coded 4xx and changes nothing', () => {
    async function snapshot() {
      const devices = (await t.call('GET', '/api/v1/devices?limit=500')).json;
      const events = (await t.call('GET', '/api/v1/events?limit=500')).json;
      return JSON.stringify({ devices: devices.items, n: events.items.length });
    }

    it('refuses malformed JSON, unknown fields, wrong types, bad values and oversized bodies', async () => {
      const before = await snapshot();
      const cases: [string, unknown, number, string][] = [
        ['/api/v1/devices', '{"serial": ', 400, 'DROVER_BAD_JSON'],
        ['/api/v1/devices', { serial: 'd3d3d3d3', color: 'red' }, 400, 'DROVER_VALIDATION'],
        ['/api/v1/devices', { serial: 12345678 }, 400, 'DROVER_VALIDATION'],
        ['/api/v1/devices', { serial: 'd3d3d3d3', labels: { rack: 7 } }, 400, 'DROVER_VALIDATION'],
        ['/api/v1/devices', { serial: 'not-hex!' }, 400, 'DROVER_INVALID_SERIAL'],
        ['/api/v1/devices', { serial: 'd3d3d3d3', macs: ['zz:zz'] }, 400, 'DROVER_INVALID_MAC'],
        ['/api/v1/devices', { serial: 'd3d3d3d3', hostname: '-bad-' }, 400, 'DROVER_INVALID_HOSTNAME'],
        ['/api/v1/devices', { serial: 'd3d3d3d3', labels: { 'Bad Key': 'v' } }, 400, 'DROVER_INVALID_LABEL'],
        ['/api/v1/devices', { serial: 'd3d3d3d3', groupId: 'no-such-group' }, 404, 'DROVER_GROUP_NOT_FOUND'],
        ['/api/v1/devices', { serial: 'd3d3d3d3', imageId: 'no-such-image' }, 404, 'DROVER_IMAGE_NOT_FOUND'],
        ['/api/v1/devices', { serial: 'd3d3d3d3', hostname: 'x'.repeat(5000) }, 413, 'DROVER_BODY_TOO_LARGE'],
        ['/api/v1/devices', [], 400, 'DROVER_VALIDATION'],
        ['/api/v1/groups', { name: 'Bad Name!' }, 400, 'DROVER_VALIDATION'],
        ['/api/v1/tokens', { name: 'x', role: 'device' }, 400, 'DROVER_TOKEN_DEVICE_REQUIRED'],
        ['/api/v1/tokens', { name: 'x', role: 'root' }, 400, 'DROVER_VALIDATION'],
        ['/api/v1/users', { username: 'eve', password: 'short', role: 'admin' }, 400, 'DROVER_WEAK_PASSWORD'],
      ];
      for (const [url, body, status, code] of cases) {
        const r = await t.call('POST', url, body);
        assert.equal(r.status, status, `${url} ${JSON.stringify(body).slice(0, 60)} → ${r.body}`);
        assert.equal(r.json.code, code);
        assert.ok(r.json.message && r.json.fix);
      }
      const wrongType = await t.app.inject({ method: 'POST', url: '/api/v1/devices', headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'text/plain' }, payload: 'serial=1' });
      assert.equal(wrongType.statusCode, 415);
      assert.equal(wrongType.json().code, 'DROVER_UNSUPPORTED_MEDIA_TYPE');
      const badQuery = await t.call('GET', '/api/v1/devices?limit=100000');
      assert.equal(badQuery.json.code, 'DROVER_VALIDATION');
      assert.equal((await t.call('GET', '/api/v1/devices?state=sleeping')).json.code, 'DROVER_VALIDATION');
      assert.equal((await t.call('GET', '/api/v1/devices?cursor=%21%21')).json.code, 'DROVER_INVALID_CURSOR');
      assert.equal((await t.call('GET', '/api/v1/nope')).json.code, 'DROVER_ROUTE_NOT_FOUND');
      assert.equal(await snapshot(), before);
    });
  });

  describe('devices', () => {
    it('creates, finds by serial/MAC/hostname, patches labels as a merge, moves through states', async () => {
      const c = await t.call('POST', '/api/v1/devices', { serial: '10000000E4E4E4E4', macs: ['DC-A6-32-AA-BB-CC'], hostname: 'Pi-One', labels: { rack: 'r1', role: 'ci' }, state: 'incoming', model: 'Raspberry Pi 4 Model B' });
      assert.equal(c.status, 201);
      const d = c.json;
      assert.equal(d.serial, 'e4e4e4e4');
      assert.equal(d.hostname, 'pi-one');
      assert.deepEqual(d.macs, ['dc:a6:32:aa:bb:cc']);
      for (const ref of ['e4e4e4e4', '10000000e4e4e4e4', 'dc:a6:32:aa:bb:cc', 'pi-one', d.id]) {
        assert.equal((await t.call('GET', `/api/v1/devices/${encodeURIComponent(ref)}`)).json.id, d.id, ref);
      }
      const dup = await t.call('POST', '/api/v1/devices', { serial: 'e4e4e4e4' });
      assert.equal(dup.status, 409);
      assert.equal(dup.json.code, 'DROVER_DEVICE_EXISTS');
      const p = await t.call('PATCH', `/api/v1/devices/${d.id}`, { labels: { role: null, zone: 'eu' } });
      assert.deepEqual(p.json.labels, { rack: 'r1', zone: 'eu' });
      assert.equal((await t.call('POST', `/api/v1/devices/${d.id}/retire`, {})).json.state, 'retired');
      assert.equal((await t.call('POST', `/api/v1/devices/${d.id}/reject`, {})).json.code, 'DROVER_DEVICE_INVALID_TRANSITION');
      assert.equal((await t.call('POST', `/api/v1/devices/${d.id}/accept`)).json.state, 'accepted', 'accept needs no body');
      const ev = await t.call('GET', `/api/v1/devices/${d.id}/events`);
      assert.deepEqual(ev.json.items.map((e: any) => e.type), ['device.accepted', 'device.retired', 'device.updated', 'device.created']);
    });

    it('summarises counts by state', async () => {
      const r = await t.call('GET', '/api/v1/devices/summary');
      assert.equal(r.status, 200);
      assert.deepEqual(Object.keys(r.json.byState), ['incoming', 'accepted', 'booting', 'running', 'suspect', 'failed', 'retired']);
      const list = await t.call('GET', '/api/v1/devices?limit=1');
      assert.equal(r.json.total, list.json.total);
    });

    it('assigns and clears images; filters and pages the list', async () => {
      const img = await t.store.images.create({ id: newId('img'), name: 'raspios-lite', tag: 'latest', sha256: null, status: 'ready', kind: 'boot-dir', metadata: {}, createdAt: new Date().toISOString() });
      const a = await t.call('POST', '/api/v1/devices/e4e4e4e4/assign', { image: 'raspios-lite' });
      assert.equal(a.json.imageId, img.id);
      assert.equal((await t.call('GET', `/api/v1/devices?image=${img.id}`)).json.items.length, 1);
      assert.equal((await t.call('POST', '/api/v1/devices/e4e4e4e4/assign', { image: null })).json.imageId, null);
      assert.equal((await t.call('POST', '/api/v1/devices/e4e4e4e4/assign', { image: 'missing:tag' })).json.code, 'DROVER_IMAGE_NOT_FOUND');
      for (let i = 0; i < 7; i++) await t.call('POST', '/api/v1/devices', { serial: `f000000${i}`, labels: { batch: 'b' }, state: 'incoming' });
      const seen = new Set<string>();
      let cursor: string | null = null;
      do {
        const page: any = (await t.call('GET', `/api/v1/devices?label=batch=b&limit=3${cursor ? `&cursor=${cursor}` : ''}`)).json;
        assert.equal(page.total, 7);
        page.items.forEach((x: any) => seen.add(x.id));
        cursor = page.nextCursor;
      } while (cursor);
      assert.equal(seen.size, 7);
      assert.equal((await t.call('GET', '/api/v1/devices?state=incoming&label=batch=b&q=f0000003')).json.items.length, 1);
    });
  });

  describe('groups', () => {
    it('CRUD, device membership, refuses to delete a non-empty group', async () => {
      const g = await t.call('POST', '/api/v1/groups', { name: 'ci-farm', description: 'runners', bootMode: 'ramroot', policy: { autoAccept: true } });
      assert.equal(g.status, 201);
      assert.equal((await t.call('POST', '/api/v1/groups', { name: 'ci-farm' })).json.code, 'DROVER_GROUP_EXISTS');
      await t.call('PATCH', '/api/v1/devices/e4e4e4e4', { groupId: 'ci-farm' });
      assert.equal((await t.call('GET', '/api/v1/devices?group=ci-farm')).json.items.length, 1);
      assert.equal((await t.call('DELETE', '/api/v1/groups/ci-farm')).json.code, 'DROVER_GROUP_NOT_EMPTY');
      await t.call('PATCH', '/api/v1/devices/e4e4e4e4', { groupId: null });
      assert.equal((await t.call('PATCH', '/api/v1/groups/ci-farm', { description: 'CI' })).json.description, 'CI');
      assert.equal((await t.call('DELETE', '/api/v1/groups/ci-farm')).status, 204);
      assert.equal((await t.call('GET', '/api/v1/groups/ci-farm')).status, 404);
    });
  });

  describe('users, sessions and tokens', () => {
    it('logs in with a password, uses the session, and ends sessions on password change', async () => {
      const u = await t.call('POST', '/api/v1/users', { username: 'Ada', password: 'correct horse battery', role: 'operator' });
      assert.equal(u.status, 201);
      assert.equal(u.json.username, 'ada');
      assert.equal(u.json.password_hash, undefined);
      assert.equal((await t.call('POST', '/api/v1/users', { username: 'ada', password: 'another long one', role: 'viewer' })).json.code, 'DROVER_USER_EXISTS');
      const wrong = await t.call('POST', '/api/v1/auth/login', { username: 'ada', password: 'wrong password!' }, null);
      assert.equal(wrong.status, 401);
      assert.equal(wrong.json.code, 'DROVER_LOGIN_FAILED');
      const nobody = await t.call('POST', '/api/v1/auth/login', { username: 'nobody', password: 'wrong password!' }, null);
      assert.equal(nobody.json.code, 'DROVER_LOGIN_FAILED', 'unknown users fail the same way');
      const ok = await t.call('POST', '/api/v1/auth/login', { username: 'ada', password: 'correct horse battery' }, null);
      assert.equal(ok.status, 200);
      const session = ok.json.token;
      assert.equal((await t.call('GET', '/api/v1/me', undefined, session)).json.role, 'operator');
      await t.call('PATCH', '/api/v1/users/ada', { password: 'a brand new password' });
      assert.equal((await t.call('GET', '/api/v1/me', undefined, session)).status, 401, 'old session ends');
      const again = (await t.call('POST', '/api/v1/auth/login', { username: 'ada', password: 'a brand new password' }, null)).json.token;
      assert.equal((await t.call('POST', '/api/v1/auth/logout', undefined, again)).status, 204);
      assert.equal((await t.call('GET', '/api/v1/me', undefined, again)).status, 401, 'logout revokes');
      assert.equal((await t.call('POST', '/api/v1/auth/logout')).status, 204);
      assert.equal((await t.call('GET', '/api/v1/me')).status, 200, 'logout leaves API tokens alone (no accidental lock-out)');
    });

    it('never lists secrets; a revoked token stops working; the last admin cannot be removed', async () => {
      const created = await t.call('POST', '/api/v1/tokens', { name: 'ci-bot', role: 'operator', ttl: 3600 });
      assert.equal(created.status, 201);
      assert.match(created.json.secret, /^drv_[\w-]{43}$/);
      const list = await t.call('GET', '/api/v1/tokens');
      assert.ok(!list.body.includes(created.json.secret));
      assert.ok(!list.body.includes('"hash"'));
      assert.equal((await t.call('GET', '/api/v1/me', undefined, created.json.secret)).status, 200);
      await t.call('DELETE', `/api/v1/tokens/${created.json.token.id}`);
      assert.equal((await t.call('GET', '/api/v1/me', undefined, created.json.secret)).json.code, 'DROVER_AUTH_INVALID');
      const bootstrap = list.json.items.find((x: any) => x.kind === 'bootstrap');
      const last = await t.call('DELETE', `/api/v1/tokens/${bootstrap.id}`);
      assert.equal(last.status, 409);
      assert.equal(last.json.code, 'DROVER_LAST_ADMIN');
    });
  });

  describe('demo routes outside the demo', () => {
    it('GET /api/v1/demo says demo: false, and kill is a coded 404', async () => {
      assert.deepEqual((await t.call('GET', '/api/v1/demo')).json, { demo: false, pis: [] });
      const r = await t.call('POST', '/api/v1/demo/devices/anything/kill', {});
      assert.equal(r.status, 404);
      assert.equal(r.json.code, 'DROVER_ROUTE_NOT_FOUND');
    });
  });

  describe('events and the live stream', () => {
    it('filters events by device, type prefix and time', async () => {
      const all = (await t.call('GET', '/api/v1/events?type=device.*&limit=500')).json.items;
      assert.ok(all.length > 5 && all.every((e: any) => e.type.startsWith('device.')));
      const since = all[0].time;
      const later = (await t.call('GET', `/api/v1/events?since=${encodeURIComponent(since)}`)).json.items;
      assert.ok(later.every((e: any) => e.time >= since));
      assert.equal((await t.call('GET', '/api/v1/events?device=e4e4e4e4&type=device.created')).json.items.length, 1);
    });

    it('streams device changes and events over SSE, and replays from Last-Event-ID', async () => {
      await t.app.listen({ host: '127.0.0.1', port: 0 });
      const port = (t.app.server.address() as any).port;
      const ctl = new AbortController();
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/events/stream`, { headers: { authorization: `Bearer ${t.adminToken}` }, signal: ctl.signal });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
      const reader = res.body!.getReader();
      const created = await t.call('POST', '/api/v1/devices', { serial: 'abab0001', state: 'incoming' });
      let text = '';
      const deadline = Date.now() + 5000;
      while (!(text.includes('event: device') && text.includes('"type":"device.created"')) && Date.now() < deadline) {
        const { value } = await reader.read();
        text += new TextDecoder().decode(value);
      }
      ctl.abort();
      assert.ok(text.includes(`"id":"${created.json.id}"`), 'device message carries the device');
      const lastId = Number(/id: (\d+)\nevent: event/.exec(text)![1]);
      // Reconnect from an earlier id: the missed events come first, in order.
      const ctl2 = new AbortController();
      const res2 = await fetch(`http://127.0.0.1:${port}/api/v1/events/stream`, { headers: { authorization: `Bearer ${t.adminToken}`, 'last-event-id': String(lastId - 2) }, signal: ctl2.signal });
      const reader2 = res2.body!.getReader();
      let replay = '';
      while (!replay.includes(`id: ${lastId}\n`) && Date.now() < deadline + 5000) replay += new TextDecoder().decode((await reader2.read()).value);
      ctl2.abort();
      const ids = [...replay.matchAll(/id: (\d+)\n/g)].map((m) => Number(m[1]));
      assert.deepEqual(ids, [lastId - 1, lastId]);
    });
  });
});
