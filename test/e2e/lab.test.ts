// The network-namespace lab behind the demo and the netns tests: a lab whose owner died without
// cleaning up (kill -9) is removed by the next lab, and a new lab's subnet never collides with
// one still on the host (a stale uplink with the same address would take its replies).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { freeLabSubnet, Lab, netnsAvailable } from '../../src/demo/lab.js';
import { prereq } from '../helpers/prereq.js';

const ok = prereq('root and network namespaces (ip netns)', netnsAvailable(), 'iproute2 (and run as root)');
const labModule = new URL('../../src/demo/lab.ts', import.meta.url).pathname;
const netnsList = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
const links = () => execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' });

describe('network-namespace lab', ok, () => {
  it('removes the lab of a process killed with -9, and gives each live lab its own subnet', async () => {
    // A child builds a lab with an uplink, prints its id and subnet, and dies without cleaning up.
    const script = `
      import { freeLabSubnet, Lab } from ${JSON.stringify(labModule)};
      const lab = await Lab.create();
      const net = freeLabSubnet();
      await lab.uplink({ addr: net + '.1/24' });
      await lab.host('h', { addr: net + '.2/24' });
      console.log(JSON.stringify({ id: lab.id, net }));
      process.kill(process.pid, 'SIGKILL');`;
    const child = spawnSync(process.execPath, [...process.execArgv.filter((a) => !a.startsWith('--test')), '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    const { id } = JSON.parse(child.stdout.trim().split('\n').pop()!) as { id: string };
    let lab: Lab | undefined;
    try {
      assert.ok(netnsList().includes(`drv${id}lan`), 'the dead lab left its namespaces');
      assert.ok(links().includes(`drv${id}u`), 'and its uplink');
      assert.ok(existsSync(`/run/drover-labs/${id}`), 'and its record');

      lab = await Lab.create();
      assert.ok(!netnsList().includes(`drv${id}`), 'the next lab removed the dead one');
      assert.ok(!links().includes(`drv${id}u`), 'with its uplink');
      assert.ok(!existsSync(`/run/drover-labs/${id}`), 'and its record');
      assert.ok(existsSync(`/run/drover-labs/${lab.id}`), 'the live lab is recorded');

      const mine = freeLabSubnet();
      await lab.uplink({ addr: `${mine}.1/24` });
      assert.notEqual(freeLabSubnet(), mine, 'a second lab gets another subnet while this one lives');
    } finally {
      await lab?.destroy();
      execFileSync('sh', ['-c', `ip netns list | awk '/^drv${id}/ {print $1}' | xargs -rn1 ip netns del; ip link del drv${id}u 2>/dev/null; rm -f /run/drover-labs/${id}; true`]);
    }
    assert.ok(!existsSync(`/run/drover-labs/${lab!.id}`), 'destroy removes the record');
    assert.ok(!netnsList().includes(`drv${lab!.id}`));
  });
});
