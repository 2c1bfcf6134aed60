// The repository contract: one suite, run against SQLite and PostgreSQL. Any behaviour the
// services rely on belongs here, so both dialects are held to it.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { postgresBinDir, startPostgres, type PrivatePostgres } from '../../test/helpers/postgres.js';
import { prereq } from '../../test/helpers/prereq.js';
import { newId } from '../domain/ids.js';
import type { Device } from '../domain/records.js';
import type { NewDevice } from './repositories/devices.repository.js';
import { Store } from './store.js';

const T0 = '2026-01-01T00:00:00.000Z';

function device(serial: string, extra: Partial<Device> = {}): NewDevice {
  return {
    id: newId('dev'),
    serial,
    macs: [],
    model: null,
    boardRevision: null,
    hostname: null,
    labels: {},
    groupId: null,
    imageId: null,
    bootMode: null,
    state: 'incoming',
    ipAddresses: [],
    firstSeen: null,
    lastSeen: null,
    createdAt: T0,
    ...extra,
  };
}

function contract(name: string, open: () => Promise<Store>, options: { skip: string | false } = { skip: false }) {
  describe(`repository contract: ${name}`, options, () => {
    let store: Store;
    before(async () => {
      store = await open();
    });
    after(async () => {
      await store?.close();
    });

    it('migrations are idempotent: opening twice works', async () => {
      await store.ping();
    });

    it('creates and reads a device with MACs and labels', async () => {
      const d = await store.devices.create(
        device('1a2b3c4d', { macs: ['dc:a6:32:01:36:c2'], labels: { rack: 'a1', role: 'ci' }, model: 'Pi 4', hostname: 'node-1', ipAddresses: ['10.0.0.5'] }),
      );
      assert.equal(d.serial, '1a2b3c4d');
      assert.deepEqual(d.macs, ['dc:a6:32:01:36:c2']);
      assert.deepEqual(d.labels, { rack: 'a1', role: 'ci' });
      assert.deepEqual(d.ipAddresses, ['10.0.0.5']);
      assert.equal(d.updatedAt, T0);
      assert.equal((await store.devices.findBySerial('1a2b3c4d'))?.id, d.id);
      assert.equal((await store.devices.findByMac('dc:a6:32:01:36:c2'))?.id, d.id);
      assert.equal((await store.devices.findByHostname('node-1'))[0]?.id, d.id);
      assert.equal(await store.devices.get('dev_nope'), undefined);
    });

    it('refuses a duplicate serial or MAC with DROVER_DEVICE_EXISTS and writes nothing', async () => {
      await assert.rejects(store.devices.create(device('1a2b3c4d')), { code: 'DROVER_DEVICE_EXISTS' });
      await assert.rejects(
        store.transaction((tx) => tx.devices.create(device('99999999', { macs: ['dc:a6:32:01:36:c2'] }))),
        { code: 'DROVER_DEVICE_EXISTS' },
      );
      assert.equal(await store.devices.findBySerial('99999999'), undefined);
    });

    it('lists with filters, search and stable cursor paging', async () => {
      for (let i = 0; i < 12; i++) {
        await store.devices.create(
          device(`0000000${i.toString(16)}`, {
            state: i % 3 === 0 ? 'accepted' : 'incoming',
            labels: { rack: i % 2 ? 'b2' : 'b1' },
            macs: [`e4:5f:01:00:00:${i.toString(16).padStart(2, '0')}`],
          }),
        );
      }
      const all: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await store.devices.list({}, { limit: 5, cursor });
        assert.equal(page.total, 13);
        all.push(...page.items.map((d) => d.id));
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      assert.equal(all.length, 13);
      assert.deepEqual([...all].sort(), all, 'pages come in id order');
      assert.equal(new Set(all).size, 13, 'no device twice across pages');

      const accepted = await store.devices.list({ state: ['accepted'] }, { limit: 100 });
      assert.equal(accepted.items.length, 4);
      const rackB2 = await store.devices.list({ labels: { rack: 'b2' } }, { limit: 100 });
      assert.equal(rackB2.items.length, 6);
      const both = await store.devices.list({ labels: { rack: 'b2' }, state: ['accepted'] }, { limit: 100 });
      assert.equal(both.items.length, 2);
      const byMac = await store.devices.list({ q: 'E4:5F:01:00:00:0A' }, { limit: 100 });
      assert.deepEqual(byMac.items.map((d) => d.serial), ['0000000a']);
      const bySerial = await store.devices.list({ q: '1A2B' }, { limit: 100 });
      assert.deepEqual(bySerial.items.map((d) => d.serial), ['1a2b3c4d']);
      const wildcard = await store.devices.list({ q: '%' }, { limit: 100 });
      assert.equal(wildcard.items.length, 0, 'LIKE wildcards in search text match literally');
      await assert.rejects(store.devices.list({}, { limit: 5, cursor: '!!not-a-cursor' }), { code: 'DROVER_INVALID_CURSOR' });
    });

    it('updates fields, replaces labels and MACs, counts by state', async () => {
      const d = (await store.devices.findBySerial('1a2b3c4d'))!;
      const u = await store.devices.update(
        d.id,
        { hostname: 'node-one', state: 'accepted', labels: { rack: 'a2' }, macs: ['dc:a6:32:01:36:c3'], lastSeen: T0 },
        '2026-01-02T00:00:00.000Z',
      );
      assert.equal(u.hostname, 'node-one');
      assert.deepEqual(u.labels, { rack: 'a2' });
      assert.deepEqual(u.macs, ['dc:a6:32:01:36:c3']);
      assert.equal(u.updatedAt, '2026-01-02T00:00:00.000Z');
      assert.equal(await store.devices.findByMac('dc:a6:32:01:36:c2'), undefined);
      await assert.rejects(store.devices.update('dev_missing', { hostname: 'x' }, T0), { code: 'DROVER_DEVICE_NOT_FOUND' });
      const counts = await store.devices.countByState();
      assert.equal(counts.accepted, 5);
      assert.equal(counts.incoming, 8);
    });

    it('rolls back a failed transaction completely', async () => {
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.devices.create(device('abcdef01'));
          await tx.events.append({ time: T0, type: 'device.created', deviceId: null, actor: null, data: {} });
          throw new Error('boom');
        }),
        /boom/,
      );
      assert.equal(await store.devices.findBySerial('abcdef01'), undefined);
      const events = await store.events.list({}, { limit: 10 });
      assert.equal(events.items.length, 0);
    });

    it('groups: create, unique name, update, count members, delete', async () => {
      const g = await store.groups.create({
        id: newId('grp'),
        name: 'ci-farm',
        description: 'runners',
        imageId: null,
        bootMode: 'ramroot',
        settings: { tmpfsSize: '50%' },
        policy: { autoAccept: true },
        createdAt: T0,
      });
      assert.deepEqual(g.policy, { autoAccept: true });
      await assert.rejects(store.groups.create({ ...g, id: newId('grp') }), { code: 'DROVER_GROUP_EXISTS' });
      const u = await store.groups.update(g.id, { description: 'CI runners', settings: {} }, T0);
      assert.equal(u.description, 'CI runners');
      assert.equal((await store.groups.findByName('ci-farm'))?.id, g.id);
      const d = (await store.devices.findBySerial('00000001'))!;
      await store.devices.update(d.id, { groupId: g.id }, T0);
      assert.equal(await store.devices.countInGroup(g.id), 1);
      assert.equal((await store.devices.list({ groupId: g.id }, { limit: 10 })).items.length, 1);
      assert.equal((await store.groups.list()).length, 1);
      assert.equal(await store.groups.delete(g.id), true);
      assert.equal(await store.groups.get(g.id), undefined);
    });

    it('images: create, find by name and tag', async () => {
      const img = await store.images.create({
        id: newId('img'),
        name: 'raspios-lite',
        tag: '2026-01',
        sha256: 'ab'.repeat(32),
        status: 'ready',
        kind: 'ramroot',
        metadata: { kernels: ['kernel8.img'] },
        createdAt: T0,
      });
      assert.deepEqual(img.metadata, { kernels: ['kernel8.img'] });
      assert.equal((await store.images.findByName('raspios-lite', '2026-01'))?.id, img.id);
      assert.equal((await store.images.list()).length, 1);
    });

    it('tokens: stored by hash, listed without secrets, revoked, counted', async () => {
      const t = await store.tokens.create({
        id: newId('tok'),
        name: 'ci',
        role: 'operator',
        hash: 'h1',
        prefix: 'drv_abcd',
        deviceId: null,
        userId: null,
        kind: 'api',
        createdAt: T0,
        expiresAt: null,
        lastUsedAt: null,
        revokedAt: null,
      });
      assert.equal((await store.tokens.findByHash('h1'))?.id, t.id);
      assert.ok(!('hash' in ((await store.tokens.list())[0] as object)));
      await store.tokens.create({ ...t, id: newId('tok'), hash: 'h2', role: 'admin', expiresAt: '2025-01-01T00:00:00.000Z' });
      assert.equal(await store.tokens.countActive('admin', T0), 0, 'expired admin token does not count');
      await store.tokens.touch(t.id, T0);
      assert.equal((await store.tokens.get(t.id))?.lastUsedAt, T0);
      assert.equal(await store.tokens.revoke(t.id, T0), true);
      assert.equal(await store.tokens.revoke(t.id, T0), false, 'revoking twice is a no-op');
      assert.equal((await store.tokens.list()).length, 1);
      assert.equal((await store.tokens.list({ includeRevoked: true })).length, 2);
      assert.equal(await store.tokens.countAll(), 2);
    });

    it('users: unique names, update, admin count, delete cascades tokens', async () => {
      const u = await store.users.create({ id: newId('usr'), username: 'ada', passwordHash: 'x', role: 'admin', disabled: false, createdAt: T0 });
      await assert.rejects(store.users.create({ id: newId('usr'), username: 'ada', passwordHash: 'y', role: 'viewer', disabled: false, createdAt: T0 }), {
        code: 'DROVER_USER_EXISTS',
      });
      assert.equal((await store.users.findByUsername('ada'))?.passwordHash, 'x');
      assert.equal(await store.users.countActiveAdmins(), 1);
      await store.users.update(u.id, { disabled: true }, T0);
      assert.equal(await store.users.countActiveAdmins(), 0);
      await store.tokens.create({
        id: newId('tok'), name: 's', role: 'admin', hash: 'h3', prefix: 'p', deviceId: null, userId: u.id,
        kind: 'session', createdAt: T0, expiresAt: null, lastUsedAt: null, revokedAt: null,
      });
      assert.equal(await store.users.delete(u.id), true);
      assert.equal(await store.tokens.findByHash('h3'), undefined);
    });

    it('events: append-only ids, filters, newest-first paging, catch-up after an id', async () => {
      const d = (await store.devices.findBySerial('00000002'))!;
      const ids: number[] = [];
      for (let i = 0; i < 7; i++) {
        const e = await store.events.append({
          time: `2026-01-0${i + 1}T00:00:00.000Z`,
          type: i % 2 ? 'device.accepted' : 'boot.tftp',
          deviceId: i < 4 ? d.id : null,
          actor: 'test',
          data: { i },
        });
        ids.push(e.id);
      }
      assert.deepEqual([...ids].sort((a, b) => a - b), ids, 'ids increase');
      const p1 = await store.events.list({}, { limit: 3 });
      assert.deepEqual(p1.items.map((e) => e.data.i), [6, 5, 4]);
      const p2 = await store.events.list({}, { limit: 3, cursor: p1.nextCursor! });
      assert.deepEqual(p2.items.map((e) => e.data.i), [3, 2, 1]);
      assert.equal((await store.events.list({ deviceId: d.id }, { limit: 10 })).items.length, 4);
      assert.equal((await store.events.list({ type: 'boot.*' }, { limit: 10 })).items.length, 4);
      assert.equal((await store.events.list({ type: 'device.accepted' }, { limit: 10 })).items.length, 3);
      const ranged = await store.events.list({ since: '2026-01-02T00:00:00.000Z', until: '2026-01-04T00:00:00.000Z' }, { limit: 10 });
      assert.deepEqual(ranged.items.map((e) => e.data.i), [2, 1]);
      assert.deepEqual((await store.events.after(ids[4]!, 10)).map((e) => e.data.i), [5, 6]);
      assert.deepEqual((await store.events.after(0, 10, d.id)).map((e) => e.data.i), [0, 1, 2, 3]);
    });

    it('device settings: stored as JSON, replaced by update', async () => {
      const d = await store.devices.create(device('5e771165'));
      assert.deepEqual(d.settings, {});
      const u = await store.devices.update(d.id, { settings: { power: { driver: 'exec', command: ['/bin/true'] } } }, T0);
      assert.deepEqual(u.settings, { power: { driver: 'exec', command: ['/bin/true'] } });
    });

    it('health: upsert creates then patches, counts by health, cascades with the device', async () => {
      const d = await store.devices.create(device('4ea17401'));
      const h0 = await store.health.upsert(d.id, { agent: { connected: true, version: '0.1.0', bootId: 'b1' }, stream: 's1' }, T0);
      assert.equal(h0.health, 'unknown');
      assert.equal(h0.agent.connected, true);
      assert.equal(h0.lastSeq, 0);
      const h1 = await store.health.upsert(d.id, { health: 'dead', phi: 12.5, reason: 'phi', remediation: { step: 1, history: [T0] }, gossip: { addr: '198.18.0.9', port: 7946 } }, T0);
      assert.equal(h1.health, 'dead');
      assert.equal(h1.phi, 12.5);
      assert.equal(h1.agent.version, '0.1.0');
      assert.deepEqual(h1.remediation, { step: 1, history: [T0] });
      assert.deepEqual(h1.gossip, { addr: '198.18.0.9', port: 7946 });
      await store.health.touchMany([{ deviceId: d.id, lastHeartbeat: T0, lastSeq: 41 }], T0);
      assert.equal((await store.health.get(d.id))!.lastSeq, 41);
      // Many at once (more than one chunk), mixed with a device that has no health row: only the known ones change.
      const others = await Promise.all(Array.from({ length: 3 }, (_, i) => store.devices.create(device(`7a0c0${i}00`))));
      for (const o of others) await store.health.upsert(o.id, { stream: 's' }, T0);
      const T1 = '2026-01-01T00:00:09.000Z';
      const rows = [...others.map((o, i) => ({ deviceId: o.id, lastHeartbeat: T1, lastSeq: 100 + i })), ...Array.from({ length: 600 }, (_, i) => ({ deviceId: `dev_absent${i}`, lastHeartbeat: T1, lastSeq: 1 })), { deviceId: d.id, lastHeartbeat: T1, lastSeq: 2 ** 31 - 1 }];
      await store.health.touchMany(rows, T1);
      for (const [i, o] of others.entries()) {
        const h = (await store.health.get(o.id))!;
        assert.equal(h.lastSeq, 100 + i);
        assert.equal(h.lastHeartbeat, T1);
      }
      assert.equal((await store.health.get(d.id))!.lastSeq, 2 ** 31 - 1);
      assert.equal(await store.health.get('dev_absent0'), undefined);
      for (const o of others) await store.devices.delete(o.id);
      assert.equal((await store.health.countByHealth()).dead, 1);
      assert.ok((await store.health.getMany([d.id])).has(d.id));
      await store.devices.delete(d.id);
      assert.equal(await store.health.get(d.id), undefined);
    });

    it('metrics: batched inserts, ranges, rollup upsert, pruning', async () => {
      const d = await store.devices.create(device('3e7c1c50'));
      const m = { cpu: [0.5, 0.25], load: [1, 0.5, 0.25] as [number, number, number], mem: [4e9, 3e9] as [number, number], disk: [3e10, 2e10] as [number, number], net: [10, 20] as [number, number], uptime: 99 };
      const samples = Array.from({ length: 2500 }, (_, i) => ({ deviceId: d.id, ts: new Date(Date.parse(T0) + i * 1000).toISOString(), seq: i + 1, m }));
      await store.metrics.insertMany(samples);
      const r = await store.metrics.range(d.id, T0, '2026-01-01T00:01:00.000Z');
      assert.equal(r.length, 60);
      assert.deepEqual(r[0]!.m, m);
      assert.equal((await store.metrics.latest(d.id))!.seq, 2500);
      const roll = { cpu: 0.4, cpuMax: 0.5, load1: 1, memUsed: 0.25, diskUsed: 0.33, temp: 50, tempMax: 51, throttled: 0, rx: 1, tx: 2 };
      await store.metrics.upsertRollups([{ deviceId: d.id, minute: '2026-01-01T00:00', n: 60, data: roll }]);
      await store.metrics.upsertRollups([{ deviceId: d.id, minute: '2026-01-01T00:00', n: 61, data: { ...roll, cpu: 0.9 } }]);
      const rolls = await store.metrics.rollups(d.id, '2026-01-01T00:00', '2026-01-01T01:00');
      assert.equal(rolls.length, 1);
      assert.equal(rolls[0]!.n, 61);
      assert.equal(rolls[0]!.data.cpu, 0.9);
      assert.equal((await store.metrics.samplesBetween(T0, '2026-01-01T00:00:10.000Z')).length, 10);
      const pruned = await store.metrics.prune('2026-01-01T00:10:00.000Z', '2026-01-01T00:00');
      assert.equal(pruned.raw, 600);
      assert.equal(pruned.rollups, 0);
    });

    it('jobs: create, update, list newest first and by state', async () => {
      const d = await store.devices.create(device('10b5a11e'));
      const base = { deviceId: d.id, kind: 'exec' as const, params: { sh: 'true' }, actor: 'tok_1', timeoutMs: 1000, startedAt: null, finishedAt: null, exitCode: null, output: null, error: null };
      await store.jobs.create({ ...base, id: 'job_1', state: 'queued', createdAt: T0 });
      await store.jobs.create({ ...base, id: 'job_2', state: 'queued', createdAt: '2026-01-01T00:00:01.000Z' });
      const done = await store.jobs.update('job_1', { state: 'succeeded', exitCode: 0, output: 'hi\n', finishedAt: T0 });
      assert.equal(done!.exitCode, 0);
      assert.deepEqual((await store.jobs.listByDevice(d.id, 10)).map((j) => j.id), ['job_2', 'job_1']);
      assert.deepEqual((await store.jobs.listByState(['queued'])).map((j) => j.id), ['job_2']);
      assert.deepEqual((await store.jobs.get('job_2'))!.params, { sh: 'true' });
    });

    it('meta: set and overwrite', async () => {
      assert.equal(await store.meta.get('k'), undefined);
      await store.meta.set('k', 'v1');
      await store.meta.set('k', 'v2');
      assert.equal(await store.meta.get('k'), 'v2');
    });
  });
}

const sqliteDir = mkdtempSync(join(tmpdir(), 'drover-contract-'));
after(() => rmSync(sqliteDir, { recursive: true, force: true }));
contract('sqlite', async () => {
  const url = join(sqliteDir, 'drover.db');
  (await Store.open(url)).close();
  return Store.open(url); // second open: migrations must be a no-op
});

const pgOk = prereq('PostgreSQL server (initdb, pg_ctl)', postgresBinDir() !== null, 'postgresql');
let pg: PrivatePostgres | undefined;
after(() => pg?.stop());
contract(
  'postgres',
  async () => {
    pg = await startPostgres();
    const url = pg.createDatabase('contract');
    await (await Store.open(url)).close();
    return Store.open(url);
  },
  pgOk,
);
