// OS image ingest and the stateless boot chain over HTTP and the CLI, against a real
// `drover serve` child process and the Pi-like fixture disk image (test/fixtures):
//   - `drover image add|ls|show|tag|rm|ingests`: streamed uploads with progress, one stored copy
//     per disk image, bad and refused uploads leaving nothing behind, removal refused while used;
//   - the boot API a device's initramfs uses with its own token: config (JSON and shell), the
//     squashfs with Range, the per-device overlay (host keys, machine-id, group overlay dir and
//     authorized_keys), phase reports, re-image; and cattlepi's API with X-Api-Key;
//   - `drover sdcard build` (the card is inspected with sfdisk and mtools);
//   - ingest progress on the live event stream.
// Only loopback is used: the card's server URL (example.invalid) is written, never contacted.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { chmodSync, createReadStream, createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { createGzip, gunzipSync } from 'node:zlib';
import { buildPiImage, imagePrereq } from '../helpers/pi-image.js';
import { which } from '../helpers/prereq.js';
import { drover, spawnServer, type ServerProcess } from '../helpers/server.js';

const SERIAL = '10000001';
const SERIAL2 = '10000002';
const MAC = 'dc:a6:32:01:02:03';
const CARD_SERVER = 'http://example.invalid:8080';
const sbin = ['/usr/sbin', '/sbin'];

interface TarFile {
  path: string;
  type: string;
  mode: number;
  data: Buffer;
}

/** A minimal ustar/pax reader: enough for the overlay and stub bundles Drover writes. */
function untar(tar: Buffer): Map<string, TarFile> {
  const out = new Map<string, TarFile>();
  let off = 0;
  let paxPath: string | undefined;
  const str = (b: Buffer) => b.toString('utf8').replace(/\0.*$/s, '');
  while (off + 512 <= tar.length) {
    const h = tar.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const size = parseInt(str(h.subarray(124, 136)).trim() || '0', 8);
    const type = String.fromCharCode(h[156]!) || '0';
    const data = tar.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (type === 'x') {
      const m = /\d+ path=([^\n]*)\n/.exec(data.toString('utf8'));
      paxPath = m?.[1];
      continue;
    }
    if (type === 'g') continue;
    const prefix = str(h.subarray(345, 500));
    const path = (paxPath ?? (prefix ? `${prefix}/${str(h.subarray(0, 100))}` : str(h.subarray(0, 100)))).replace(/\/$/, '');
    paxPath = undefined;
    out.set(path, { path, type, mode: parseInt(str(h.subarray(100, 108)).trim() || '0', 8), data: Buffer.from(data) });
  }
  return out;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

/** An OpenSSH public key line made with node:crypto, for machines without ssh-keygen. */
function cryptoPublicKey(comment: string): string {
  const jwk = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }) as { x: string };
  const s = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  return `ssh-ed25519 ${Buffer.concat([s(Buffer.from('ssh-ed25519')), s(Buffer.from(jwk.x, 'base64url'))]).toString('base64')} ${comment}`;
}

describe('images and the boot API: HTTP and CLI against drover serve', () => {
  const skip = imagePrereq();
  const dir = mkdtempSync(join(tmpdir(), 'drover-images-api-'));
  const data = join(dir, 'data');
  const osDir = join(data, 'images', 'os');
  const imgA = join(dir, 'a.img');
  const imgAgz = join(dir, 'a.img.gz');
  const imgB = join(dir, 'b.img');
  const servers: ServerProcess[] = [];
  let server: ServerProcess;
  let env: NodeJS.ProcessEnv = {};
  let admin = '';
  let viewer = '';
  // Filled in as the suite goes: the first device, its token, and the second device's.
  const dev = { id: '', token: '', id2: '', token2: '' };

  interface Res {
    status: number;
    headers: Headers;
    body: Buffer;
    text: string;
    json: any;
  }
  async function call(method: string, path: string, o: { token?: string | null; body?: unknown; headers?: Record<string, string> } = {}): Promise<Res> {
    const token = o.token === undefined ? admin : o.token;
    const r = await fetch(`${server.url}${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}), ...o.headers },
      ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
    });
    const body = Buffer.from(await r.arrayBuffer());
    const text = body.toString('utf8');
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: r.status, headers: r.headers, body, text, json };
  }
  async function ok(method: string, path: string, o: Parameters<typeof call>[2] = {}): Promise<Res> {
    const r = await call(method, path, o);
    assert.ok(r.status >= 200 && r.status < 300, `${method} ${path}: ${r.status} ${r.text.slice(0, 500)}`);
    return r;
  }
  const cli = (args: string[], extra: NodeJS.ProcessEnv = {}) => drover(args, { ...env, ...extra });
  const cliOk = (args: string[], extra: NodeJS.ProcessEnv = {}) => {
    const r = cli(args, extra);
    assert.equal(r.code, 0, `drover ${args.join(' ')}: ${r.stderr}${r.stdout}`);
    return r;
  };
  const imageCount = async () => (await ok('GET', '/api/v1/images')).json.items.length as number;
  /** What the OS store holds besides finished image directories: must stay empty. */
  const leftovers = () => (existsSync(osDir) ? readdirSync(osDir).filter((n) => n.startsWith('.')) : []);
  const deviceToken = async (serial: string) => {
    const r = await ok('GET', `/boot/v1/files/${serial}/cmdline.txt`, { token: null });
    const m = /(?:^|\s)drover\.token=(\S+)/.exec(r.text);
    assert.ok(m, `no drover.token= in ${r.text}`);
    return m[1]!;
  };
  const overlayOf = (r: Res) => untar(gunzipSync(r.body));
  const shellValue = (script: string, name: string) => {
    const f = join(dir, `config-${Math.random().toString(36).slice(2)}.sh`);
    writeFileSync(f, script);
    return execFileSync('sh', ['-c', `. "$1"; printf '%s' "$${name}"`, 'sh', f], { encoding: 'utf8' });
  };

  before(async () => {
    if (skip.skip) return;
    buildPiImage(imgA, 'a');
    buildPiImage(imgB, 'b');
    await pipeline(createReadStream(imgA), createGzip({ level: 1 }), createWriteStream(imgAgz));
    server = await spawnServer({ dataDir: data });
    servers.push(server);
    admin = server.adminToken();
    env = { DROVER_SERVER: server.url, DROVER_TOKEN: admin, XDG_CONFIG_HOME: join(dir, 'config'), HOME: join(dir, 'home') };
    viewer = (await ok('POST', '/api/v1/tokens', { body: { name: 'e2e-viewer', role: 'viewer' } })).json.secret;
  });

  after(async () => {
    for (const s of servers) await s.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('image add uploads with progress, stores a disk image once, lists, shows and tags it', { skip: skip.skip }, async () => {
    const add = cliOk(['image', 'add', imgAgz, '--name', 'fix:one']);
    assert.match(add.stdout, /^Added fix:one \(img_\w+\)/m);
    // Not a terminal: one progress line per phase, no carriage-return redraws.
    assert.doesNotMatch(add.stderr, /\r/);
    const lines = add.stderr.split('\n').filter(Boolean);
    assert.match(lines[0]!, /^uploading \(\d+(\.\d+)? MB\)…$/, add.stderr);
    assert.ok(lines.some((l) => /^decompressing/.test(l)), add.stderr);
    assert.equal(new Set(lines).size, lines.length, `a phase printed twice:\n${add.stderr}`);

    const show = cliOk(['--json', 'image', 'show', 'fix:one']).json;
    assert.equal(show.kind, 'os-image');
    assert.equal(show.metadata.sourceFormat, 'gzip');
    assert.ok(show.metadata.kernels.some((k: any) => k.file === 'kernel8.img' && k.initramfs === 'drover-initramfs8'), JSON.stringify(show.metadata.kernels));
    assert.ok(show.metadata.models.length > 0);
    assert.match(show.metadata.rootfs.sha256, /^[0-9a-f]{64}$/);
    assert.ok(show.metadata.rootfs.bytes > 0);
    assert.deepEqual(show.usage, { devices: [], groups: [], isDefault: false });
    assert.match(cliOk(['image', 'ls']).stdout, /\sfix:one\s+-\s+os-image\s+ready/);

    // The same disk, raw this time, under another name: one stored copy.
    const raw = cliOk(['--json', 'image', 'add', imgA, '--name', 'fix:raw']).json;
    assert.equal(raw.sha256, show.sha256);
    assert.equal(raw.metadata.rootfs.sha256, show.metadata.rootfs.sha256);
    assert.deepEqual(readdirSync(osDir), [show.sha256], 'exactly one image directory and nothing else');
    const added = (await ok('GET', '/api/v1/events?type=image.added')).json.items;
    assert.equal(added.find((e: any) => e.data.name === 'fix:raw').data.reused, true);

    const tag = cliOk(['image', 'tag', 'fix:one', 'fix:two']);
    assert.match(tag.stdout, /Tagged fix:one as fix:two/);
    const two = (await ok('GET', '/api/v1/images/fix:two')).json;
    assert.equal(two.sha256, show.sha256);
    assert.notEqual(two.id, show.id);
    assert.equal(cli(['image', 'tag', 'fix:one', 'fix:two']).code, 5, 'a taken name is a conflict');
    const ingests = cliOk(['--json', 'image', 'ingests']).json.items;
    assert.ok(ingests.some((j: any) => j.name === 'fix' && j.tag === 'one' && j.status === 'done' && j.imageId === show.id));
  });

  it('bad or refused uploads change nothing and leave no files behind', { skip: skip.skip }, async () => {
    const before = await imageCount();
    // A damaged .xz: the first 8 MiB of the disk, compressed, cut in half.
    const head = readFileSync(imgA).subarray(0, 8 * 1024 * 1024);
    const full = execFileSync('xz', ['-0', '-c'], { input: head, maxBuffer: 64 * 1024 * 1024 });
    const truncated = join(dir, 'truncated.img.xz');
    writeFileSync(truncated, full.subarray(0, Math.floor(full.length / 2)));
    const text = join(dir, 'notes.img');
    writeFileSync(text, 'this is not a disk image\n'.repeat(100));

    const bad = cli(['image', 'add', truncated, '--name', 'bad:xz']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /error DROVER_IMAGE_CORRUPT: The \.xz file is damaged or truncated/);
    const notImage = cli(['image', 'add', text, '--name', 'bad:text']);
    assert.notEqual(notImage.code, 0);
    assert.match(notImage.stderr, /error DROVER_IMAGE_FORMAT/);
    // Refused before the body is read: an invalid name, a name that is taken.
    const badName = cli(['image', 'add', imgAgz, '--name', 'Not A Name']);
    assert.notEqual(badName.code, 0);
    assert.match(badName.stderr, /DROVER_VALIDATION/);
    const taken = cli(['image', 'add', imgAgz, '--name', 'fix:one']);
    assert.equal(taken.code, 5, taken.stderr);
    assert.match(taken.stderr, /DROVER_IMAGE_EXISTS/);
    // Only headers promising 10 GB, no body at all: the answer must come from the headers alone.
    const takenStatus = await new Promise<number>((resolve, reject) => {
      const u = new URL(`${server.url}/api/v1/images?name=fix:one`);
      const r = request({ host: u.hostname, port: u.port, path: `${u.pathname}${u.search}`, method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/octet-stream', 'content-length': String(10 * 1024 ** 3) } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
        r.destroy();
      });
      r.on('error', reject);
      r.setTimeout(10_000, () => reject(new Error('no answer before the body')));
      r.flushHeaders();
    });
    assert.equal(takenStatus, 409, 'a taken name is refused on the headers alone');
    // A file on the controller host that is not there: 400, no job.
    const jobsBefore = (await ok('GET', '/api/v1/images/ingests')).json.items.length;
    const missing = await call('POST', '/api/v1/images/ingest', { body: { name: 'nofile', path: join(dir, 'no-such.img.xz') } });
    assert.equal(missing.status, 400);
    assert.equal(missing.json.code, 'DROVER_VALIDATION');
    assert.match(missing.json.message, /no file .*no-such\.img\.xz on the controller host/);
    assert.equal((await ok('GET', '/api/v1/images/ingests')).json.items.length, jobsBefore, 'no ingest job was started');

    const failed = (await ok('GET', '/api/v1/events?type=image.ingest-failed')).json.items;
    const byName = (n: string) => failed.find((e: any) => e.data.name === n);
    assert.equal(byName('bad:xz')?.data.code, 'DROVER_IMAGE_CORRUPT');
    assert.equal(byName('bad:xz')?.data.source, 'truncated.img.xz');
    assert.equal(byName('bad:text')?.data.code, 'DROVER_IMAGE_FORMAT');
    const jobs = (await ok('GET', '/api/v1/images/ingests')).json.items;
    assert.equal(jobs.find((j: any) => j.name === 'bad' && j.tag === 'xz')?.status, 'failed');

    // Wrong content types, and a viewer: refused before anything is read.
    const jsonBody = await call('POST', '/api/v1/images?name=ct', { body: {} });
    assert.equal(jsonBody.status, 415);
    assert.equal(jsonBody.json.code, 'DROVER_UNSUPPORTED_MEDIA_TYPE');
    const plain = await call('POST', '/api/v1/images?name=ct', { headers: { 'content-type': 'text/plain' } });
    assert.equal(plain.status, 415);
    const started = Date.now();
    const asViewer = cli(['image', 'add', imgAgz, '--name', 'viewer:one'], { DROVER_TOKEN: viewer });
    assert.equal(asViewer.code, 3, asViewer.stderr);
    assert.match(asViewer.stderr, /DROVER_AUTH_FORBIDDEN/);
    assert.ok(Date.now() - started < 15_000, 'a refused upload does not hang the CLI');

    assert.equal(await imageCount(), before, 'no image row was added');
    assert.deepEqual(leftovers(), [], 'no upload or work files are left in the OS image store');
  });

  it('an upload larger than --image-upload-limit gets 413 and stores nothing', { skip: skip.skip }, async () => {
    const small = await spawnServer({ dataDir: join(dir, 'data-small'), extraArgs: ['--image-upload-limit', String(1024 * 1024)] });
    servers.push(small);
    try {
      const smallEnv = { DROVER_SERVER: small.url, DROVER_TOKEN: small.adminToken() };
      const started = Date.now();
      const r = cli(['image', 'add', imgAgz, '--name', 'big:one'], smallEnv);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /error DROVER_BODY_TOO_LARGE: The upload is \d+ bytes; this controller accepts up to 1048576/);
      assert.ok(Date.now() - started < 15_000, 'the CLI stops at the refusal');
      // Without a Content-Length the limit is enforced while streaming.
      const chunked = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(`${small.url}/api/v1/images?name=big&tag=chunked`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${small.adminToken()}` } });
        req.on('response', (res) => {
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('error', reject);
        const chunk = Buffer.alloc(64 * 1024, 7);
        let n = 0;
        const pump = () => {
          while (n < 64) {
            n++;
            if (!req.write(chunk)) return void req.once('drain', pump);
          }
          req.end();
        };
        pump();
      });
      assert.equal(chunked.status, 413);
      assert.equal(JSON.parse(chunked.body).code, 'DROVER_BODY_TOO_LARGE');
      const list = await fetch(`${small.url}/api/v1/images`, { headers: { authorization: `Bearer ${small.adminToken()}` } });
      assert.deepEqual(((await list.json()) as { items: unknown[] }).items, []);
      const store = join(dir, 'data-small', 'images', 'os');
      assert.deepEqual(existsSync(store) ? readdirSync(store) : [], [], 'nothing stored');
    } finally {
      await small.stop();
    }
  });

  it('the event stream carries an ingest\'s progress, phase by phase (ingest of a file on the controller)', { skip: skip.skip }, async () => {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 45_000);
    const res = await fetch(`${server.url}/api/v1/events/stream`, { headers: { authorization: `Bearer ${admin}` }, signal: ac.signal });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    const progress: any[] = [];
    let jobId = '';
    let final: any;
    try {
      // The stream is open (its comment line arrived) before the ingest starts.
      while (!buf.includes('drover event stream')) {
        const { value, done } = await reader.read();
        if (done) assert.fail('the event stream ended');
        buf += decoder.decode(value, { stream: true });
      }
      const started = await ok('POST', '/api/v1/images/ingest', { body: { name: 'fix:b', path: imgB } });
      assert.equal(started.status, 202);
      jobId = started.json.id;
      while (!final) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += decoder.decode(value, { stream: true });
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const msg = buf.slice(0, i);
          buf = buf.slice(i + 2);
          if (!/^event: progress$/m.test(msg)) continue;
          const job = JSON.parse(/^data: (.*)$/m.exec(msg)![1]!);
          if (job.id !== jobId) continue;
          progress.push(job);
          if (job.status !== 'running') final = job;
        }
      }
    } finally {
      clearTimeout(timer);
      ac.abort();
      await reader.cancel().catch(() => undefined);
    }
    assert.ok(final, `no final progress message; got ${progress.length}`);
    assert.equal(final.status, 'done', JSON.stringify(final));
    assert.match(final.imageId, /^img_/);
    const phases = [...new Set(progress.map((p) => p.phase))];
    for (const p of ['queued', 'decompress', 'partitions', 'boot-files', 'initramfs', 'rootfs', 'store']) assert.ok(phases.includes(p), `phase ${p} in ${phases.join(', ')}`);
    assert.ok(progress.some((p) => p.phase === 'rootfs' && p.total > 0 && p.done > 0), 'rootfs progress carries bytes');
    const b = (await ok('GET', '/api/v1/images/fix:b')).json;
    assert.equal(b.id, final.imageId);
    assert.equal(readdirSync(osDir).filter((n) => !n.startsWith('.')).length, 2);
  });

  it('image rm is refused while the image is the default or used by a group or device, and frees its files with the last tag', { skip: skip.skip }, async () => {
    const b = (await ok('GET', '/api/v1/images/fix:b')).json;
    assert.equal((await ok('POST', `/api/v1/images/${b.id}/tags`, { body: { name: 'fix:b2' } })).status, 201);
    const refused = (why: RegExp) => {
      const r = cli(['image', 'rm', 'fix:b']);
      assert.equal(r.code, 5, r.stderr);
      assert.match(r.stderr, /error DROVER_IMAGE_IN_USE: fix:b is used by /);
      assert.match(r.stderr, why);
    };
    await ok('PUT', '/api/v1/images/default', { body: { image: 'fix:b' } });
    refused(/the default image/);
    await ok('PUT', '/api/v1/images/default', { body: { image: 'fix:one' } });
    const group = (await ok('POST', '/api/v1/groups', { body: { name: 'rm-users', imageId: 'fix:b' } })).json;
    refused(/groups rm-users/);
    await ok('PATCH', `/api/v1/groups/${group.id}`, { body: { imageId: null } });
    const d = (await ok('POST', '/api/v1/devices', { body: { serial: '10000009', state: 'accepted' } })).json;
    await ok('POST', `/api/v1/devices/${d.id}/assign`, { body: { image: 'fix:b' } });
    assert.deepEqual((await ok('GET', `/api/v1/images/${b.id}/usage`)).json, { devices: [d.id], groups: [], isDefault: false });
    refused(new RegExp(`devices 10000009 \\(${d.id}\\)`)); // by serial (no hostname), with the id
    await ok('POST', `/api/v1/devices/${d.id}/assign`, { body: { image: null } });

    assert.match(cliOk(['image', 'rm', 'fix:b2']).stdout, /Removed fix:b2/);
    assert.ok(existsSync(join(osDir, b.sha256, 'rootfs.squashfs')), 'fix:b still has its files');
    cliOk(['image', 'rm', 'fix:b']);
    assert.ok(!existsSync(join(osDir, b.sha256)), 'the last tag took the files with it');
    assert.equal((await call('GET', '/api/v1/images/fix:b')).status, 404);
    // fix:one shares its files with fix:two and fix:raw.
    const one = (await ok('GET', '/api/v1/images/fix:one')).json;
    assert.equal((await call('DELETE', '/api/v1/images/fix:raw')).status, 204);
    assert.ok(existsSync(join(osDir, one.sha256, 'rootfs.squashfs')));
    const inUse = await call('DELETE', '/api/v1/images/fix:one');
    assert.equal(inUse.status, 409);
    assert.match(inUse.json.message, /the default image/);
    assert.deepEqual(leftovers(), []);
  });

  it('boot config (JSON and shell) names the image; the squashfs downloads whole and by Range', { skip: skip.skip }, async () => {
    await ok('PUT', '/api/v1/images/default', { body: { image: 'fix:one' } });
    const image = (await ok('GET', '/api/v1/images/fix:one')).json;
    dev.id = cliOk(['--json', 'node', 'add', SERIAL, '--hostname', 'h1', '--mac', MAC, '--label', 'rack=r7']).json.id;
    dev.token = await deviceToken(SERIAL);
    assert.match(dev.token, /^drv_/);

    const config = (await ok('GET', '/boot/v1/config', { token: dev.token })).json;
    assert.equal(config.node, dev.id);
    assert.equal(config.hostname, 'h1');
    assert.deepEqual(config.image, { id: image.id, name: 'fix', tag: 'one', sha256: image.sha256 });
    assert.equal(config.rootfs.url, `${server.url}/boot/v1/images/${image.id}/rootfs.squashfs`);
    assert.equal(config.rootfs.sha256, image.metadata.rootfs.sha256);
    assert.equal(config.rootfs.size, image.metadata.rootfs.bytes);
    assert.match(config.overlay.sha256, /^[0-9a-f]{64}$/);
    assert.equal(config.reimage, 0);

    const sh = await ok('GET', '/boot/v1/config?format=sh', { token: dev.token });
    assert.match(sh.headers.get('content-type') ?? '', /^text\/plain/);
    assert.equal(shellValue(sh.text, 'DROVER_ROOTFS_SHA256'), config.rootfs.sha256);
    assert.equal(shellValue(sh.text, 'DROVER_ROOTFS_URL'), config.rootfs.url);
    assert.equal(shellValue(sh.text, 'DROVER_ROOTFS_SIZE'), String(config.rootfs.size));
    assert.equal(shellValue(sh.text, 'DROVER_OVERLAY_SHA256'), config.overlay.sha256);
    assert.equal(shellValue(sh.text, 'DROVER_IMAGE_NAME'), 'fix:one');
    assert.equal(shellValue(sh.text, 'DROVER_HOSTNAME'), 'h1');
    assert.equal((await call('GET', '/boot/v1/config', { token: null })).status, 401);

    const path = new URL(config.rootfs.url).pathname;
    const whole = await ok('GET', path, { token: dev.token });
    assert.equal(whole.body.length, config.rootfs.size);
    assert.equal(sha256(whole.body), config.rootfs.sha256);
    assert.equal(whole.headers.get('accept-ranges'), 'bytes');
    const part = await call('GET', path, { token: dev.token, headers: { range: 'bytes=1000-4999' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 1000-4999/${config.rootfs.size}`);
    assert.ok(part.body.equals(whole.body.subarray(1000, 5000)));
    const resume = await call('GET', path, { token: dev.token, headers: { range: `bytes=${config.rootfs.size - 100}-` } });
    assert.equal(resume.status, 206);
    assert.ok(resume.body.equals(whole.body.subarray(config.rootfs.size - 100)));
    const tail = await call('GET', path, { token: dev.token, headers: { range: 'bytes=-10' } });
    assert.ok(tail.body.equals(whole.body.subarray(config.rootfs.size - 10)));
    const past = await call('GET', path, { token: dev.token, headers: { range: `bytes=${config.rootfs.size}-` } });
    assert.equal(past.status, 416);
    assert.equal(past.headers.get('content-range'), `bytes */${config.rootfs.size}`);

    // The SD stub's bundle for this device: the version the config announces.
    const stub = untar((await ok('GET', '/boot/v1/stub.tar', { token: dev.token })).body);
    assert.equal(stub.get('drover-stub.version')?.data.toString().trim(), config.stub.version);
    assert.ok(stub.has('kernel8.img') && stub.has('drover-initramfs8'));
  });

  it('the overlay: hostname, hosts, machine-id, host keys kept 0600, agent config; same bytes as the config promises', { skip: skip.skip }, async () => {
    const config = (await ok('GET', '/boot/v1/config', { token: dev.token })).json;
    const first = await ok('GET', '/boot/v1/overlay', { token: dev.token });
    assert.equal(first.headers.get('content-type'), 'application/gzip');
    assert.equal(sha256(first.body), config.overlay.sha256);
    assert.equal(first.headers.get('x-drover-sha256'), config.overlay.sha256);
    const second = await ok('GET', '/boot/v1/overlay', { token: dev.token });
    assert.ok(second.body.equals(first.body), 'the overlay is deterministic');

    const files = overlayOf(first);
    const text = (p: string) => {
      const f = files.get(p);
      assert.ok(f, `${p} in the overlay (has ${[...files.keys()].join(', ')})`);
      return f.data.toString('utf8');
    };
    assert.equal(text('etc/hostname'), 'h1\n');
    assert.match(text('etc/hosts'), /^127\.0\.1\.1\th1$/m);
    assert.match(text('etc/machine-id'), /^[0-9a-f]{32}\n$/);
    assert.equal(text('etc/machine-id'), overlayOf(second).get('etc/machine-id')!.data.toString());
    const key = files.get('etc/ssh/ssh_host_ed25519_key')!;
    assert.equal(key.mode & 0o777, 0o600, 'private host key is 0600 in the tar');
    assert.match(key.data.toString(), /^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
    const pub = text('etc/ssh/ssh_host_ed25519_key.pub');
    assert.match(pub, /^ssh-ed25519 AAAA\S+ root@h1\n$/);
    const agent = JSON.parse(text('etc/drover/agent.json'));
    assert.deepEqual(agent, { server: server.url, node: dev.id, serial: SERIAL, token: dev.token });
    assert.equal(files.get('etc/drover/agent.json')!.mode & 0o777, 0o600);
    assert.ok(!files.has('root/.ssh/authorized_keys'), 'no keys configured yet');

    if (which('ssh-keygen')) {
      const keyFile = join(dir, 'hostkey');
      writeFileSync(keyFile, key.data, { mode: 0o600 });
      chmodSync(keyFile, 0o600);
      const derived = execFileSync('ssh-keygen', ['-y', '-f', keyFile], { encoding: 'utf8' });
      assert.equal(derived.split(' ').slice(0, 2).join(' '), pub.split(' ').slice(0, 2).join(' '), 'ssh-keygen reads the private key and derives the .pub');
    }
    const sshDir = join(data, 'devices', dev.id, 'ssh');
    assert.equal(statSync(sshDir).mode & 0o777, 0o700);
    assert.deepEqual(readdirSync(sshDir), ['host-keys.json']);
    assert.equal(statSync(join(sshDir, 'host-keys.json')).mode & 0o777, 0o600);
    const stored = JSON.parse(readFileSync(join(sshDir, 'host-keys.json'), 'utf8')) as { type: string; publicKey: string }[];
    assert.equal(stored.find((k) => k.type === 'ed25519')!.publicKey, pub);
  });

  it('overlays are for their own device or an admin; concurrent first fetches agree on the host keys', { skip: skip.skip }, async () => {
    const own = await ok('GET', '/boot/v1/overlay', { token: dev.token });
    dev.id2 = (await ok('POST', '/api/v1/devices', { body: { serial: SERIAL2, hostname: 'h2', state: 'accepted' } })).json.id;
    dev.token2 = await deviceToken(SERIAL2);

    // A device token only ever gets its own device's overlay.
    const other = await call('GET', `/boot/v1/overlay?node=${dev.id}`, { token: dev.token2 });
    assert.equal(other.status, 403, `another device's token got ${other.headers.get('content-type')} (${other.body.length} bytes)`);
    assert.equal(other.json.code, 'DROVER_AUTH_FORBIDDEN');
    assert.equal((await call('GET', `/boot/v1/config?node=${SERIAL}`, { token: dev.token2 })).status, 403);
    const self = await ok('GET', `/boot/v1/overlay?node=${SERIAL2}`, { token: dev.token2 });
    assert.equal(overlayOf(self).get('etc/hostname')!.data.toString(), 'h2\n');
    const plain = await ok('GET', '/boot/v1/overlay', { token: dev.token2 });
    assert.equal(overlayOf(plain).get('etc/hostname')!.data.toString(), 'h2\n');
    assert.notEqual(sha256(plain.body), sha256(own.body));

    const asViewer = await call('GET', `/boot/v1/overlay?node=${dev.id}`, { token: viewer });
    assert.equal(asViewer.status, 403);
    const asAdmin = await ok('GET', `/boot/v1/overlay?node=${SERIAL}`);
    assert.ok(asAdmin.body.equals(own.body), 'an admin gets the same overlay the device gets');
    assert.equal((await call('GET', '/boot/v1/overlay')).status, 400, 'an admin names the device');

    // The first fetches of a new device race to create its host keys: all must get the same.
    const fresh = (await ok('POST', '/api/v1/devices', { body: { serial: '10000003', hostname: 'h3', state: 'accepted' } })).json.id;
    const all = await Promise.all([0, 1, 2, 3, 4].map(() => call('GET', `/boot/v1/config?node=${fresh}`)));
    assert.deepEqual(all.map((r) => r.status), [200, 200, 200, 200, 200], all.map((r) => r.text.slice(0, 200)).join('\n'));
    assert.equal(new Set(all.map((r) => r.json.overlay.sha256)).size, 1, 'one set of host keys');
    assert.equal(sha256((await ok('GET', `/boot/v1/overlay?node=${fresh}`)).body), all[0]!.json.overlay.sha256);
    assert.deepEqual(readdirSync(join(data, 'devices', fresh, 'ssh')), ['host-keys.json'], 'no temporary key files left');
  });

  it("a group's settings: authorized_keys, its overlay directory rendered with device facts, tmpfs size", { skip: skip.skip }, async () => {
    let publicKey: string;
    if (which('ssh-keygen')) {
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'e2e@drover', '-f', join(dir, 'id_e2e')]);
      publicKey = readFileSync(join(dir, 'id_e2e.pub'), 'utf8').trim();
    } else {
      publicKey = cryptoPublicKey('e2e@drover');
    }
    const overlayDir = join(dir, 'group-overlay');
    mkdirSync(join(overlayDir, 'etc'), { recursive: true });
    writeFileSync(join(overlayDir, 'etc', 'motd.tmpl'), 'Welcome to {{hostname}} in rack {{label.rack}} ({{serial}})\n');
    writeFileSync(join(overlayDir, 'etc', 'plain.conf'), 'as is {{hostname}}\n');
    const group = (await ok('POST', '/api/v1/groups', { body: { name: 'racked', settings: { authorizedKeys: [publicKey], overlayDir, tmpfsSize: '2G' } } })).json;
    await ok('PATCH', `/api/v1/devices/${dev.id}`, { body: { groupId: group.id } });

    const config = (await ok('GET', '/boot/v1/config', { token: dev.token })).json;
    assert.equal(config.tmpfsSize, '2G');
    assert.equal(shellValue((await ok('GET', '/boot/v1/config?format=sh', { token: dev.token })).text, 'DROVER_TMPFS_SIZE'), '2G');
    const overlay = await ok('GET', '/boot/v1/overlay', { token: dev.token });
    assert.equal(sha256(overlay.body), config.overlay.sha256);
    const files = overlayOf(overlay);
    assert.equal(files.get('root/.ssh/authorized_keys')?.data.toString(), `${publicKey}\n`);
    assert.equal(files.get('root/.ssh/authorized_keys')!.mode & 0o777, 0o600);
    assert.equal(files.get('root/.ssh')!.mode & 0o777, 0o700);
    assert.equal(files.get('etc/motd')?.data.toString(), `Welcome to h1 in rack r7 (${SERIAL})\n`);
    assert.ok(!files.has('etc/motd.tmpl'));
    assert.equal(files.get('etc/plain.conf')?.data.toString(), 'as is {{hostname}}\n', 'only .tmpl files are rendered');
    assert.equal(JSON.parse(files.get('etc/drover/device.json')!.data.toString()).group, 'racked');
    // The device outside the group is unaffected.
    assert.ok(!overlayOf(await ok('GET', '/boot/v1/overlay', { token: dev.token2 })).has('etc/motd'));
  });

  it('boot reports become boot.<phase> events and move the device state; only device tokens report', { skip: skip.skip }, async () => {
    const report = (body: unknown, token: string | null = dev.token) => call('POST', '/boot/v1/report', { token, body });
    assert.equal((await report({ phase: 'initramfs', status: 'ok', message: 'kernel 6.1', serial: SERIAL, cache: false })).status, 204);
    assert.equal((await ok('GET', `/api/v1/devices/${dev.id}`)).json.state, 'booting');
    assert.equal((await report({ phase: 'rootfs-download', status: 'ok', message: 'verified sha256', bytes: 4096, ms: 12, bytesPerSecond: 341333, attempts: 1 })).status, 204);
    assert.equal((await report({ phase: 'switch-root', status: 'ok', message: '/sbin/init', offline: false })).status, 204);
    assert.equal((await ok('GET', `/api/v1/devices/${dev.id}`)).json.state, 'running');

    const events = (await ok('GET', `/api/v1/events?device=${dev.id}&type=boot.*&limit=20`)).json.items;
    const ev = (type: string) => events.find((e: any) => e.type === type);
    assert.deepEqual(ev('boot.initramfs')?.data, { status: 'ok', message: 'kernel 6.1', serial: SERIAL, cache: false });
    assert.equal(ev('boot.initramfs')?.actor, 'initramfs');
    assert.deepEqual(ev('boot.rootfs-download')?.data, { status: 'ok', message: 'verified sha256', bytes: 4096, ms: 12, bytesPerSecond: 341333, attempts: 1 });
    assert.equal(ev('boot.switch-root')?.data.offline, false);

    assert.equal((await report({ phase: 'config', status: 'failed', message: 'no config' })).status, 204);
    assert.equal((await ok('GET', `/api/v1/devices/${dev.id}`)).json.state, 'failed');
    const failed = (await ok('GET', `/api/v1/events?device=${dev.id}&type=boot.config`)).json.items[0];
    assert.deepEqual(failed.data, { status: 'failed', message: 'no config' });

    const unknownField = await report({ phase: 'config', status: 'ok', rogue: 1 });
    assert.equal(unknownField.status, 400);
    assert.equal(unknownField.json.code, 'DROVER_VALIDATION');
    assert.equal((await report({ phase: 'reboot', status: 'ok' })).status, 400);
    assert.equal((await report({ phase: 'config', status: 'done' })).status, 400);
    assert.equal((await report({ phase: 'config', status: 'ok' }, admin)).status, 403);
    assert.equal((await report({ phase: 'config', status: 'ok' }, viewer)).status, 403);
    assert.equal((await report({ phase: 'config', status: 'ok' }, null)).status, 401);
    // Another device's report lands on that device only.
    assert.equal((await report({ phase: 'switch-root', status: 'ok' }, dev.token2)).status, 204);
    assert.equal((await ok('GET', `/api/v1/devices/${dev.id}`)).json.state, 'failed');
    assert.equal((await ok('GET', `/api/v1/devices/${dev.id2}`)).json.state, 'running');
  });

  it('drover node reimage bumps the re-image generation in the boot config', { skip: skip.skip }, async () => {
    const before = (await ok('GET', '/boot/v1/config', { token: dev.token })).json.reimage;
    const r = cliOk(['node', 'reimage', SERIAL]);
    assert.match(r.stdout, new RegExp(`${SERIAL}: re-image on next boot \\(generation ${before + 1}\\)`));
    assert.equal((await ok('GET', '/boot/v1/config', { token: dev.token })).json.reimage, before + 1);
    assert.equal(shellValue((await ok('GET', '/boot/v1/config?format=sh', { token: dev.token })).text, 'DROVER_REIMAGE'), String(before + 1));
    assert.equal((await ok('GET', '/boot/v1/config', { token: dev.token2 })).json.reimage, 0, 'only that device');
  });

  it("cattlepi: /boot/<id>/config and /images/<id>/... with X-Api-Key", { skip: skip.skip }, async () => {
    const image = (await ok('GET', '/api/v1/images/fix:one')).json;
    const key = (k: string | null): { token: null; headers: Record<string, string> } => ({ token: null, headers: k === null ? {} : { 'x-api-key': k } });
    // The first requests build initfs.tgz; concurrent ones must all get it.
    const first = await Promise.all([0, 1, 2, 3].map(() => call('GET', `/boot/${SERIAL}/config`, key(dev.token))));
    assert.deepEqual(first.map((r) => r.status), [200, 200, 200, 200], first.map((r) => r.text.slice(0, 200)).join('\n'));
    const c = first[0]!.json;
    assert.equal(new Set(first.map((r) => r.json.initfs.md5sum)).size, 1);
    assert.equal(c.initfs.url, `${server.url}/images/${image.id}/initfs.tgz`);
    assert.equal(c.rootfs.url, `${server.url}/images/${image.id}/rootfs.sqsh`);
    assert.equal(c.rootfs.md5sum, image.metadata.rootfs.md5);
    assert.equal(c.config.hostname, 'h1');
    assert.equal(c.config.drover.node, dev.id);

    // An admin names the device by its MAC, as cattlepi does.
    for (const id of [MAC.replace(/:/g, '-'), MAC]) {
      const byMac = await ok('GET', `/boot/${id}/config`, key(admin));
      assert.equal(byMac.json.config.drover.node, dev.id);
      assert.equal(byMac.json.initfs.md5sum, c.initfs.md5sum);
    }

    const initfs = await ok('GET', new URL(c.initfs.url).pathname, key(dev.token));
    assert.equal(md5(initfs.body), c.initfs.md5sum);
    const boot = untar(gunzipSync(initfs.body));
    assert.ok(boot.has('kernel8.img') && boot.has('drover-initramfs8') && boot.has('config.txt'), [...boot.keys()].join(', '));
    const rootfs = await ok('GET', new URL(c.rootfs.url).pathname, key(dev.token));
    assert.equal(md5(rootfs.body), c.rootfs.md5sum);
    assert.equal(readdirSync(join(osDir, image.sha256)).filter((n) => n.includes('.tmp')).length, 0);

    for (const path of [`/boot/${SERIAL}/config`, new URL(c.initfs.url).pathname, new URL(c.rootfs.url).pathname]) {
      const none = await call('GET', path, key(null));
      assert.equal(none.status, 401, path);
      assert.equal(none.json.code, 'DROVER_AUTH_MISSING');
      const bad = await call('GET', path, key(`drv_${'x'.repeat(43)}`));
      assert.equal(bad.status, 401, path);
      assert.equal(bad.json.code, 'DROVER_AUTH_INVALID');
    }
    assert.equal((await call('GET', `/images/${image.id}/other.bin`, key(dev.token))).status, 404);
  });

  it('drover sdcard build writes a card: two FAT partitions, the stub boot files, no token, optional Wi-Fi', { skip: skip.skip }, async () => {
    const mtoolsEnv = { ...process.env, MTOOLS_SKIP_CHECK: '1' };
    const inspect = (card: string) => {
      const table = JSON.parse(execFileSync(which('sfdisk', sbin)!, ['--json', card], { encoding: 'utf8' })).partitiontable;
      assert.equal(table.partitions.length, 2, JSON.stringify(table));
      for (const p of table.partitions) assert.ok(['b', 'c', 'e', '6', '4', '1'].includes(String(p.type).toLowerCase()), `FAT partition type, got ${p.type}`);
      const at = `${card}@@${table.partitions[0].start * (table.sectorsize ?? 512)}`;
      assert.equal(at, `${card}@@4194304`);
      const names = execFileSync('mdir', ['-b', '-i', at, '::'], { encoding: 'utf8', env: mtoolsEnv }).split('\n').map((l) => l.replace(/^::\//, '')).filter(Boolean);
      const read = (f: string) => execFileSync('mtype', ['-i', at, `::${f}`], { encoding: 'utf8', env: mtoolsEnv });
      return { names, read };
    };

    const card = join(dir, 'card.img');
    const r = cliOk(['sdcard', 'build', '--out', card, '--card-server', CARD_SERVER, '--cache-size', '64']);
    assert.match(r.stdout, new RegExp(`it boots from ${CARD_SERVER.replace(/\./g, '\\.')}`));
    const { names, read } = inspect(card);
    for (const f of ['kernel8.img', 'drover-initramfs8', 'config.txt', 'cmdline.txt', 'drover-stub.version']) assert.ok(names.includes(f), `${f} on the card (${names.join(', ')})`);
    assert.ok(!names.includes('drover-wifi.conf'));
    assert.match(read('config.txt'), /^initramfs drover-initramfs8 followkernel$/m);
    const cmdline = read('cmdline.txt');
    assert.match(cmdline, new RegExp(`(^|\\s)drover\\.server=${CARD_SERVER.replace(/\./g, '\\.')}(\\s|$)`));
    assert.match(cmdline, /(^|\s)drover\.boot=sdstub(\s|$)/);
    assert.doesNotMatch(cmdline, /drover\.token=|drv_/, 'a stub card is generic: no token');
    assert.doesNotMatch(cmdline, /root=|drover\.node=/);
    const config = (await ok('GET', '/boot/v1/config', { token: dev.token })).json;
    assert.equal(read('drover-stub.version').trim(), config.stub.version);

    const psk = join(dir, 'wifi-psk');
    writeFileSync(psk, 'correct horse battery\n', { mode: 0o600 });
    const wifiCard = join(dir, 'card-wifi.img');
    cliOk(['sdcard', 'build', '--out', wifiCard, '--card-server', CARD_SERVER, '--cache-size', '64', '--wifi-ssid', 'lab-net', '--wifi-psk-file', psk]);
    const wifi = inspect(wifiCard);
    assert.ok(wifi.names.includes('drover-wifi.conf'));
    const conf = wifi.read('drover-wifi.conf');
    assert.match(conf, /ssid="lab-net"/);
    assert.match(conf, /psk="correct horse battery"/);
    assert.equal(cli(['sdcard', 'build', '--out', join(dir, 'x.img'), '--wifi-ssid', 'lab-net']).code, 2, '--wifi-ssid needs --wifi-psk-file');
  });
});
