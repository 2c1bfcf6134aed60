// The systemd unit and install script are part of the product: check them with real tools.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { prereq, which } from './helpers/prereq.js';

const root = new URL('../', import.meta.url).pathname;
const unit = readFileSync(join(root, 'packaging/systemd/drover.service'), 'utf8');

describe('packaging', () => {
  it('the unit runs as its own user with only the network capabilities netboot needs', () => {
    assert.match(unit, /^User=drover$/m);
    assert.match(unit, /^AmbientCapabilities=CAP_NET_BIND_SERVICE CAP_NET_RAW$/m);
    assert.match(unit, /^CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_NET_RAW$/m);
    assert.match(unit, /^StateDirectory=drover$/m);
    assert.match(unit, /--data-dir \/var\/lib\/drover/);
    assert.match(unit, /^NoNewPrivileges=true$/m);
  });

  it('passes `systemd-analyze verify`', prereq('systemd-analyze', which('systemd-analyze') !== null, 'systemd'), () => {
    const dir = mkdtempSync(join(tmpdir(), 'drover-unit-'));
    try {
      // verify checks that ExecStart exists; point it at a binary every machine has.
      writeFileSync(join(dir, 'drover.service'), unit.replace('/usr/local/bin/drover', '/bin/true'));
      const r = spawnSync('systemd-analyze', ['verify', join(dir, 'drover.service')], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr.trim(), '', r.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the install script is valid bash and refuses to run without root', () => {
    assert.equal(spawnSync('bash', ['-n', join(root, 'packaging/install.sh')]).status, 0);
    if (process.getuid?.() !== 0) {
      const r = spawnSync('bash', [join(root, 'packaging/install.sh')], { encoding: 'utf8' });
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /run as root/);
    }
  });
});
