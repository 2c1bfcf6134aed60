// Durability: `kill -9` of the controller in the middle of a burst of writes, then a restart.
// The database must open and every write the API acknowledged must be there, with its event.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { postgresBinDir, startPostgres, type PrivatePostgres } from '../helpers/postgres.js';
import { prereq } from '../helpers/prereq.js';
import { spawnServer, type ServerProcess } from '../helpers/server.js';

const WORKERS = 8;
const MAX_REQUESTS_PER_WORKER = 400; // bounded even if the kill never lands

async function burst(server: ServerProcess, token: string, round: number, killAfterMs: number): Promise<string[]> {
  const acked: string[] = [];
  let killed = false;
  const worker = async (w: number) => {
    for (let i = 0; i < MAX_REQUESTS_PER_WORKER && !killed; i++) {
      const serial = ((round << 20) | (w << 12) | i).toString(16).padStart(8, '0');
      try {
        const r = await fetch(`${server.url}/api/v1/devices`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ serial, labels: { round: String(round), worker: String(w) } }),
        });
        if (r.status === 201) acked.push(serial);
        else if (r.status !== 201) throw new Error(`unexpected ${r.status}: ${await r.text()}`);
      } catch (err) {
        if (killed) return; // the connection died with the server: not acknowledged
        throw err;
      }
    }
  };
  const workers = Array.from({ length: WORKERS }, (_, w) => worker(w));
  await new Promise((r) => setTimeout(r, killAfterMs));
  killed = true;
  await server.kill9();
  await Promise.all(workers);
  return acked;
}

async function allSerials(url: string, token: string): Promise<Set<string>> {
  const serials = new Set<string>();
  let cursor: string | null = null;
  do {
    const r = await fetch(`${url}/api/v1/devices?limit=500${cursor ? `&cursor=${cursor}` : ''}`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 200);
    const page = (await r.json()) as { items: { serial: string }[]; nextCursor: string | null };
    page.items.forEach((d) => serials.add(d.serial));
    cursor = page.nextCursor;
  } while (cursor);
  return serials;
}

async function createdEvents(url: string, token: string): Promise<number> {
  let n = 0;
  let cursor: string | null = null;
  do {
    const r = await fetch(`${url}/api/v1/events?type=device.created&limit=500${cursor ? `&cursor=${cursor}` : ''}`, { headers: { authorization: `Bearer ${token}` } });
    const page = (await r.json()) as { items: unknown[]; nextCursor: string | null };
    n += page.items.length;
    cursor = page.nextCursor;
  } while (cursor);
  return n;
}

function crashRounds(name: string, rounds: number, database: () => Promise<string | undefined>, skip: { skip: string | false } = { skip: false }) {
  describe(`kill -9 during a write burst: ${name}`, skip, () => {
    const dataDir = mkdtempSync(join(tmpdir(), `drover-crash-${name}-`));
    let server: ServerProcess | undefined;
    after(async () => {
      await server?.kill9();
      rmSync(dataDir, { recursive: true, force: true });
    });

    it(`loses nothing acknowledged over ${rounds} kill/restart rounds`, async () => {
      const db = await database();
      const everAcked: string[] = [];
      let token = '';
      for (let round = 1; round <= rounds; round++) {
        server = await spawnServer({ dataDir, ...(db ? { database: db } : {}) });
        token ||= server.adminToken();
        // The restarted controller opens the database and sees everything acknowledged before.
        const present = await allSerials(server.url, token);
        for (const s of everAcked) assert.ok(present.has(s), `round ${round}: acknowledged device ${s} was lost`);
        assert.equal(await createdEvents(server.url, token), present.size, 'every device has its device.created event (same transaction)');
        const acked = await burst(server, token, round, 150 + Math.floor(Math.random() * 350));
        assert.ok(acked.length > 0, 'the burst got some writes acknowledged before the kill');
        assert.ok(acked.length < WORKERS * MAX_REQUESTS_PER_WORKER, 'the kill landed in the middle of the burst');
        everAcked.push(...acked);
        server = undefined;
      }
      server = await spawnServer({ dataDir, ...(db ? { database: db } : {}) });
      const present = await allSerials(server.url, token);
      for (const s of everAcked) assert.ok(present.has(s), `final: acknowledged device ${s} was lost`);
      assert.equal((await (await fetch(`${server.url}/readyz`)).json() as { status: string }).status, 'ready');
      await server.stop();
      server = undefined;
    });
  });
}

crashRounds('sqlite', 5, async () => undefined);

let pg: PrivatePostgres | undefined;
after(() => pg?.stop());
crashRounds(
  'postgres',
  3,
  async () => {
    pg = await startPostgres();
    return pg.createDatabase('crash');
  },
  prereq('PostgreSQL server (initdb, pg_ctl)', postgresBinDir() !== null, 'postgresql'),
);
