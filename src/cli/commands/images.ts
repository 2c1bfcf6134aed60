// `drover image add|rm|tag|ingests` and `drover sdcard build`: OS image ingest with a progress
// bar (the upload, then the controller's phases), and SD stub cards built locally from the
// controller's stub bundle.
import { spawnSync } from 'node:child_process';
import { createReadStream, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { basename, join, resolve as resolvePath } from 'node:path';
import type { Command } from 'commander';
import { ERRORS } from '../../domain/errors.js';
import type { Image, IngestJob } from '../../domain/records.js';
import { buildSdCard } from '../../images/sdcard.js';
import { CliError, enc, type ApiClient } from '../client.js';
import { printJson, printTable } from '../output.js';
import { action, bad, client, globals } from '../run.js';

const PHASES: Record<string, string> = {
  upload: 'uploading', queued: 'queued', receive: 'receiving', decompress: 'decompressing', partitions: 'reading partitions',
  'boot-files': 'copying boot files', initramfs: 'building initramfs', runtime: 'fetching the agent\'s Node.js runtime', rootfs: 'squashing the root filesystem', store: 'storing',
};

const human = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : n >= 1e3 ? `${(n / 1e3).toFixed(0)} kB` : `${n} B`);

/** One progress line: redrawn in place on a terminal, one line per phase otherwise. */
export class ProgressLine {
  private lastPhase = '';
  private drawn = false;
  constructor(private readonly quiet: boolean, private readonly tty = Boolean(process.stderr.isTTY)) {}

  update(phase: string, done: number, total: number | null): void {
    if (this.quiet) return;
    const label = PHASES[phase] ?? phase;
    if (!this.tty) {
      if (phase !== this.lastPhase) process.stderr.write(`${label}${total ? ` (${total > 1000 ? human(total) : total})` : ''}…\n`);
      this.lastPhase = phase;
      return;
    }
    const width = 30;
    const frac = total ? Math.min(1, done / total) : 0;
    const bar = total ? `[${'#'.repeat(Math.round(frac * width)).padEnd(width, '.')}] ${(frac * 100).toFixed(0).padStart(3)}%` : '[working…]'.padEnd(width + 7);
    const amount = total && total > 1000 ? ` ${human(done)}/${human(total)}` : total ? ` ${done}/${total}` : '';
    process.stderr.write(`\r${bar} ${label}${amount}`.padEnd(90).slice(0, 100));
    this.drawn = true;
    this.lastPhase = phase;
  }

  end(): void {
    if (this.drawn) process.stderr.write('\n');
    this.drawn = false;
  }
}

/** Streams a file as the request body, reporting bytes sent. */
function upload(c: ApiClient, token: string | undefined, path: string, query: Record<string, string>, onBytes: (n: number) => void): Promise<{ status: number; body: string }> {
  const size = statSync(path).size;
  const url = new URL(`${c.server}/api/v1/images?${new URLSearchParams(query).toString()}`);
  const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(size), accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
  });
  return new Promise((res, rej) => {
    const file = createReadStream(path, { highWaterMark: 1024 * 1024 });
    let answered = false;
    req.on('response', (r) => {
      answered = true;
      // The server may answer (refuse) before it has read the body: stop sending, then close
      // the connection once the answer is read, so the CLI never waits on an unread upload.
      file.unpipe(req);
      file.destroy();
      let body = '';
      r.setEncoding('utf8');
      r.on('data', (d: string) => (body += d));
      const done = () => {
        res({ status: r.statusCode ?? 0, body });
        req.destroy();
      };
      r.on('end', done);
      r.on('close', done);
    });
    req.on('error', (err) => {
      if (answered) return;
      const unreachable = () => rej(CliError.of('DROVER_CLI_SERVER_UNREACHABLE', `Upload to ${c.server} failed: ${err.message}`));
      // The server refused before reading the body and closed the connection while we were still
      // writing (EPIPE/ECONNRESET), so its answer was lost. Ask again with the same headers and no
      // body: a refusal is decided before the body, so the answer comes back without an upload.
      if (!/EPIPE|ECONNRESET/.test((err as NodeJS.ErrnoException).code ?? '')) return unreachable();
      const probe = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { method: 'POST', headers: req.getHeaders() as Record<string, string>, timeout: 10_000 });
      probe.on('response', (r) => {
        let body = '';
        r.setEncoding('utf8');
        r.on('data', (d: string) => (body += d));
        r.on('end', () => {
          probe.destroy();
          if ((r.statusCode ?? 0) >= 400) res({ status: r.statusCode ?? 0, body });
          else unreachable();
        });
      });
      probe.on('timeout', () => probe.destroy());
      probe.on('error', unreachable);
      probe.flushHeaders();
    });
    let sent = 0;
    file.on('data', (chunk) => {
      sent += chunk.length;
      onBytes(sent);
    });
    file.on('error', (err) => rej(bad(`Cannot read ${path}: ${err.message}`)));
    file.pipe(req);
  });
}

async function follow(c: ApiClient, job: IngestJob, bar: ProgressLine): Promise<IngestJob> {
  let j = job;
  for (;;) {
    bar.update(j.phase, j.done, j.total);
    if (j.status !== 'running') return j;
    await new Promise((r) => setTimeout(r, 400));
    j = await c.request('GET', `/api/v1/images/ingests/${enc(j.id)}`);
  }
}

export function registerImageCommands(image: Command): void {
  image
    .command('add <file>')
    .description('add an OS image (.img, .img.xz, .img.gz or .zip, e.g. Raspberry Pi OS): uploads it, then the controller extracts the boot files, builds Drover\'s initramfs per kernel and turns the root into a squashfs')
    .option('--name <name[:tag]>', 'image name and tag (default: from the file name, tag latest)')
    .option('--default', 'also make it the default image')
    .option('--on-server', 'FILE is a path on the controller host: ingest it there without uploading')
    .action(
      action(async (file: string, o: { name?: string; default?: boolean; onServer?: boolean }, cmd: Command) => {
        const c = client(cmd);
        const json = Boolean(globals(cmd).json);
        const name = o.name ?? basename(file).replace(/\.(img\.xz|img\.gz|zip|img|xz|gz)$/i, '').toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, 63);
        if (!name) throw bad('Give the image a name with --name NAME[:TAG].');
        const bar = new ProgressLine(json);
        let job: IngestJob;
        if (o.onServer) {
          job = await c.request('POST', '/api/v1/images/ingest', { name, path: resolvePath(file), ...(o.default ? { default: true } : {}) });
        } else {
          let size: number;
          try {
            size = statSync(file).size;
          } catch {
            throw bad(`Cannot read ${file}.`);
          }
          const token = c.token;
          const r = await upload(c, token, file, { name, filename: basename(file), ...(o.default ? { default: 'true' } : {}) }, (n) => bar.update('upload', n, size));
          const body = (() => {
            try {
              return JSON.parse(r.body) as IngestJob & { code?: string; message?: string; fix?: string };
            } catch {
              return null;
            }
          })();
          if (r.status !== 202 || !body) {
            bar.end();
            throw new CliError(body?.code ?? 'DROVER_INTERNAL', body?.message ?? `Upload answered ${r.status}`, body?.fix ?? '', r.status);
          }
          job = body;
        }
        const done = await follow(c, job, bar);
        bar.end();
        if (done.status === 'failed') {
          const e = done.error!;
          throw new CliError(e.code, e.message, (ERRORS as Record<string, { fix: string }>)[e.code]?.fix ?? '', 400);
        }
        const img: Image = await c.request('GET', `/api/v1/images/${enc(done.imageId!)}`);
        if (json) return printJson(img);
        const m = img.metadata as { kernels?: { file: string; version: string }[]; models?: string[]; rootfs?: { bytes: number }; osName?: string | null };
        process.stdout.write(
          `Added ${img.name}:${img.tag} (${img.id})${m.osName ? `: ${m.osName}` : ''}\n` +
            `  kernels: ${(m.kernels ?? []).map((k) => `${k.file} (${k.version})`).join(', ')}\n` +
            `  boots:   ${(m.models ?? []).join(', ') || 'no known Pi model'}\n` +
            `  rootfs:  ${human(m.rootfs?.bytes ?? 0)} squashfs${o.default ? '\n  now the default image' : ''}\n`,
        );
      }),
    );

  image
    .command('ingests')
    .description('running and recently finished image ingests')
    .action(
      action(async (_o: unknown, cmd: Command) => {
        const { items }: { items: IngestJob[] } = await client(cmd).request('GET', '/api/v1/images/ingests');
        if (globals(cmd).json) return printJson({ items });
        if (!items.length) return void process.stdout.write('No ingests.\n');
        printTable(items.map((j) => ({ id: j.id, name: `${j.name}:${j.tag}`, status: j.status, phase: j.phase, progress: j.total ? `${Math.round((100 * j.done) / j.total)}%` : '', error: j.error ? `${j.error.code}: ${j.error.message}` : '' })), ['id', 'name', 'status', 'phase', 'progress', 'error']);
      }),
    );

  image
    .command('rm <image>')
    .description('remove an image (refused while a device, group or the default uses it); its files go when no other tag shares them')
    .action(
      action(async (ref: string, _o: unknown, cmd: Command) => {
        const c = client(cmd);
        const res = await c.raw('DELETE', `/api/v1/images/${enc(ref)}`);
        if (res.status !== 204) {
          const j = (await res.json().catch(() => ({}))) as { code?: string; message?: string; fix?: string };
          throw new CliError(j.code ?? 'DROVER_INTERNAL', j.message ?? `answered ${res.status}`, j.fix ?? '', res.status);
        }
        if (globals(cmd).json) return printJson({ removed: ref });
        process.stdout.write(`Removed ${ref}.\n`);
      }),
    );

  image
    .command('tag <image> <name:tag>')
    .description('give an image another NAME:TAG (shares its files)')
    .action(
      action(async (ref: string, newName: string, _o: unknown, cmd: Command) => {
        const img: Image = await client(cmd).request('POST', `/api/v1/images/${enc(ref)}/tags`, { name: newName });
        if (globals(cmd).json) return printJson(img);
        process.stdout.write(`Tagged ${ref} as ${img.name}:${img.tag} (${img.id}).\n`);
      }),
    );
}

export function registerSdcard(program: Command): void {
  const sd = program.command('sdcard').description('SD stub cards: boot from the card, root from the controller (cached on the card)');
  sd.command('build')
    .description('write a flashable card image: a FAT partition with firmware, kernel, Drover initramfs and config, and a cache partition')
    .requiredOption('--out <file>', 'the card image to write (flash it with dd, rpi-imager or bmaptool)')
    .option('--image <image>', 'whose kernels and firmware go on the card (default: the default image)')
    .option('--card-server <url>', 'the controller URL written onto the card, when devices reach the controller by another address than this CLI does (default: --server)')
    .option('--wifi-ssid <ssid>', 'join this Wi-Fi network instead of wired Ethernet')
    .option('--wifi-psk-file <file>', 'a file holding the Wi-Fi passphrase (kept off the command line)')
    .option('--cache-size <MiB>', 'size of the cache partition in MiB', '4096')
    .action(
      action(async (o: { out: string; image?: string; cardServer?: string; wifiSsid?: string; wifiPskFile?: string; cacheSize: string }, cmd: Command) => {
        const c = client(cmd);
        const json = Boolean(globals(cmd).json);
        if (Boolean(o.wifiSsid) !== Boolean(o.wifiPskFile)) throw bad('--wifi-ssid and --wifi-psk-file go together.');
        const cacheSizeMiB = Number(o.cacheSize);
        if (!Number.isInteger(cacheSizeMiB) || cacheSizeMiB < 0) throw bad('--cache-size is a whole number of MiB.');
        const server = (o.cardServer ?? c.server).replace(/\/$/, '');
        const q = new URLSearchParams({ server, ...(o.image ? { image: o.image } : {}) });
        const res = await c.raw('GET', `/api/v1/sdcard/stub.tar?${q.toString()}`);
        if (!res.ok) {
          const j = (await res.json().catch(() => ({}))) as { code?: string; message?: string; fix?: string };
          throw new CliError(j.code ?? 'DROVER_INTERNAL', j.message ?? `answered ${res.status}`, j.fix ?? '', res.status);
        }
        const dir = mkdtempSync(join(tmpdir(), 'drover-sdcard-'));
        try {
          const tarFile = join(dir, 'stub.tar');
          writeFileSync(tarFile, Buffer.from(await res.arrayBuffer()));
          const x = spawnSync('tar', ['-xf', tarFile, '-C', dir, '--no-same-owner'], { encoding: 'utf8' });
          if (x.status !== 0) throw bad(`The stub bundle did not unpack: ${x.stderr}`);
          rmSync(tarFile);
          const files: { path: string; source: string | Buffer }[] = [];
          const walk = (d: string, rel = '') => {
            for (const name of readdirSync(d).sort()) {
              const abs = join(d, name);
              const r = rel ? `${rel}/${name}` : name;
              if (statSync(abs).isDirectory()) walk(abs, r);
              else files.push({ path: r, source: abs });
            }
          };
          walk(dir);
          if (o.wifiSsid && o.wifiPskFile) {
            const psk = readFileSync(o.wifiPskFile, 'utf8').trim();
            // Printable ASCII only: a quote or a newline would end the value in wpa_supplicant.conf.
            if (psk.length < 8 || psk.length > 63 || !/^[\x20-\x7e]+$/.test(psk) || psk.includes('"')) throw bad('A WPA passphrase is 8 to 63 printable ASCII characters, without ".');
            if (Buffer.byteLength(o.wifiSsid) > 32 || /[\x00-\x1f\x7f"]/.test(o.wifiSsid)) throw bad('An SSID is 1 to 32 bytes, without control characters or ".');
            files.push({ path: 'drover-wifi.conf', source: Buffer.from(`network={\n\tssid="${o.wifiSsid}"\n\tpsk="${psk}"\n}\n`) });
          }
          const bar = new ProgressLine(json);
          const layout = await buildSdCard({ out: resolvePath(o.out), files, cacheSizeMiB, onProgress: (p) => bar.update(p.phase, p.done, p.total) });
          bar.end();
          if (json) return printJson({ out: resolvePath(o.out), ...layout, files: files.length });
          process.stdout.write(`Wrote ${o.out}: ${files.length} boot files, ${layout.partitions.map((p) => `${p.label} ${human(p.size)}`).join(' + ')} (sparse); it boots from ${server}.\n`);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }),
    );
}
