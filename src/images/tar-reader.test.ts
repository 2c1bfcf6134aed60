// The tar reader against archives from our own writer and from GNU tar: names long enough for
// pax and ustar prefixes, bodies split across chunks of any size, and damaged input refused with
// a message saying what is wrong.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { tarEntries, tarFiles } from './tar-reader.js';
import { tarOfFiles } from './tar.js';

const dir = mkdtempSync(join(tmpdir(), 'drover-tar-reader-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const long = `etc/${'very-long-directory-name/'.repeat(6)}agent.json`;
const files = [
  { path: 'etc/hostname', data: Buffer.from('pi-1\n') },
  { path: long, data: Buffer.from('{"token":"t"}\n') },
  { path: 'var/big.bin', data: Buffer.alloc(70_000, 7) },
  { path: 'empty', data: Buffer.alloc(0) },
];

function* chunks(b: Buffer, size: number): Generator<Buffer> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

describe('tar reader', () => {
  it('reads back what tar.ts writes, whatever the chunking', async () => {
    const tar = await tarOfFiles(files);
    const whole = await tarFiles(tar);
    for (const f of files) assert.deepEqual(whole.get(f.path), f.data, f.path);
    for (const size of [1, 511, 512, 4096, 100_000]) {
      const got = new Map<string, Buffer>();
      for await (const e of tarEntries(chunks(tar, size))) {
        if (e.type !== '0') continue;
        const parts: Buffer[] = [];
        await e.read((b) => {
          parts.push(b);
        });
        got.set(e.name, Buffer.concat(parts));
      }
      assert.deepEqual([...got.keys()].sort(), files.map((f) => f.path).sort(), `chunks of ${size}`);
      assert.deepEqual(got.get('var/big.bin'), files[2]!.data);
    }
  });

  it('reads GNU tar archives and skips bodies that are not read', async () => {
    const src = join(dir, 'src');
    mkdirSync(join(src, 'package', 'bin'), { recursive: true });
    writeFileSync(join(src, 'package', 'bin', 'node'), 'x'.repeat(1000));
    writeFileSync(join(src, 'package', 'LICENSE'), 'MIT');
    const tar = execFileSync('tar', ['-c', '-C', src, '--format=gnu', 'package']);
    const names: string[] = [];
    for await (const e of tarEntries([tar])) names.push(`${e.type}:${e.name}`);
    assert.ok(names.includes('0:package/bin/node') && names.includes('0:package/LICENSE'), names.join(' '));
    assert.equal((await tarFiles(tar)).get('package/LICENSE')?.toString(), 'MIT');
  });

  it('refuses a damaged header and a cut archive', async () => {
    const tar = await tarOfFiles(files);
    const bad = Buffer.from(tar);
    bad[10] = bad[10]! ^ 0xff;
    await assert.rejects(tarFiles(bad), /checksum does not match/);
    await assert.rejects(tarFiles(tar.subarray(0, 512 + 600)), /ends/);
  });
});
