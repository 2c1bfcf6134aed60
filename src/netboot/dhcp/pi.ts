// Recognising a Raspberry Pi bootloader from its DHCP packet, and what it tells us: model and
// serial. Facts from docs/pi-netboot.md (shared spec) §1–2.
import { clientMac, OPT, type DhcpPacket } from './packet.js';

export type PiModel = 'pi3b' | 'pi3b+' | 'pi4' | 'pi5' | 'pi';

export interface PiIdentity {
  model: PiModel;
  /** 8 lowercase hex digits when the packet carries it (Pi 3B+, 4, 5). */
  serial: string | null;
  mac: string;
  boardRevision: string | null;
  /** The Pi 3 ROM and bootcode.bin use this fixed xid and never send a REQUEST. */
  pi3Rom: boolean;
  /** How it was recognised, for logs. */
  by: 'option97' | 'mac-prefix';
}

/** The Pi 3 ROM / bootcode.bin transaction id. */
export const PI3_ROM_XID = 0x26f30339;

export const PXE_VENDOR_PREFIX = 'PXEClient';

const FOURCC_LE: Record<string, PiModel> = { 'RPi4': 'pi4', 'RPi5': 'pi5' };
const FOURCC_BE: Record<string, PiModel> = { '4iPR': 'pi4', '5iPR': 'pi5' };

const hex8 = (n: number) => (n >>> 0).toString(16).padStart(8, '0');

/** Parses option 97 (client GUID): 0x00 then 16 model-dependent bytes. */
export function parseOption97(guid: Buffer | undefined, mac: string | null): { model: PiModel; serial: string | null; boardRevision: string | null } | null {
  if (!guid || guid.length !== 17 || guid[0] !== 0) return null;
  const b = guid.subarray(1);
  let all44 = true;
  for (let i = 0; i < 16 && all44; i++) all44 = b[i] === 0x44;
  if (all44) return { model: 'pi3b', serial: null, boardRevision: null };
  const tag = String.fromCharCode(b[0]!, b[1]!, b[2]!, b[3]!);
  const le = FOURCC_LE[tag];
  const be = FOURCC_BE[tag];
  if (le || be) {
    // Firmware writes the fields in one byte order; the MAC field tells us which when possible.
    let littleEndian = Boolean(le);
    if (mac) {
      // The MAC's low 4 bytes in wire order, against the field as is and reversed.
      const m = [2, 3, 4, 5].map((k) => parseInt(mac.slice(k * 3, k * 3 + 2), 16));
      if (b[8] === m[0] && b[9] === m[1] && b[10] === m[2] && b[11] === m[3]) littleEndian = false;
      else if (b[11] === m[0] && b[10] === m[1] && b[9] === m[2] && b[8] === m[3]) littleEndian = true;
    }
    const read = (off: number) => (littleEndian ? b.readUInt32LE(off) : b.readUInt32BE(off));
    return { model: (le ?? be)!, boardRevision: hex8(read(4)), serial: hex8(read(12)) };
  }
  // Pi 3B+: the 32-bit serial repeated four times, little-endian.
  const first = b.subarray(0, 4);
  if (first.equals(b.subarray(4, 8)) && first.equals(b.subarray(8, 12)) && first.equals(b.subarray(12, 16))) {
    return { model: 'pi3b+', serial: hex8(first.readUInt32LE(0)), boardRevision: null };
  }
  return null;
}

const PXE_PREFIX_BYTES = Buffer.from(PXE_VENDOR_PREFIX, 'latin1');

export function isPxeClient(p: DhcpPacket): boolean {
  const vc = p.options.get(OPT.vendorClass);
  return Boolean(vc && vc.length >= PXE_PREFIX_BYTES.length && PXE_PREFIX_BYTES.compare(vc, 0, PXE_PREFIX_BYTES.length) === 0);
}

/** Client architecture (option 93); Pis send 0. Undefined when absent. */
export function clientArch(p: DhcpPacket): number | undefined {
  const v = p.options.get(OPT.clientArch);
  return v && v.length >= 2 ? v.readUInt16BE(0) : undefined;
}

export function macPrefix(mac: string): string {
  return mac.slice(0, 8).toLowerCase();
}

/**
 * A Pi bootloader: PXE vendor class with arch 0 (a REQUEST from a Pi 4/5 omits option 60, so
 * `requireVendorClass` is false there), and either an option 97 Pi layout or a Raspberry Pi MAC
 * prefix — x86 PXE ROMs also say arch 0, so one of those must hold.
 */
export function identifyPi(p: DhcpPacket, piOuis: ReadonlySet<string>, requireVendorClass = true): PiIdentity | null {
  const mac = clientMac(p);
  if (!mac) return null;
  if (requireVendorClass && !isPxeClient(p)) return null;
  const arch = clientArch(p);
  if (arch !== undefined && arch !== 0) return null;
  const fromGuid = parseOption97(p.options.get(OPT.clientGuid), mac);
  const pi3Rom = p.xid === PI3_ROM_XID;
  if (fromGuid) return { ...fromGuid, mac, pi3Rom, by: 'option97' };
  if (piOuis.has(macPrefix(mac))) {
    return { model: pi3Rom ? 'pi3b' : 'pi', serial: null, boardRevision: null, mac, pi3Rom, by: 'mac-prefix' };
  }
  return null;
}
