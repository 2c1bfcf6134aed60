// The stateless boot chain end to end with a real Linux kernel: QEMU (aarch64 virt, cortex-a72)
// boots the kernel from the ingested fixture image with Drover's initramfs and the cmdline
// Drover rendered for the device, against a running `drover serve` reached through QEMU user
// networking (10.0.2.2 is the host's loopback; the guest talks to nothing else). Boots:
//   1. netboot + SD card attached: a proxy flips a byte of the squashfs in transit → refused,
//      downloaded again, verified; overlay applied (Drover's hostname and host key); switch_root;
//      the card's cache now holds the image;
//   2. from the SD stub card with the controller stopped → the cached image boots offline;
//   3. after assigning image b, the next boot runs b;
//   4. the card boots, sees the controller assigned a newer stub, and rewrites its boot files.
import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildPiImage, imagePrereq } from '../helpers/pi-image.js';
import { freePort } from '../helpers/postgres.js';
import { prereq } from '../helpers/prereq.js';
import { netbootFiles as netbootFilesOf, qemuAarch64 as qemu, qemuBoot } from '../helpers/qemu.js';
import { drover, spawnServer, type ServerProcess } from '../helpers/server.js';

const SERIAL = '10000001';
const HOSTNAME = 'qemu-node-1';
const BOOT_TIMEOUT_MS = 100_000;

/** Forwards to the controller; while `corrupt` is set, flips one byte of the next squashfs body. */
class FlakyProxy {
  server: Server | undefined;
  corruptNext = false;
  corrupted = 0;
  constructor(readonly port: number, private target: () => number) {}

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const flip = this.corruptNext && /\/rootfs\.squashfs$/.test(req.url ?? '') && !req.headers.range;
      if (flip) this.corruptNext = false;
      const up = request({ host: '127.0.0.1', port: this.target(), path: req.url, method: req.method, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        let seen = 0;
        r.on('data', (chunk: Buffer) => {
          if (flip && seen <= 4096 && seen + chunk.length > 4096) {
            chunk = Buffer.from(chunk);
            chunk[4096 - seen]! ^= 0xff;
            this.corrupted++;
          }
          seen += chunk.length;
          res.write(chunk);
        });
        r.on('end', () => res.end());
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    await new Promise<void>((r) => this.server!.listen(this.port, '127.0.0.1', r));
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise((r) => this.server!.close(r));
    this.server = undefined;
  }
}

describe('QEMU: a real kernel boots an ingested image through Drover', prereq('qemu-system-aarch64', qemu !== null, 'qemu-system-arm'), () => {
  const skip = imagePrereq();
  const dir = mkdtempSync(join(tmpdir(), 'drover-qemu-'));
  const data = join(dir, 'data');
  const card = join(dir, 'card.img');
  let server: ServerProcess | undefined;
  let proxy: FlakyProxy;
  let serverPort = 0;
  let env: NodeJS.ProcessEnv = {};
  let deviceId = '';
  const children = new Set<ChildProcess>();

  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await proxy?.stop();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const api = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(`http://127.0.0.1:${serverPort}${path}`, {
      method,
      headers: { authorization: `Bearer ${env.DROVER_TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await r.text();
    assert.ok(r.ok, `${method} ${path}: ${r.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  };

  const startController = async () => {
    server = await spawnServer({
      dataDir: data,
      port: serverPort || undefined,
      extraArgs: ['--public-url', `http://10.0.2.2:${proxy.port}`, '--boot-offline-after', '3', '--boot-retry', '5'],
    });
    serverPort = server.port;
  };

  const boot = (name: string, o: { kernel: string; initrd: string; cmdline: string; disk?: string }) => qemuBoot({ name, ...o, dir, timeoutMs: BOOT_TIMEOUT_MS, children });

  /** The kernel, initramfs and cmdline a netbooting Pi gets, over the boot tree's HTTP mirror. */
  async function netbootFiles(tag: string) {
    const { config, ...files } = await netbootFilesOf(`http://127.0.0.1:${serverPort}`, SERIAL, dir, tag);
    assert.match(config, /^initramfs drover-initramfs8 followkernel$/m, 'config.txt loads Drover\'s initramfs');
    assert.doesNotMatch(config, /auto_initramfs/);
    assert.doesNotMatch(files.cmdline, /root=PARTUUID|rootfstype/, 'no SD root in a RAM boot');
    return files;
  }

  /** What the firmware would load from the SD stub card: its kernel, initramfs and cmdline. */
  function cardFiles(tag: string) {
    const at = `${card}@@${4 * 1024 * 1024}`;
    const kernel = join(dir, `card-kernel-${tag}`);
    const initrd = join(dir, `card-initrd-${tag}`);
    execFileSync('mcopy', ['-o', '-i', at, '::kernel8.img', kernel]);
    execFileSync('mcopy', ['-o', '-i', at, '::drover-initramfs8', initrd]);
    const cmdline = execFileSync('mtype', ['-i', at, '::cmdline.txt'], { encoding: 'utf8' });
    assert.doesNotMatch(cmdline, /drover\.token=/, 'a stub card is generic: no device token on it');
    // The Pi firmware puts the serial in the device tree; QEMU's virt board has none.
    return { kernel, initrd, cmdline: `${cmdline.trim()} drover.serial=${SERIAL}`, version: execFileSync('mtype', ['-i', at, '::drover-stub.version'], { encoding: 'utf8' }).trim() };
  }

  const events = async (type: string) => (await api('GET', `/api/v1/events?device=${deviceId}&type=${type}&limit=100`)).items.reverse() as { type: string; data: Record<string, unknown> }[];

  before(async () => {
    if (skip.skip) return;
    proxy = new FlakyProxy(await freePort(), () => serverPort);
    await proxy.start();
    await startController();
    env = { DROVER_SERVER: `http://127.0.0.1:${serverPort}`, DROVER_TOKEN: server!.adminToken() };
    const a = buildPiImage(join(dir, 'a.img'), 'a');
    const b = buildPiImage(join(dir, 'b.img'), 'b');
    execFileSync('xz', ['-T0', '-0', '-f', a]);
    const add = drover(['image', 'add', `${a}.xz`, '--name', 'fixture:a', '--default'], env);
    assert.equal(add.code, 0, add.stderr);
    const addB = drover(['--json', 'image', 'add', b, '--name', 'fixture:b', '--on-server'], env);
    assert.equal(addB.code, 0, addB.stderr);
    const dev = drover(['--json', 'node', 'add', SERIAL, '--hostname', HOSTNAME], env);
    assert.equal(dev.code, 0, dev.stderr);
    deviceId = dev.json.id;
    const sd = drover(['sdcard', 'build', '--out', card, '--card-server', `http://10.0.2.2:${proxy.port}`, '--cache-size', '64'], env);
    assert.equal(sd.code, 0, sd.stderr);
  });

  it('1: downloads, refuses a squashfs damaged in transit, re-downloads, applies the overlay and switches root', { skip: skip.skip }, async () => {
    proxy.corruptNext = true;
    const out = await boot('boot1', { ...(await netbootFiles('a')), disk: card });
    assert.equal(proxy.corrupted, 1, 'the proxy damaged one download');
    assert.match(out, /sha256 mismatch: the squashfs was damaged in transit/);
    assert.match(out, /downloaded and verified \d+ bytes/);
    assert.match(out, /SD cache on \/dev\/vda/);
    assert.match(out, /^DROVER-FIXTURE: init variant=a\r?$/m, "switch_root into the image's init");
    assert.match(out, new RegExp(`^DROVER-FIXTURE: hostname=${HOSTNAME}\\r?$`, 'm'), 'hostname from Drover');
    const keys = JSON.parse(readFileSync(join(data, 'devices', deviceId, 'ssh', 'host-keys.json'), 'utf8')) as { type: string; publicKey: string }[];
    const ed = keys.find((k) => k.type === 'ed25519')!.publicKey.split(' ')[1];
    assert.match(out, new RegExp(`^DROVER-FIXTURE: hostkey=${ed!.replace(/[+/]/g, '\\$&')}\\r?$`, 'm'), "the device's own host key");
    assert.match(out, /^DROVER-FIXTURE: root=overlay \/ overlay .*lowerdir=\/run\/drover\/lower/m, 'squashfs + tmpfs overlay');
    assert.match(out, /^DROVER-FIXTURE: machine-id=[0-9a-f]{32}\r?$/m);

    const download = await events('boot.rootfs-download');
    assert.ok(download.some((e) => e.data.status === 'failed' && /sha256 mismatch/.test(String(e.data.message))), 'the refused download was reported');
    const ok = download.find((e) => e.data.status === 'ok')!;
    assert.ok(Number(ok.data.bytes) > 0 && Number(ok.data.bytesPerSecond) > 0 && ok.data.attempts === 2, JSON.stringify(ok.data));
    for (const phase of ['initramfs', 'config', 'overlay', 'switch-root']) {
      assert.ok((await events(`boot.${phase}`)).some((e) => e.data.status === 'ok'), `boot.${phase} reported`);
    }
    const d = await api('GET', `/api/v1/devices/${deviceId}`);
    assert.equal(d.state, 'running');
  });

  it('2: with the controller stopped, the SD stub boots the cached image offline', { skip: skip.skip }, async () => {
    await server!.stop();
    await proxy.stop();
    const files = cardFiles('1');
    const out = await boot('boot2', { ...files, disk: card });
    assert.match(out, /controller unreachable .* booting the last good image from the SD cache \(offline mode\)/);
    assert.match(out, /using the cached squashfs/);
    assert.match(out, /OFFLINE boot from the SD cache/);
    assert.match(out, /^DROVER-FIXTURE: init variant=a\r?$/m);
    assert.match(out, new RegExp(`^DROVER-FIXTURE: hostname=${HOSTNAME}\\r?$`, 'm'));
    await proxy.start();
    await startController();
  });

  it('3: after assigning a new image, the next boot runs it', { skip: skip.skip }, async () => {
    const r = drover(['node', 'assign', SERIAL, 'fixture:b'], env);
    assert.equal(r.code, 0, r.stderr);
    const out = await boot('boot3', await netbootFiles('b'));
    assert.match(out, /^DROVER-FIXTURE: init variant=b\r?$/m);
    assert.match(out, new RegExp(`^DROVER-FIXTURE: hostname=${HOSTNAME}\\r?$`, 'm'));
  });

  it('4: an SD stub whose controller assigned a newer stub replaces its boot files', { skip: skip.skip }, async () => {
    const before = cardFiles('2');
    const out = await boot('boot4', { ...before, disk: card });
    assert.match(out, /phase stub-update/);
    assert.match(out, /stub updated; rebooting into it/);
    const now = cardFiles('3');
    assert.notEqual(now.version, before.version, 'the card carries the new stub version');
    const config = await api('GET', `/boot/v1/config?node=${deviceId}`);
    assert.equal(now.version, config.stub.version);
  });
});
