import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { describeConfig, loadConfig, parseListen } from './load.js';

const dir = mkdtempSync(join(tmpdir(), 'drover-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe('configuration', () => {
  it('uses defaults, then file, then env, then flags', () => {
    const f = file('a.yaml', 'listen: 127.0.0.1:9000\nlogLevel: warn\nbodyLimit: 2048\ndataDir: /tmp/from-file\n');
    const c = loadConfig({ configFile: f, env: { DROVER_LOG_LEVEL: 'debug', DROVER_LISTEN: '127.0.0.1:9001' }, flags: { listen: '127.0.0.1:9002' } });
    assert.deepEqual(c.listen, { host: '127.0.0.1', port: 9002 });
    assert.equal(c.logLevel, 'debug');
    assert.equal(c.bodyLimit, 2048);
    assert.equal(c.dataDir, '/tmp/from-file');
    assert.equal(c.database, '/tmp/from-file/drover.db', 'SQLite in the data dir by default');
    assert.deepEqual([c.sources.listen, c.sources.logLevel, c.sources.bodyLimit, c.sources.authFailureLimit], ['flag', 'env', 'file', 'default']);
  });

  it('reads JSON files and DROVER_CONFIG', () => {
    const f = file('b.json', '{"authFailureLimit": 3}');
    assert.equal(loadConfig({ env: { DROVER_CONFIG: f } }).authFailureLimit, 3);
  });

  it('refuses bad values with DROVER_CONFIG_INVALID naming the setting and its source', () => {
    const cases: [object, RegExp][] = [
      [{ env: { DROVER_LISTEN: 'nonsense' } }, /listen \(env DROVER_LISTEN\)/],
      [{ env: { DROVER_LISTEN: '0.0.0.0:99999' } }, /listen/],
      [{ flags: { bodyLimit: '12kb' } }, /bodyLimit \(flag --body-limit\)/],
      [{ flags: { bodyLimit: '1' } }, /outside/],
      [{ env: { DROVER_LOG_LEVEL: 'loud' } }, /logLevel/],
      [{ flags: { publicUrl: 'ftp://x' } }, /publicUrl/],
      [{ flags: { database: 'relative.db' } }, /database/],
      [{ configFile: file('c.yaml', 'lisen: 1\n') }, /Unknown setting "lisen"/],
      [{ configFile: file('d.yaml', '- a list\n') }, /mapping/],
    ];
    for (const [opts, re] of cases) {
      assert.throws(() => loadConfig({ env: {}, ...opts }), (e: any) => e.code === 'DROVER_CONFIG_INVALID' && re.test(e.message), JSON.stringify(opts));
    }
    assert.throws(() => loadConfig({ configFile: join(dir, 'missing.yaml') }), { code: 'DROVER_CONFIG_UNREADABLE' });
    assert.throws(() => loadConfig({ configFile: file('e.yaml', 'a: [') }), { code: 'DROVER_CONFIG_UNREADABLE' });
  });

  it('parses listen addresses including IPv6', () => {
    assert.deepEqual(parseListen('[::]:8080'), { host: '::', port: 8080 });
    assert.deepEqual(parseListen(':8080'), { host: '0.0.0.0', port: 8080 });
  });

  it('redacts the database password when shown', () => {
    const c = loadConfig({ env: { DROVER_DATABASE: 'postgres://drover:s3cret@db:5432/drover' }, flags: { dataDir: dir } });
    const shown = JSON.stringify(describeConfig(c));
    assert.ok(!shown.includes('s3cret'));
    assert.ok(shown.includes('postgres://drover:***@db:5432/drover'));
  });
});
