// Golden bytes from the spec (docs/pi-netboot.md §1–2), recognition of every Pi model, and
// random/mutated packets that must never crash the codec or the proxy logic.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { option97, piDhcpPacket, piDiscoverBytes, type PiHardware } from '../virtual-pi/models.js';
import { piOuiSet } from './ouis.js';
import { clientMac, DhcpParseError, messageType, MSG, OPT, parseDhcp, serializeDhcp, type DhcpPacket } from './packet.js';
import { identifyPi, parseOption97, PI3_ROM_XID } from './pi.js';
import { PI_MENU_TEXT, proxyReply, pxeClientReply, pxeMenuOption } from './proxy.js';

const ouis = piOuiSet();
const ctx = { serverIp: '192.0.2.1', piOuis: ouis };
const hex = (s: string) => Buffer.from(s.replace(/[^0-9a-f]/gi, ''), 'hex');

const PIS: PiHardware[] = [
  { model: 'pi3b', serial: '00000000', mac: 'b8:27:eb:11:22:33', boardRevision: 'a02082' },
  { model: 'pi3b+', serial: '5ad2f6e1', mac: 'b8:27:eb:44:55:66', boardRevision: 'a020d3' },
  { model: 'pi4', serial: '1a2b3c4d', mac: 'dc:a6:32:01:36:c2', boardRevision: 'c03111' },
  { model: 'pi4', serial: '0badc0de', mac: 'e4:5f:01:aa:bb:cc', boardRevision: 'd03114', fourccBigEndian: true },
  { model: 'pi5', serial: 'cafe5555', mac: '2c:cf:67:10:20:30', boardRevision: 'd04170' },
];

describe('option 43 (PXE boot menu) golden bytes', () => {
  it('matches what dnsmasq sends for pxe-service=0,"Raspberry Pi Boot"', () => {
    const expected = Buffer.concat([hex('06 01 03 0a 04 00 50 58 45 09 14 00 00 11'), Buffer.from('Raspberry Pi Boot'), hex('ff')]);
    assert.deepEqual(pxeMenuOption('Raspberry Pi Boot'), expected);
  });

  it('sends the padded Pi 3B text by default (length 0x14, sub-option 9 length 0x17)', () => {
    assert.equal(PI_MENU_TEXT, 'Raspberry Pi Boot   ');
    const expected = Buffer.concat([hex('06 01 03 0a 04 00 50 58 45 09 17 00 00 14'), Buffer.from('Raspberry Pi Boot   '), hex('ff')]);
    assert.deepEqual(pxeMenuOption(), expected);
  });
});

describe('option 97 layouts', () => {
  it('Pi 3B: 0x00 then 0x44 × 16, no serial', () => {
    const g = option97(PIS[0]!);
    assert.deepEqual(g, Buffer.concat([hex('00'), Buffer.alloc(16, 0x44)]));
    assert.deepEqual(parseOption97(g, PIS[0]!.mac), { model: 'pi3b', serial: null, boardRevision: null });
  });

  it('Pi 3B+: the serial repeated four times, little-endian', () => {
    const g = option97(PIS[1]!);
    assert.deepEqual(g, hex('00 e1f6d25a e1f6d25a e1f6d25a e1f6d25a'));
    assert.equal(parseOption97(g, PIS[1]!.mac)?.serial, '5ad2f6e1');
  });

  it('Pi 4: "RPi4" + revision + low MAC + serial, in either byte order', () => {
    const le = option97(PIS[2]!);
    assert.deepEqual(le.subarray(1, 5), Buffer.from('RPi4'));
    assert.deepEqual(le, hex('00 52506934 1131c000 c2360132 4d3c2b1a'));
    assert.deepEqual(parseOption97(le, PIS[2]!.mac), { model: 'pi4', serial: '1a2b3c4d', boardRevision: '00c03111' });
    const be = option97(PIS[3]!);
    assert.deepEqual(be.subarray(1, 5), Buffer.from('4iPR'));
    assert.deepEqual(parseOption97(be, PIS[3]!.mac), { model: 'pi4', serial: '0badc0de', boardRevision: '00d03114' });
  });

  it('Pi 5: FourCC 0x35695052 ("RPi5")', () => {
    const g = option97(PIS[4]!);
    assert.equal(g.readUInt32LE(1), 0x35695052);
    assert.equal(parseOption97(g, PIS[4]!.mac)?.model, 'pi5');
    assert.equal(parseOption97(g, PIS[4]!.mac)?.serial, 'cafe5555');
  });

  it('ignores other GUIDs', () => {
    assert.equal(parseOption97(randomBytes(17), null), null);
    assert.equal(parseOption97(hex('00 11'), null), null);
    assert.equal(parseOption97(undefined, null), null);
  });
});

describe('recognising Pis and answering them', () => {
  it('answers every model\'s DISCOVER with a proxy OFFER carrying the spec\'s fields', () => {
    for (const hw of PIS) {
      const req = parseDhcp(piDiscoverBytes(hw));
      const d = proxyReply(req, ctx);
      assert.ok(d, hw.model);
      assert.equal(d.kind, 'offer');
      assert.equal(d.pi.model, hw.model);
      if (hw.model !== 'pi3b') assert.equal(d.pi.serial, hw.serial);
      const wire = parseDhcp(serializeDhcp(d.reply));
      assert.ok(serializeDhcp(d.reply).length >= 300, 'BOOTP minimum length');
      assert.equal(wire.op, 2);
      assert.equal(wire.xid, req.xid);
      assert.equal(wire.yiaddr, '0.0.0.0', 'proxy never hands out an address');
      assert.equal(wire.siaddr, '192.0.2.1');
      assert.equal(messageType(wire), MSG.offer);
      assert.deepEqual(wire.options.get(OPT.serverId), hex('c0 00 02 01'));
      assert.equal(wire.options.get(OPT.vendorClass)?.toString(), 'PXEClient');
      assert.deepEqual(wire.options.get(OPT.vendorOptions), pxeMenuOption());
      assert.deepEqual(wire.options.get(OPT.clientGuid), option97(hw), 'option 97 echoed');
      assert.equal(wire.options.has(OPT.tftpServer), false, 'option 66 only when asked or different');
      assert.equal(clientMac(wire), hw.mac);
    }
  });

  it('the Pi 3 ROM uses the fixed xid 0x26f30339', () => {
    const req = parseDhcp(piDiscoverBytes(PIS[0]!));
    assert.equal(req.xid, PI3_ROM_XID);
    assert.equal(proxyReply(req, ctx)?.pi.pi3Rom, true);
  });

  it('answers a Pi 4/5 REQUEST (no option 60) with an ACK', () => {
    for (const hw of [PIS[2]!, PIS[4]!]) {
      const req = parseDhcp(serializeDhcp(piDhcpPacket(hw, 'request', 1234, { requestedIp: '192.0.2.50', serverId: '192.0.2.254' })));
      assert.equal(req.options.has(OPT.vendorClass), false);
      const d = proxyReply(req, ctx);
      assert.equal(d?.kind, 'ack');
      assert.equal(messageType(d!.reply), MSG.ack);
      assert.equal(d!.reply.yiaddr, '0.0.0.0');
    }
  });

  it('sends option 66 as dotted-quad text when TFTP lives elsewhere', () => {
    const d = proxyReply(parseDhcp(piDiscoverBytes(PIS[2]!)), { ...ctx, tftpIp: '192.0.2.9' });
    assert.equal(d!.reply.options.get(OPT.tftpServer)?.toString(), '192.0.2.9');
    assert.equal(d!.reply.siaddr, '192.0.2.9');
  });

  it('ignores x86 PXE ROMs, EFI clients, plain DHCP clients and non-Pi MACs', () => {
    const pi4 = piDhcpPacket(PIS[2]!, 'discover', 1);
    const x86 = { ...pi4, chaddr: Buffer.concat([hex('00 50 56 01 02 03'), Buffer.alloc(10)]), options: new Map(pi4.options) };
    x86.options.delete(OPT.clientGuid);
    assert.equal(proxyReply(parseDhcp(serializeDhcp(x86)), ctx), null, 'x86 PXE: arch 0 but not a Pi');
    const efi = { ...pi4, options: new Map(pi4.options) };
    efi.options.set(OPT.clientArch, hex('00 07'));
    assert.equal(proxyReply(parseDhcp(serializeDhcp(efi)), ctx), null, 'EFI arch');
    const plain = { ...pi4, options: new Map(pi4.options) };
    plain.options.delete(OPT.vendorClass);
    assert.equal(proxyReply(parseDhcp(serializeDhcp(plain)), ctx), null, 'DISCOVER without PXEClient');
    // A Pi MAC with no option 97 is still a Pi (older firmware): recognised by OUI.
    const oui = { ...pi4, options: new Map(pi4.options) };
    oui.options.delete(OPT.clientGuid);
    assert.equal(proxyReply(parseDhcp(serializeDhcp(oui)), ctx)?.pi.by, 'mac-prefix');
    assert.equal(identifyPi(parseDhcp(serializeDhcp(oui)), new Set()), null, 'unless the prefix list lacks it');
    assert.equal(identifyPi(parseDhcp(serializeDhcp(oui)), piOuiSet(['dc-a6-32']))?.by, 'mac-prefix', 'users extend the list');
  });
});

describe('standard PXE and iPXE clients (--pxe-clients on)', () => {
  const pxeCtx = { serverIp: '192.0.2.1', ipxeScriptUrl: 'http://192.0.2.1:8080/boot/v1/ipxe' };
  const pc = (arch: number, extra: [number, Buffer][] = [], vendor = `PXEClient:Arch:${String(arch).padStart(5, '0')}:UNDI:003016`): DhcpPacket => {
    const options = new Map<number, Buffer>([[OPT.messageType, Buffer.from([MSG.discover])], [OPT.vendorClass, Buffer.from(vendor)], [OPT.clientArch, Buffer.from([arch >> 8, arch & 0xff])], ...extra]);
    const chaddr = Buffer.alloc(16);
    hex('52 54 00 12 34 56').copy(chaddr);
    return parseDhcp(serializeDhcp({ op: 1, htype: 1, hlen: 6, hops: 0, xid: 0x1234, secs: 0, flags: 0x8000, ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0', chaddr, sname: '', file: '', options }));
  };

  it('gives a PXE ROM iPXE for its architecture, to boot from the offer itself', () => {
    for (const [arch, file] of [[0, 'undionly.kpxe'], [7, 'ipxe.efi'], [9, 'ipxe.efi'], [11, 'ipxe-arm64.efi'], [6, 'ipxe-i386.efi']] as const) {
      const req = pc(arch);
      assert.equal(proxyReply(req, ctx), null, 'not a Pi');
      const r = parseDhcp(serializeDhcp(pxeClientReply(req, pxeCtx)!));
      assert.equal(r.file, file);
      assert.equal(r.siaddr, '192.0.2.1');
      assert.equal(r.yiaddr, '0.0.0.0');
      assert.equal(messageType(r), MSG.offer);
      assert.deepEqual(r.options.get(OPT.vendorOptions), hex('06 01 08 ff'), 'discovery control 8: boot the file in this offer');
      assert.equal(r.options.get(OPT.bootfile)?.toString(), file);
      assert.equal(r.options.get(OPT.tftpServer)?.toString(), '192.0.2.1');
    }
    assert.equal(pxeClientReply(pc(0x19), pxeCtx), null, 'an architecture without a boot file');
  });

  it('gives iPXE the script URL, and ignores DHCP clients that are not PXE', () => {
    const r = pxeClientReply(pc(7, [[77, Buffer.from('iPXE')]]), pxeCtx)!;
    assert.equal(r.file, pxeCtx.ipxeScriptUrl);
    assert.equal(pxeClientReply(pc(0, [], 'udhcp 1.35.0'), pxeCtx), null);
    const req = pc(0);
    req.options.set(OPT.messageType, Buffer.from([MSG.request]));
    assert.equal(pxeClientReply(req, pxeCtx), null, 'proxy mode answers DISCOVERs only');
    assert.ok(pxeClientReply(req, pxeCtx, true), 'full mode puts the file in the ACK too');
  });

  it('leaves Pis to the Pi logic', () => {
    const req = parseDhcp(piDiscoverBytes(PIS[2]!));
    assert.ok(proxyReply(req, ctx), 'the Pi logic answers first');
  });
});

describe('malformed and random packets', () => {
  it('refuses truncated, overrunning and unterminated packets with DhcpParseError', () => {
    const good = piDiscoverBytes(PIS[2]!);
    assert.throws(() => parseDhcp(good.subarray(0, 100)), DhcpParseError);
    const noMagic = Buffer.from(good);
    noMagic.writeUInt32BE(0, 236);
    assert.throws(() => parseDhcp(noMagic), /magic/);
    const overrun = Buffer.from(good.subarray(0, 244));
    overrun[240] = 60;
    overrun[241] = 200;
    assert.throws(() => parseDhcp(overrun), /overruns/);
    const endless = Buffer.from(good);
    endless.fill(1, 240); // option 1 of length 1, forever, never an end
    assert.throws(() => parseDhcp(endless), DhcpParseError);
  });

  it('never throws anything but DhcpParseError, and proxyReply never throws, on 20,000 fuzzed packets', () => {
    const seeds = PIS.map((hw) => piDiscoverBytes(hw));
    let parsed = 0;
    for (let i = 0; i < 20_000; i++) {
      let buf: Buffer;
      if (i % 4 === 0) buf = randomBytes(Math.floor(Math.random() * 600));
      else {
        buf = Buffer.from(seeds[i % seeds.length]!);
        const flips = 1 + Math.floor(Math.random() * 8);
        for (let f = 0; f < flips; f++) buf[Math.floor(Math.random() * buf.length)] = Math.floor(Math.random() * 256);
        if (i % 7 === 0) buf = buf.subarray(0, Math.floor(Math.random() * buf.length));
      }
      let p;
      try {
        p = parseDhcp(buf);
      } catch (err) {
        assert.ok(err instanceof DhcpParseError, `unexpected ${(err as Error).stack}`);
        continue;
      }
      parsed++;
      proxyReply(p, ctx);
      serializeDhcp(p);
    }
    assert.ok(parsed > 1000, 'mutations keep enough packets parseable to exercise the proxy');
  });
});
