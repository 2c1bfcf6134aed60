// A local npm registry for tests: package metadata (as `GET <registry>/<name>` answers it) and
// .tgz tarballs built in the test, over plain HTTP on 127.0.0.1. Faults on demand: a tarball
// whose published integrity is wrong, a download cut short, a package it does not have.
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { TarWriter } from '../../src/images/tar.js';

/** A gzipped tarball with these files (paths as in the archive, e.g. package/bin/node). */
export async function makeTgz(files: Record<string, { data: Buffer | string; mode?: number }>): Promise<Buffer> {
  const tar = new TarWriter();
  const parts: Buffer[] = [];
  const collected = (async () => {
    for await (const c of tar.stream as AsyncIterable<Buffer>) parts.push(c);
  })();
  for (const [path, f] of Object.entries(files)) {
    const data = Buffer.isBuffer(f.data) ? f.data : Buffer.from(f.data);
    await tar.add({ path, type: 'file', mode: f.mode ?? 0o644, uid: 0, gid: 0, mtimeNs: 499162500n * 1_000_000_000n }, data);
  }
  await tar.finish();
  await collected;
  return gzipSync(Buffer.concat(parts));
}

export const sri = (b: Buffer) => `sha512-${createHash('sha512').update(b).digest('base64')}`;

export type Fault = 'none' | 'bad-integrity' | 'cut-download' | 'no-integrity';

export interface FakeRegistry {
  /** With a trailing slash, as `npm config get registry` prints it. */
  url: string;
  /** Request paths, in order. */
  requests: string[];
  add(name: string, version: string, tgz: Buffer): void;
  fault(name: string, version: string, f: Fault): void;
  close(): Promise<void>;
}

export async function startFakeRegistry(): Promise<FakeRegistry> {
  const pkgs = new Map<string, Map<string, { tgz: Buffer; fault: Fault }>>();
  const requests: string[] = [];
  let url = '';
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    requests.push(path);
    const tarball = /^\/([^/]+)\/-\/(.+)-(\d+\.\d+\.\d+(?:-[\w.]+)?)\.tgz$/.exec(path);
    if (tarball) {
      const v = pkgs.get(tarball[1]!)?.get(tarball[3]!);
      if (!v) return void res.writeHead(404).end('{"error":"not found"}');
      if (v.fault === 'cut-download') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(v.tgz.length) });
        res.write(v.tgz.subarray(0, Math.floor(v.tgz.length / 2)), () => res.socket?.destroy());
        return;
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(v.tgz.length) });
      return void res.end(v.tgz);
    }
    const versions = pkgs.get(path.slice(1));
    if (!versions) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"Not found"}');
    const doc = {
      name: path.slice(1),
      'dist-tags': { latest: [...versions.keys()].at(-1) },
      versions: Object.fromEntries([...versions].map(([v, x]) => [v, {
        name: path.slice(1),
        version: v,
        dist: {
          tarball: `${url}${path.slice(1)}/-/${path.slice(1)}-${v}.tgz`,
          ...(x.fault === 'no-integrity' ? {} : { integrity: x.fault === 'bad-integrity' ? sri(Buffer.concat([x.tgz, Buffer.from('x')])) : sri(x.tgz) }),
        },
      }])),
    };
    res.writeHead(200, { 'content-type': 'application/vnd.npm.install-v1+json' }).end(JSON.stringify(doc));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  return {
    url,
    requests,
    add(name, version, tgz) {
      if (!pkgs.has(name)) pkgs.set(name, new Map());
      pkgs.get(name)!.set(version, { tgz, fault: 'none' });
    },
    fault(name, version, f) {
      pkgs.get(name)!.get(version)!.fault = f;
    },
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

/** A URL nothing listens on (a port just released). */
export async function deadRegistry(): Promise<string> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}/`;
}
