// What each Raspberry Pi bootloader puts on the wire, per docs/pi-netboot.md (shared spec).
// Used by the virtual Pis (tests, demo, benchmarks) and pinned by golden tests.
import { MSG, OP, OPT, serializeDhcp, type DhcpPacket } from '../dhcp/packet.js';
import { PI3_ROM_XID } from '../dhcp/pi.js';

export type VirtualPiModel = 'pi3b' | 'pi3b+' | 'pi4' | 'pi5';

export interface PiHardware {
  model: VirtualPiModel;
  /** 8 hex digits. */
  serial: string;
  mac: string;
  /** Board revision code, e.g. c03111 for a Pi 4B 4GB. */
  boardRevision: string;
  /** Pi 4 firmware writes option 97 in either byte order; both exist in the field. */
  fourccBigEndian?: boolean;
}

export const VENDOR_CLASS = 'PXEClient:Arch:00000:UNDI:002001';
const PI3_PARAMS = [43, 60, 67, 128, 129, 130, 131, 132, 133, 134, 135, 66];
const LATER_PARAMS = [1, 3, 43, 60, 66, 67, 128, 129, 130, 131, 132, 133, 134, 135];

export const isPi3 = (m: VirtualPiModel) => m === 'pi3b' || m === 'pi3b+';

/** Option 97 payload (17 bytes, leading 0x00) for a model. */
export function option97(hw: PiHardware): Buffer {
  const out = Buffer.alloc(17);
  const body = out.subarray(1);
  const serial = parseInt(hw.serial, 16) >>> 0;
  switch (hw.model) {
    case 'pi3b':
      body.fill(0x44);
      break;
    case 'pi3b+':
      for (let i = 0; i < 4; i++) body.writeUInt32LE(serial, i * 4);
      break;
    case 'pi4':
    case 'pi5': {
      const fourcc = hw.model === 'pi4' ? 0x34695052 : 0x35695052; // "RPi4"/"RPi5" as little-endian u32
      const macLow = Buffer.from(hw.mac.split(':').slice(2).join(''), 'hex').readUInt32BE(0);
      const rev = parseInt(hw.boardRevision, 16) >>> 0;
      const w = (v: number, off: number) => (hw.fourccBigEndian ? body.writeUInt32BE(v, off) : body.writeUInt32LE(v, off));
      w(fourcc, 0);
      w(rev, 4);
      w(macLow, 8);
      w(serial, 12);
      break;
    }
  }
  return out;
}

function chaddr(mac: string): Buffer {
  const b = Buffer.alloc(16);
  Buffer.from(mac.replace(/:/g, ''), 'hex').copy(b);
  return b;
}

export function piDhcpPacket(hw: PiHardware, type: 'discover' | 'request', xid: number, extra: { requestedIp?: string; serverId?: string } = {}): DhcpPacket {
  const options = new Map<number, Buffer>();
  options.set(OPT.messageType, Buffer.from([type === 'discover' ? MSG.discover : MSG.request]));
  if (type === 'request') {
    if (extra.requestedIp) options.set(OPT.requestedIp, Buffer.from(extra.requestedIp.split('.').map(Number)));
    if (extra.serverId) options.set(OPT.serverId, Buffer.from(extra.serverId.split('.').map(Number)));
  }
  options.set(OPT.paramList, Buffer.from(isPi3(hw.model) ? PI3_PARAMS : LATER_PARAMS));
  // A Pi 4/5 REQUEST omits the vendor class (spec §1).
  if (type === 'discover') options.set(OPT.vendorClass, Buffer.from(VENDOR_CLASS, 'latin1'));
  options.set(OPT.clientArch, Buffer.from([0, 0]));
  options.set(OPT.clientNdi, Buffer.from([1, 2, 1]));
  options.set(OPT.clientGuid, option97(hw));
  return {
    op: OP.request,
    htype: 1,
    hlen: 6,
    hops: 0,
    xid,
    secs: 0,
    flags: 0,
    ciaddr: '0.0.0.0',
    yiaddr: '0.0.0.0',
    siaddr: '0.0.0.0',
    giaddr: '0.0.0.0',
    chaddr: chaddr(hw.mac),
    sname: '',
    file: '',
    options,
  };
}

/** The xid the model uses: fixed for the Pi 3 ROM / bootcode.bin, random for Pi 4/5. */
export function piXid(model: VirtualPiModel): number {
  return isPi3(model) ? PI3_ROM_XID : (Math.random() * 0x100000000) >>> 0;
}

export function piDiscoverBytes(hw: PiHardware, xid = piXid(hw.model)): Buffer {
  return serializeDhcp(piDhcpPacket(hw, 'discover', xid));
}

