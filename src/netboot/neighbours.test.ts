import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { macForIp } from './neighbours.js';

describe('neighbour table', () => {
  const dir = mkdtempSync(join(tmpdir(), 'drover-arp-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const table = join(dir, 'arp');
  writeFileSync(
    table,
    [
      'IP address       HW type     Flags       HW address            Mask     Device',
      '198.18.0.60      0x1         0x2         B8:27:EB:10:00:01     *        lan0',
      '198.18.0.61      0x1         0x0         00:00:00:00:00:00     *        lan0',
      '198.18.0.62      0x1         0x0         dc:a6:32:00:00:02     *        lan0',
      '',
    ].join('\n'),
  );

  it('finds complete entries only, normalised to lower case', async () => {
    assert.equal(await macForIp('198.18.0.60', table), 'b8:27:eb:10:00:01');
    assert.equal(await macForIp('198.18.0.61', table), null, 'incomplete');
    assert.equal(await macForIp('198.18.0.62', table), null, 'not complete (flags 0)');
    assert.equal(await macForIp('198.18.0.6', table), null, 'no prefix matches');
    assert.equal(await macForIp('198.18.0.60', join(dir, 'missing')), null);
  });
});
