// The TFTP server against real clients (atftp, curl, busybox tftp) on loopback, and against a
// raw socket for the protocol corners real clients rarely hit: early terminate, duplicate ACKs,
// retransmission, unknown TIDs, malformed packets. One suite, run against each transfer engine
// (tftp-native.test.ts and tftp-js.test.ts).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { prereq, which } from '../../../test/helpers/prereq.js';
import { BootPathError, confine, normalizeBootPath } from '../bootfiles/paths.js';
import { FileCache } from '../bootfiles/file-cache.js';
import { buildAck, buildError, buildRequest, OPCODE, parseError, TFTP_ERROR } from './packet.js';
import { NativeTransferEngine } from './native-engine.js';
import { TftpFileError, TftpServer } from './server.js';
import type { TransferReport } from './transfer.js';

const run = promisify(execFile);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export type Engine = 'native' | 'js';

export function tftpSuite(engine: Engine): void {
  if (engine === 'native' && !NativeTransferEngine.available()) {
    // The addon is part of every build (npm start, npm test): missing means a broken build.
    describe('TFTP (native engine)', () => {
      it('needs the native addon (npm run build:native)', () => assert.fail('build/Release/drover_netsock.node is missing'));
    });
    return;
  }
  describe(`TFTP (${engine} engine)`, () => {
    const dir = mkdtempSync(join(tmpdir(), `drover-tftp-${engine}-`));
    const root = join(dir, 'root');
    const out = join(dir, 'out');
    mkdirSync(join(root, 'overlays'), { recursive: true });
    mkdirSync(out);
    const files: Record<string, Buffer> = {
      'config.txt': Buffer.from('[all]\narm_64bit=1\r\nkernel=kernel8.img\n'),
      'start4.elf': randomBytes(2_228_000),
      'kernel8.img': randomBytes(8 * 1024 * 1024 + 123),
      'exact.bin': randomBytes(1024 * 64), // a multiple of the block size: ends with an empty block
      'empty.bin': Buffer.alloc(0),
      'overlays/vc4.dtbo': randomBytes(5000),
    };
    for (const [name, data] of Object.entries(files)) writeFileSync(join(root, name), data);
    writeFileSync(join(dir, 'secret.txt'), 'outside the tree');
    symlinkSync(join(dir, 'secret.txt'), join(root, 'escape.txt'));
    // > 65535 blocks at 512 bytes: the block counter must wrap to 0.
    const BIG = 'big.img';
    files[BIG] = randomBytes(65_600 * 512 + 77);
    writeFileSync(join(root, BIG), files[BIG]!);

    const cache = new FileCache();
    const reports: TransferReport[] = [];
    const server = new TftpServer({
      host: '127.0.0.1',
      port: 0,
      timeoutMs: 300,
      maxRetries: 3,
      threads: engine === 'native' ? 2 : 0,
      resolve: async (path) => {
        try {
          return await cache.read(await confine(root, normalizeBootPath(path)));
        } catch (err) {
          if (err instanceof BootPathError) throw new TftpFileError(err.reason === 'not-found' ? TFTP_ERROR.notFound : TFTP_ERROR.accessViolation, err.message);
          throw err;
        }
      },
      onTransferEnd: (r) => reports.push(r),
    });
    let port = 0;

    before(async () => {
      port = await server.listen();
      // The native suite must really run the native engine.
      if (engine === 'native') assert.ok((server as unknown as { engine?: unknown }).engine, 'the native engine is in use');
    });
    after(async () => {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    });

    function checkFile(local: string, name: string) {
      assert.equal(sha(readFileSync(local)), sha(files[name]!), `${name} is byte-identical`);
    }

    const atftp = which('atftp');
    const busybox = which('busybox');
    const curl = which('curl');

    describe('real clients', () => {
      describe('atftp', prereq('atftp client', atftp !== null, 'atftp'), () => {
        for (const opts of [[], ['blksize 1024'], ['blksize 1468', 'tsize 0'], ['blksize 8'], ['blksize 65464', 'tsize 0'], ['windowsize 16', 'blksize 1024'], ['windowsize 64', 'blksize 1468', 'tsize 0'], ['timeout 2']]) {
          it(`fetches byte-identical files with options [${opts.join(', ')}]`, async () => {
            for (const name of ['start4.elf', 'exact.bin', 'empty.bin', 'overlays/vc4.dtbo']) {
              if (opts.includes('blksize 8') && name === 'start4.elf') continue; // 280k round trips: covered by the others
              const local = join(out, `atftp-${opts.join('_').replace(/\s/g, '')}-${name.replace('/', '_')}`);
              await run(atftp!, ['--get', '-r', name, '-l', local, ...opts.flatMap((o) => ['--option', o]), '127.0.0.1', String(port)]);
              checkFile(local, name);
            }
          });
        }

        it('fetches a file over 65535 blocks (block number rollover)', async () => {
          const local = join(out, 'atftp-big');
          await run(atftp!, ['--get', '-r', BIG, '-l', local, '127.0.0.1', String(port)], { timeout: 120_000 });
          checkFile(local, BIG);
        });

        it('is refused a write', async () => {
          writeFileSync(join(out, 'upload'), 'x');
          await assert.rejects(run(atftp!, ['--put', '-r', 'upload', '-l', join(out, 'upload'), '127.0.0.1', String(port)]));
        });
      });

      describe('curl', prereq('curl', curl !== null, 'curl'), () => {
        for (const blk of [undefined, 1024, 1468]) {
          it(`fetches byte-identical files (tsize${blk ? `, blksize ${blk}` : ''})`, async () => {
            for (const name of ['kernel8.img', 'config.txt', 'exact.bin']) {
              const local = join(out, `curl-${blk}-${name}`);
              await run(curl!, ['-sS', '-o', local, ...(blk ? ['--tftp-blksize', String(blk)] : []), `tftp://127.0.0.1:${port}/${name}`]);
              checkFile(local, name);
            }
          });
        }

        it('gets a prompt "file not found", and no traversal reaches outside the tree', async () => {
          for (const p of ['missing.bin', '../secret.txt', '..%2fsecret.txt', 'escape.txt', 'overlays/../../secret.txt']) {
            const t0 = Date.now();
            const r = await run(curl!, ['-sS', '-o', join(out, 'nope'), `tftp://127.0.0.1:${port}/${p}`]).catch((e) => e);
            assert.ok(r instanceof Error, `${p} must fail`);
            assert.ok(Date.now() - t0 < 3000, 'an ERROR packet, not silence');
          }
        });

        it('serves 40 parallel transfers of the same file', async () => {
          const jobs = Array.from({ length: 40 }, (_, i) =>
            run(curl!, ['-sS', '-o', join(out, `par-${i}`), '--tftp-blksize', '1024', `tftp://127.0.0.1:${port}/start4.elf`]),
          );
          await Promise.all(jobs);
          for (let i = 0; i < 40; i++) checkFile(join(out, `par-${i}`), 'start4.elf');
        });
      });

      describe('busybox tftp', prereq('busybox', busybox !== null, 'busybox'), () => {
        for (const blk of [512, 1024, 1468]) {
          it(`fetches byte-identical files with -b ${blk}`, async () => {
            for (const name of ['start4.elf', 'config.txt', 'empty.bin']) {
              const local = join(out, `bb-${blk}-${name}`);
              await run(busybox!, ['tftp', '-g', '-r', name, '-l', local, '-b', String(blk), '127.0.0.1', String(port)]);
              checkFile(local, name);
            }
          });
        }
      });
    });

    // --- raw protocol corners -------------------------------------------------------------------

    const opOf = (b: Buffer) => b.readUInt16BE(0);
    const blockOf = (b: Buffer) => b.readUInt16BE(2);

    describe('protocol corners (raw socket)', () => {
      it('treats "Early terminate" after the tsize OACK as normal (the Pi reads the size, then asks again)', async () => {
        const c = await new RawClient(port).bind();
        try {
          const before = server.stats.earlyTerminated;
          c.send(buildRequest(1, 'kernel8.img', 'octet', { tsize: 0, blksize: 1024 }));
          const oack = (await c.next())!;
          assert.equal(opOf(oack.msg), OPCODE.oack);
          assert.match(oack.msg.toString('latin1'), new RegExp(`tsize\\0${files['kernel8.img']!.length}\\0`));
          c.send(buildError(0, 'Early terminate'), oack.port);
          await new Promise((r) => setTimeout(r, 700));
          assert.equal(c.drain().length, 0, 'no DATA after the early terminate');
          assert.equal(server.stats.earlyTerminated, before + 1);
          assert.equal(reports.at(-1)?.outcome, 'early-terminate');
        } finally {
          c.close();
        }
      });

      it('never answers a duplicate ACK with a duplicate DATA (no Sorcerer\'s Apprentice)', async () => {
        const c = await new RawClient(port).bind();
        try {
          c.send(buildRequest(1, 'overlays/vc4.dtbo', 'octet', { blksize: 512 }));
          const oack = (await c.next())!;
          c.send(buildAck(0), oack.port);
          const d1 = (await c.next())!;
          assert.equal(blockOf(d1.msg), 1);
          c.send(buildAck(1), oack.port);
          c.send(buildAck(1), oack.port);
          c.send(buildAck(1), oack.port);
          const d2 = (await c.next())!;
          assert.equal(blockOf(d2.msg), 2);
          await new Promise((r) => setTimeout(r, 150));
          assert.equal(c.drain().length, 0, 'duplicate ACKs produced no extra packets');
          for (let b = 2; b <= 10; b++) {
            c.send(buildAck(b), oack.port);
            if (b < 10) assert.equal(blockOf((await c.next())!.msg), b + 1);
          }
        } finally {
          c.close();
        }
      });

      it('retransmits with back-off when an ACK is lost, then gives up', async () => {
        const c = await new RawClient(port).bind();
        try {
          c.send(buildRequest(1, 'config.txt', 'octet', {}));
          const first = (await c.next())!;
          assert.equal(opOf(first.msg), OPCODE.data);
          const t0 = Date.now();
          const again = (await c.next(2000))!;
          assert.deepEqual(again.msg, first.msg, 'same block resent');
          const third = (await c.next(3000))!;
          assert.deepEqual(third.msg, first.msg);
          assert.ok(Date.now() - t0 >= 800, 'the second retransmission waited longer (back-off)');
          const until = Date.now() + 6000;
          while (Date.now() < until && reports.at(-1)?.path !== 'config.txt') await new Promise((r) => setTimeout(r, 100));
          assert.equal(reports.at(-1)?.outcome, 'timeout');
        } finally {
          c.close();
        }
      });

      it('ignores a stranger on a transfer port (the socket is connected) and keeps the transfer', async () => {
        const c = await new RawClient(port).bind();
        const stranger = await new RawClient(port).bind();
        try {
          c.send(buildRequest(1, 'exact.bin', 'octet', {}));
          const d1 = (await c.next())!;
          stranger.send(buildAck(1), d1.port);
          assert.equal(await stranger.next(300), null, 'no DATA for a stranger');
          // Only retransmissions of block 1 may have arrived meanwhile: the stranger's ACK did not count.
          assert.ok(c.drain().every((m) => blockOf(m.msg) === 1));
          c.send(buildAck(1), d1.port);
          let next = await c.next();
          while (next && blockOf(next.msg) === 1) next = await c.next(); // a late retransmission
          assert.equal(blockOf(next!.msg), 2);
        } finally {
          c.close();
          stranger.close();
        }
      });

      it('shrugs off junk on a transfer port and still finishes a windowed transfer', async () => {
        const c = await new RawClient(port).bind();
        try {
          c.send(buildRequest(1, 'overlays/vc4.dtbo', 'octet', { blksize: 8, windowsize: 4 }));
          const oack = (await c.next())!;
          assert.equal(opOf(oack.msg), OPCODE.oack);
          for (let i = 0; i < 2000; i++) {
            const b = randomBytes(Math.floor(Math.random() * 40));
            // Junk ACKs for blocks far outside the window, truncated packets, unknown opcodes.
            if (i % 3 === 0 && b.length >= 4) b.writeUInt16BE(OPCODE.ack, 0);
            if (i % 3 === 0 && b.length >= 4) b.writeUInt16BE(1000 + (i % 60000), 2);
            c.send(b, oack.port);
          }
          await new Promise((r) => setTimeout(r, 100)); // junk may have overflowed the socket buffer
          c.send(buildAck(0), oack.port);
          // 5000 bytes at blksize 8: 626 blocks, sent 4 at a time; ACK each window's last block.
          const got: Buffer[] = [];
          let expected = 1;
          let lastAck = 0;
          while (got.reduce((n, b) => n + b.length, 0) < 5000 || got.at(-1)!.length === 8) {
            const d = await c.next();
            assert.ok(d, `DATA keeps coming (expected block ${expected}, last report ${JSON.stringify(reports.at(-1))})`);
            if (opOf(d.msg) !== OPCODE.data || blockOf(d.msg) !== (expected & 0xffff)) {
              c.send(buildAck(lastAck & 0xffff), oack.port); // a retransmission: our ACK was lost
              continue;
            }
            got.push(d.msg.subarray(4));
            if (expected % 4 === 0 || d.msg.length < 12) c.send(buildAck((lastAck = expected) & 0xffff), oack.port);
            expected++;
          }
          assert.equal(sha(Buffer.concat(got)), sha(files['overlays/vc4.dtbo']!));
          const until = Date.now() + 3000;
          while (Date.now() < until && reports.at(-1)?.path !== 'overlays/vc4.dtbo') await new Promise((r) => setTimeout(r, 20));
          assert.equal(reports.at(-1)?.outcome, 'complete');
          assert.equal(reports.at(-1)?.bytesAcked, 5000);
        } finally {
          c.close();
        }
      });

      it('drops and counts malformed packets, refuses writes, survives 5,000 fuzzed packets', async () => {
        const c = await new RawClient(port).bind();
        try {
          const malformed = server.stats.malformed;
          for (const junk of [Buffer.alloc(0), Buffer.from([0]), Buffer.from([0, 1]), Buffer.from([0, 1, 65, 66]), Buffer.from('\u0000\u0001file\u0000mail\u0000'), Buffer.from([0, 9, 1, 2])]) {
            c.send(junk);
          }
          c.send(buildRequest(2, 'x', 'octet'));
          const refused = (await c.next())!;
          assert.equal(parseError(refused.msg).code, TFTP_ERROR.accessViolation);
          await new Promise((r) => setTimeout(r, 100));
          assert.ok(server.stats.malformed >= malformed + 5);
          for (let i = 0; i < 5000; i++) {
            const b = randomBytes(2 + Math.floor(Math.random() * 80));
            if (i % 2) b.writeUInt16BE(1 + (i % 6), 0);
            c.send(b);
          }
          await new Promise((r) => setTimeout(r, 500));
          // Still serving.
          const local = join(out, 'after-fuzz');
          if (curl) {
            await run(curl, ['-sS', '-o', local, `tftp://127.0.0.1:${port}/config.txt`]);
            checkFile(local, 'config.txt');
          }
        } finally {
          c.close();
        }
      });
    });

    describe('boot paths', () => {
      it('normalises and confines request paths', async () => {
        assert.equal(normalizeBootPath('/overlays//vc4.dtbo'), 'overlays/vc4.dtbo');
        assert.equal(normalizeBootPath('./config.txt'), 'config.txt');
        for (const bad of ['', '../x', 'a/../../x', 'a\\b', 'a\u0000b', '\u0007', '/']) {
          assert.throws(() => normalizeBootPath(bad), BootPathError, JSON.stringify(bad));
        }
        await assert.rejects(confine(root, 'escape.txt'), { reason: 'outside' });
        await assert.rejects(confine(root, 'overlays'), { reason: 'not-found' });
        await assert.rejects(confine(root, 'nope'), { reason: 'not-found' });
        assert.ok((await confine(root, 'overlays/vc4.dtbo')).endsWith('vc4.dtbo'));
      });
    });

  });
}

class RawClient {
  readonly sock: Socket = createSocket('udp4');
  private queue: { msg: Buffer; port: number }[] = [];
  private waiters: (() => void)[] = [];
  constructor(private readonly serverPort: number) {
    this.sock.on('message', (msg, rinfo) => {
      this.queue.push({ msg, port: rinfo.port });
      this.waiters.splice(0).forEach((w) => w());
    });
  }
  async bind() {
    await new Promise<void>((r) => this.sock.bind(0, '127.0.0.1', () => r()));
    return this;
  }
  send(buf: Buffer, to = this.serverPort) {
    this.sock.send(buf, to, '127.0.0.1');
  }
  async next(ms = 2000): Promise<{ msg: Buffer; port: number } | null> {
    const deadline = Date.now() + ms;
    while (this.queue.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) return null;
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return this.queue.shift()!;
  }
  drain() {
    const q = this.queue;
    this.queue = [];
    return q;
  }
  close() {
    this.sock.close();
  }
}

