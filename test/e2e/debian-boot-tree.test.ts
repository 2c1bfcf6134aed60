// A realistic boot tree built from Debian packages (test/fixtures/build-boot-tree.sh: real Pi
// firmware, a real arm64 kernel, Broadcom device trees) served by `drover serve` to virtual Pis
// and to atftp at 256-byte blocks (the 33 MB kernel then needs block-number rollover).
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { tftpBoot } from '../../src/netboot/virtual-pi/boot.js';
import { freePort } from '../helpers/postgres.js';
import { inCI, prereq, which } from '../helpers/prereq.js';
import { drover, spawnServer, type ServerProcess } from '../helpers/server.js';

const run = promisify(execFile);
const root = new URL('../../', import.meta.url).pathname;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const tmp = mkdtempSync(join(tmpdir(), 'drover-debian-tree-'));
const tree = join(tmp, 'boot');

// Building the tree needs the Debian archive (cached after the first run).
const built = which('dpkg-deb') && which('apt-get') ? spawnSync('bash', [join(root, 'test/fixtures/build-boot-tree.sh'), tree], { encoding: 'utf8', timeout: 600_000 }) : null;
const ok = prereq(
  `a boot tree from Debian packages (test/fixtures/build-boot-tree.sh${built && built.status !== 0 ? `: ${built.stderr.trim().split('\n').pop()}` : ''})`,
  built?.status === 0,
  inCI ? 'dpkg-dev and apt (and access to the Debian archive)' : 'apt (and access to the Debian archive)',
);

describe('a boot tree from Debian packages', ok, () => {
  let server: ServerProcess;
  let tftpPort: number;
  before(async () => {
    tftpPort = await freePort();
    server = await spawnServer({ dataDir: join(tmp, 'data'), extraArgs: ['--tftp-listen', `127.0.0.1:${tftpPort}`] });
  });
  after(async () => {
    await server?.kill9();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('registers as an image that boots Pi 3B, 3B+ and 4', async () => {
    const r = drover(['--json', 'image', 'add-boot-dir', 'debian-fw', tree, '--default'], { DROVER_SERVER: server.url, DROVER_TOKEN: server.adminToken(), HOME: tmp });
    assert.equal(r.code, 0, r.stderr);
    for (const m of ['pi3b', 'pi3b+', 'pi4']) assert.ok(r.json.metadata.models.includes(m), `${m} in ${r.json.metadata.models}`);
    assert.ok(r.json.metadata.firmware.includes('start4.elf'));
  });

  it('a virtual Pi 4 and Pi 3B+ fetch the real firmware and kernel byte-identical', async () => {
    for (const hw of [
      { model: 'pi4' as const, serial: 'd0000004', mac: 'dc:a6:32:d0:00:04', boardRevision: 'c03111' },
      { model: 'pi3b+' as const, serial: 'd0000003', mac: 'b8:27:eb:d0:00:03', boardRevision: 'a020d3' },
    ]) {
      const r = await tftpBoot(hw, { host: '127.0.0.1', port: tftpPort, blksize: 1024, retransmitMs: 1000 });
      assert.ok(r.ok, `${hw.model}: ${r.reason}`);
      for (const f of r.files.filter((x) => x.sha256 && !x.path.endsWith('.txt'))) {
        const name = f.path.startsWith(r.prefix) ? f.path.slice(r.prefix.length) : f.path;
        assert.equal(f.sha256, sha(readFileSync(join(tree, name))), `${hw.model} ${f.path}`);
      }
      assert.ok(r.files.some((f) => f.path.endsWith('kernel8.img') && f.bytes > 10_000_000), 'a real kernel');
    }
  });

  it('atftp at 256-byte blocks fetches the real kernel (past 65535 blocks)', prereq('atftp client', which('atftp') !== null, 'atftp'), async () => {
    const size = readFileSync(join(tree, 'kernel8.img')).length;
    assert.ok(size > 65535 * 256, 'the kernel is large enough to need rollover');
    const local = join(tmp, 'kernel.atftp');
    await run('atftp', ['--get', '-r', 'd0000004/kernel8.img', '-l', local, '--option', 'blksize 256', '127.0.0.1', String(tftpPort)], { timeout: 120_000 });
    assert.equal(sha(readFileSync(local)), sha(readFileSync(join(tree, 'kernel8.img'))));
  });
});
