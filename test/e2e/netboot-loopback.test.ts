// Virtual Pis of every model boot from a real `drover serve` process over TFTP on loopback
// (no root needed): prefix probe, tsize + early terminate, the whole file order, per-device
// rendered cmdline.txt, incoming device recorded, boot progress in the device's events.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tftpBoot } from '../../src/netboot/virtual-pi/boot.js';
import type { PiHardware } from '../../src/netboot/virtual-pi/models.js';
import { makeBootTree } from '../../src/demo/boot-tree.js';
import { freePort } from '../helpers/postgres.js';
import { drover, spawnServer, type ServerProcess } from '../helpers/server.js';

const PIS: PiHardware[] = [
  { model: 'pi3b', serial: '3b3b3b3b', mac: 'b8:27:eb:00:00:01', boardRevision: 'a02082' },
  { model: 'pi3b+', serial: '3b3b3b3c', mac: 'b8:27:eb:00:00:02', boardRevision: 'a020d3' },
  { model: 'pi4', serial: '4a4a4a4a', mac: 'dc:a6:32:00:00:03', boardRevision: 'c03111' },
  { model: 'pi5', serial: '5a5a5a5a', mac: '2c:cf:67:00:00:04', boardRevision: 'd04170' },
];

describe('virtual Pis netboot from drover serve over loopback TFTP', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'drover-netboot-lo-'));
  const tree = makeBootTree(join(tmp, 'boot'));
  let server: ServerProcess;
  let env: NodeJS.ProcessEnv;
  let tftpPort: number;
  const api = async (path: string, init: RequestInit = {}) =>
    (await fetch(`${server.url}${path}`, { ...init, headers: { authorization: `Bearer ${env.DROVER_TOKEN}`, 'content-type': 'application/json', ...(init.headers ?? {}) } })).json() as Promise<any>;

  before(async () => {
    tftpPort = await freePort();
    server = await spawnServer({ dataDir: join(tmp, 'data'), extraArgs: ['--tftp-listen', `127.0.0.1:${tftpPort}`] });
    env = { DROVER_SERVER: server.url, DROVER_TOKEN: server.adminToken(), HOME: tmp };
    const add = drover(['image', 'add-boot-dir', 'pios:test', tree, '--default'], env);
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stdout, /boots pi3b, pi3b\+, pi4, pi5; now the default image/);
  });
  after(async () => {
    await server?.kill9();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('every model fetches its full boot set, byte-identical, and is recorded as incoming', async () => {
    const reports = await Promise.all(PIS.map((hw) => tftpBoot(hw, { host: '127.0.0.1', port: tftpPort, blksize: hw.model === 'pi5' ? 1468 : 1024, retransmitMs: 500 })));
    for (const [i, r] of reports.entries()) {
      const hw = PIS[i]!;
      assert.ok(r.ok, `${hw.model}: ${r.reason}`);
      assert.equal(r.prefix, `${hw.serial}/`, 'the prefix probe found the per-device tree');
      for (const f of r.files.filter((x) => x.sha256 && !/(cmdline|config)\.txt$/.test(x.path))) {
        const local = readFileSync(join(tree, f.path.startsWith(r.prefix) ? f.path.slice(r.prefix.length) : f.path));
        assert.equal(f.sha256, createHash('sha256').update(local).digest('hex'), `${hw.model} ${f.path}`);
      }
      assert.ok(r.files.filter((f) => f.status === 'not-found').every((f) => f.optional), 'only optional probes are missing');
      const names = r.files.filter((f) => f.status === 'ok').map((f) => f.path.slice(r.prefix.length));
      const kernel = hw.model === 'pi5' ? 'kernel_2712.img' : 'kernel8.img';
      for (const must of ['config.txt', 'cmdline.txt', kernel, 'initramfs8']) assert.ok(names.includes(must), `${hw.model} fetched ${must}`);
      assert.match(r.cmdline!, new RegExp(`drover\\.serial=${hw.serial} drover\\.token=none`));
      const d = await api(`/api/v1/devices/${hw.serial}`);
      assert.equal(d.state, 'incoming');
    }
  });

  it('an accepted device gets its own token in cmdline.txt, and its boot shows in its events', async () => {
    const hw = PIS[2]!;
    await api(`/api/v1/devices/${hw.serial}/accept`, { method: 'POST', body: '{}' });
    const r = await tftpBoot(hw, { host: '127.0.0.1', port: tftpPort, blksize: 1024, retransmitMs: 500 });
    assert.ok(r.ok);
    const token = /drover\.token=(\S+)/.exec(r.cmdline!)![1]!;
    assert.match(token, /^drv_/);
    const me = await (await fetch(`${server.url}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } })).json() as any;
    assert.equal(me.role, 'device');
    const deadline = Date.now() + 10_000;
    let ev: any;
    while (Date.now() < deadline) {
      ev = (await api(`/api/v1/devices/${hw.serial}/events?type=boot.tftp`)).items[0];
      if (ev) break;
      await new Promise((res) => setTimeout(res, 250));
    }
    assert.ok(ev, `a boot.tftp event; server said: ${server.stdout()}${server.stderr()}`);
    assert.ok(ev.data.files >= 8 && ev.data.bytes > 10_000_000, JSON.stringify(ev.data));
    assert.equal((await api(`/api/v1/devices/${hw.serial}`)).state, 'booting');
    const files = await fetch(`${server.url}/boot/v1/files/${hw.serial}/kernel8.img`);
    assert.equal(files.status, 200);
    assert.equal(Buffer.from(await files.arrayBuffer()).length, readFileSync(join(tree, 'kernel8.img')).length);
  });

  it('a retired device is not served', async () => {
    await api(`/api/v1/devices/${PIS[3]!.serial}/retire`, { method: 'POST', body: '{}' });
    const r = await tftpBoot(PIS[3]!, { host: '127.0.0.1', port: tftpPort, blksize: 1024, retransmitMs: 500 });
    assert.equal(r.prefix, '', 'the prefix probe fails, so the Pi falls back to the root');
  });
});
