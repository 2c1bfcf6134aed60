// The real thing, in network namespaces this test creates: a LAN (bridge) with dnsmasq as the
// LAN's DHCP server, Drover's proxy DHCP + TFTP on its `lan0` interface, virtual Pis of every
// model doing DHCP and the TFTP boot, real udhcpc clients, and a second segment on Drover's
// `other0` interface where nobody may be answered.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeBootTree } from '../../src/demo/boot-tree.js';
import { Lab, netnsAvailable } from '../../src/demo/lab.js';
import { prereq, which } from '../helpers/prereq.js';
import { droverArgv } from '../helpers/server.js';

const root = new URL('../../', import.meta.url).pathname;
const canNetns = netnsAvailable();
const ok = canNetns
  ? prereq('dnsmasq (the LAN DHCP server of the netns tests)', which('dnsmasq') !== null, 'dnsmasq-base')
  : prereq('root and network namespaces (ip netns)', false, 'iproute2 (and run as root)');

const PIS = [
  { short: 'pi3b', model: 'pi3b', serial: '3b000001', mac: 'b8:27:eb:10:00:01' },
  { short: 'pi3p', model: 'pi3b+', serial: '3b000002', mac: 'b8:27:eb:10:00:02' },
  { short: 'pi4', model: 'pi4', serial: '4a000003', mac: 'dc:a6:32:10:00:03' },
  { short: 'pi5', model: 'pi5', serial: '5a000004', mac: '2c:cf:67:10:00:04' },
];

describe('netboot in network namespaces beside a real dnsmasq', ok, () => {
  let lab: Lab;
  const tmp = mkdtempSync(join(tmpdir(), 'drover-netns-'));
  const dataDir = join(tmp, 'data');
  let env: NodeJS.ProcessEnv;
  let dnsmasqLog = '';
  const cli = (args: string[]) => lab.exec('srv', process.execPath, [...droverArgv(), ...args], { env });

  before(async () => {
    lab = await Lab.create();
    await lab.host('srv', { ifname: 'lan0', addr: '198.18.0.1/24' });
    await lab.host('dhcp', { addr: '198.18.0.2/24' });
    await lab.cable({ short: 'srv', ifname: 'other0', addr: '198.18.1.1/24' }, { short: 'stray', ifname: 'eth0', mac: 'dc:a6:32:99:00:09' });
    for (const p of PIS) await lab.host(p.short, { mac: p.mac });
    const dnsmasq = lab.spawn('dhcp', 'dnsmasq', [
      '--no-daemon', '--port=0', '--conf-file=/dev/null', '--interface=eth0', '--bind-interfaces',
      '--dhcp-range=198.18.0.100,198.18.0.200,255.255.255.0,1h', `--dhcp-leasefile=${join(tmp, 'dnsmasq.leases')}`,
      `--pid-file=${join(tmp, 'dnsmasq.pid')}`, '--log-dhcp',
    ]);
    dnsmasq.stderr!.on('data', (d) => (dnsmasqLog += d));
    const drover = lab.spawn('srv', process.execPath, [
      ...droverArgv(), 'serve', '--data-dir', dataDir, '--listen', '0.0.0.0:8080', '--tftp-listen', '0.0.0.0:69',
      '--dhcp-interface', 'lan0', '--pi3-reply-delay', '300', '--log-level', 'info',
    ]);
    let out = '';
    drover.stdout!.on('data', (d) => (out += d));
    drover.stderr!.on('data', (d) => (out += d));
    const deadline = Date.now() + 30_000;
    while (!(await lab.exec('srv', 'curl', ['-sf', 'http://127.0.0.1:8080/readyz'])).stdout.includes('ready')) {
      if (Date.now() > deadline || drover.exitCode !== null) throw new Error(`drover did not start: ${out}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.match(out, /"msg":"dhcp serving"/);
    const token = (await lab.exec('srv', 'cat', [join(dataDir, 'initial-admin-token')])).stdout.trim();
    env = { DROVER_SERVER: 'http://127.0.0.1:8080', DROVER_TOKEN: token, HOME: tmp };
    const add = await cli(['image', 'add-boot-dir', 'pios', makeBootTree(join(tmp, 'boot')), '--default']);
    assert.equal(add.code, 0, add.stderr);
  });
  after(async () => {
    await lab?.destroy();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('every Pi model gets an address from dnsmasq, boot info from Drover, and its full boot set', async () => {
    const runs = await Promise.all(
      PIS.map((p) => lab.exec(p.short, process.execPath, [...droverArgv(), '--json', 'virtual-pi', '--model', p.model, '--serial', p.serial, '--mac', p.mac, '--dhcp', 'eth0'], { timeout: 90_000 })),
    );
    for (const [i, r] of runs.entries()) {
      const p = PIS[i]!;
      assert.equal(r.code, 0, `${p.model}: ${r.stdout.slice(0, 600)}${r.stderr}`);
      const report = JSON.parse(r.stdout);
      assert.equal(report.ok, true, `${p.model}: ${report.reason}`);
      assert.equal(report.dhcp.addressServer, '198.18.0.2', 'the address came from dnsmasq');
      assert.match(report.dhcp.ip, /^198\.18\.0\.(1\d\d|200)$/);
      assert.equal(report.dhcp.tftpServer, '198.18.0.1', 'boot info came from Drover');
      assert.equal(report.tftp.prefix, `${p.serial}/`);
      assert.match(report.tftp.cmdline, new RegExp(`drover\\.server=http://198\\.18\\.0\\.1:8080 .*drover\\.serial=${p.serial}`), 'cmdline rendered for this device and subnet');
      assert.ok(report.tftp.files.some((f: any) => f.path.endsWith('initramfs8') && f.status === 'ok'));
    }
  });

  it('records each Pi as incoming with what its DHCP packets said, and the boot in its events', async () => {
    // The Pi 3B's DHCP carries no serial: it is recorded by its TFTP requests, and linked to its
    // MAC (and the model its DHCP implied) through the server's neighbour table.
    let list: any = { items: [] };
    for (let i = 0; i < 20; i++) {
      list = JSON.parse((await cli(['--json', 'node', 'ls'])).stdout);
      if (PIS.every((p) => list.items.find((x: any) => x.serial === p.serial)?.macs.length)) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    for (const p of PIS) {
      const d = list.items.find((x: any) => x.serial === p.serial);
      assert.ok(d, `${p.model} recorded`);
      assert.equal(d.state, 'incoming');
      assert.deepEqual(d.macs, [p.mac], `${p.model} has its MAC`);
      assert.match(d.model, /Raspberry Pi/);
    }
    const pi3b = list.items.find((x: any) => x.serial === '3b000001');
    assert.equal(pi3b.model, 'Raspberry Pi 3 Model B');
    const pi4 = JSON.parse((await cli(['--json', 'node', 'events', '4a000003'])).stdout).items.map((e: any) => e.type);
    assert.ok(pi4.includes('device.discovered'));
    assert.ok(pi4.includes('boot.dhcp'));
    const deadline = Date.now() + 10_000;
    let types: string[] = [];
    while (!types.includes('boot.tftp') && Date.now() < deadline) {
      types = JSON.parse((await cli(['--json', 'node', 'events', '4a000003'])).stdout).items.map((e: any) => e.type);
      await new Promise((r) => setTimeout(r, 300));
    }
    assert.ok(types.includes('boot.tftp'));
  });

  it('answers nothing on an interface it was not told to use', async () => {
    const r = await lab.exec('stray', process.execPath, [...droverArgv(), '--json', 'virtual-pi', '--model', 'pi4', '--serial', '99000009', '--mac', 'dc:a6:32:99:00:09', '--dhcp', 'eth0', '--dhcp-timeout', '4000'], { timeout: 60_000 });
    assert.notEqual(r.code, 0);
    assert.match(JSON.parse(r.stdout).reason, /^dhcp: /);
    const list = JSON.parse((await cli(['--json', 'node', 'ls'])).stdout);
    assert.ok(!list.items.some((d: any) => d.serial === '99000009'), 'the stray Pi was never seen by Drover');
  });

  it('busybox udhcpc with the PXE vendor class sees Drover\'s proxy offer; a non-Pi client sees none', prereq('busybox', which('busybox') !== null, 'busybox'), async () => {
    const sniff = async (short: string, mac: string, vendor = 'PXEClient:Arch:00000:UNDI:002001', extra: string[] = []) => {
      await lab.host(short, { mac });
      const sniffer = lab.spawn(short, process.execPath, ['--import', 'tsx', join(root, 'test/helpers/dhcp-sniffer.ts'), 'eth0', '8'], {});
      let lines = '';
      sniffer.stdout!.on('data', (d) => (lines += d));
      while (!lines.includes('ready')) await new Promise((r) => setTimeout(r, 50));
      const udhcpc = await lab.exec(short, 'busybox', ['udhcpc', '-B', '-i', 'eth0', '-n', '-q', '-t', '6', '-T', '1', '-A', '1', '-V', vendor, ...extra, '-s', '/bin/true'], { timeout: 20_000 });
      await new Promise((r) => sniffer.once('exit', r));
      return { leased: udhcpc.code === 0, replies: lines.split('\n').slice(1).filter(Boolean).map((l) => JSON.parse(l)) };
    };
    // (dnsmasq unicasts its offers to udhcpc, so the sniffer sees Drover's broadcast proxy offer
    // only; udhcpc getting its lease shows dnsmasq answered.)
    const asPi = await sniff('udhcpi', 'dc:a6:32:20:00:01');
    assert.ok(asPi.replies.some((r) => r.server === '198.18.0.1' && r.menu && r.yiaddr === '0.0.0.0'), `proxy offer seen: ${JSON.stringify(asPi)}`);
    assert.ok(asPi.leased, 'udhcpc still got its address from dnsmasq');
    const notPi = await sniff('udhcpx', '52:54:00:20:00:02');
    assert.ok(notPi.leased, `dnsmasq answered the non-Pi: ${dnsmasqLog.split('\n').slice(-15).join('\n')}`);
    assert.ok(!notPi.replies.some((r) => r.server === '198.18.0.1'), `Drover ignored the non-Pi: ${JSON.stringify(notPi)}`);

    // Where the user enables it (--pxe-clients on), a second controller on the LAN answers the
    // PC's PXE ROM with iPXE for its architecture, and iPXE with the script URL.
    const pxeData = join(tmp, 'pxe-data');
    await lab.host('srv2', { ifname: 'lan0', addr: '198.18.0.3/24' });
    const srv2 = lab.spawn('srv2', process.execPath, [
      ...droverArgv(), 'serve', '--data-dir', pxeData, '--listen', '0.0.0.0:8080', '--tftp-listen', 'off', '--dhcp-interface', 'lan0', '--pxe-clients', 'on', '--log-level', 'warn',
    ]);
    srv2.stderr!.on('data', () => undefined);
    try {
      const deadline = Date.now() + 30_000;
      while (!(await lab.exec('srv2', 'curl', ['-sf', 'http://127.0.0.1:8080/readyz'])).stdout.includes('ready')) {
        if (Date.now() > deadline || srv2.exitCode !== null) throw new Error('the second drover did not start');
        await new Promise((r) => setTimeout(r, 200));
      }
      const efi = await sniff('udhcpe', '52:54:00:20:00:03', 'PXEClient:Arch:00007:UNDI:003016', ['-x', '0x5d:0007']);
      assert.ok(efi.replies.some((r) => r.server === '198.18.0.3' && r.file === 'ipxe.efi' && r.yiaddr === '0.0.0.0'), `PXE offer with ipxe.efi: ${JSON.stringify(efi)}`);
      assert.ok(!efi.replies.some((r) => r.server === '198.18.0.1'), 'the controller without --pxe-clients still ignores it');
      const ipxe = await sniff('udhcpq', '52:54:00:20:00:04', 'PXEClient:Arch:00007:UNDI:003016', ['-x', '0x5d:0007', '-x', '0x4d:69505845']);
      assert.ok(ipxe.replies.some((r) => r.server === '198.18.0.3' && r.file === 'http://198.18.0.3:8080/boot/v1/ipxe'), `iPXE gets the script URL: ${JSON.stringify(ipxe)}`);
      const script = await lab.exec('srv', 'curl', ['-sf', 'http://198.18.0.3:8080/boot/v1/ipxe']); // from another LAN host
      assert.match(script.stdout, /^#!ipxe\nchain \/boot\/v1\/ipxe\/\$\{net0\/mac:hexhyp\}/);
    } finally {
      srv2.kill('SIGTERM');
    }
  });
});

describe('a virtual Pi boots through dnsmasq run with `drover netboot dnsmasq-config`', ok, () => {
  let lab: Lab;
  const tmp = mkdtempSync(join(tmpdir(), 'drover-netns-dnsmasq-'));
  const dataDir = join(tmp, 'data');
  let env: NodeJS.ProcessEnv;
  const cli = (args: string[]) => lab.exec('srv', process.execPath, [...droverArgv(), ...args], { env });
  const tree = join(tmp, 'boot');

  before(async () => {
    lab = await Lab.create();
    await lab.host('srv', { ifname: 'lan0', addr: '198.18.0.1/24' });
    await lab.host('dhcp', { addr: '198.18.0.2/24' });
    await lab.host('pi4', { mac: 'dc:a6:32:30:00:01' });
    lab.spawn('dhcp', 'dnsmasq', [
      '--no-daemon', '--port=0', '--conf-file=/dev/null', '--interface=eth0', '--bind-interfaces',
      '--dhcp-range=198.18.0.100,198.18.0.200,255.255.255.0,1h', `--dhcp-leasefile=${join(tmp, 'lan.leases')}`, `--pid-file=${join(tmp, 'lan.pid')}`,
    ]).stderr!.on('data', () => undefined);
    // Drover without its own netboot services: dnsmasq does DHCP and TFTP.
    lab.spawn('srv', process.execPath, [...droverArgv(), 'serve', '--data-dir', dataDir, '--listen', '0.0.0.0:8080', '--tftp-listen', 'off', '--log-level', 'warn']);
    const deadline = Date.now() + 30_000;
    while (!(await lab.exec('srv', 'curl', ['-sf', 'http://127.0.0.1:8080/readyz'])).stdout.includes('ready')) {
      if (Date.now() > deadline) throw new Error('drover did not start');
      await new Promise((r) => setTimeout(r, 200));
    }
    env = { DROVER_SERVER: 'http://127.0.0.1:8080', DROVER_TOKEN: (await lab.exec('srv', 'cat', [join(dataDir, 'initial-admin-token')])).stdout.trim(), HOME: tmp };
    assert.equal((await cli(['image', 'add-boot-dir', 'pios', makeBootTree(tree), '--default'])).code, 0);
    assert.equal((await cli(['node', 'add', '4c000001', '--mac', 'dc:a6:32:30:00:01', '--hostname', 'via-dnsmasq'])).code, 0);
    const conf = join(tmp, 'drover-dnsmasq.conf');
    const exp = await cli(['netboot', 'dnsmasq-config', '--interface', 'lan0', '--range', '198.18.0.0', '--user', 'root', '--out', conf]);
    assert.equal(exp.code, 0, exp.stderr);
    assert.match(exp.stderr, /1 device\(s\), default image pios:latest/);
    lab.spawn('srv', 'dnsmasq', ['--no-daemon', `--conf-file=${conf}`, `--pid-file=${join(tmp, 'pxe.pid')}`]).stderr!.on('data', () => undefined);
    await new Promise((r) => setTimeout(r, 500));
  });
  after(async () => {
    await lab?.destroy();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('boots with its own rendered cmdline.txt and byte-identical files', async () => {
    const r = await lab.exec('pi4', process.execPath, [...droverArgv(), '--json', 'virtual-pi', '--model', 'pi4', '--serial', '4c000001', '--mac', 'dc:a6:32:30:00:01', '--dhcp', 'eth0'], { timeout: 90_000 });
    const report = JSON.parse(r.stdout);
    assert.equal(report.ok, true, report.reason);
    assert.equal(report.dhcp.tftpServer, '198.18.0.1');
    assert.equal(report.tftp.prefix, '4c000001/');
    assert.match(report.tftp.cmdline, /drover\.serial=4c000001 drover\.token=drv_[\w-]{43} .*drover\.hostname=via-dnsmasq/);
    const kernel = report.tftp.files.find((f: any) => f.path === '4c000001/kernel8.img');
    assert.equal(kernel.sha256, createHash('sha256').update(readFileSync(join(tree, 'kernel8.img'))).digest('hex'));
  });
});
