// The kernel's IPv4 neighbour (ARP) table: how a Pi whose DHCP carries no serial (the Pi 3B ROM)
// is linked to the serial it later asks TFTP for. In proxy mode the LAN server gives the address,
// so the TFTP client's IP is all Drover sees; the neighbour table maps it to the MAC the DHCP
// packets came from. Read per network namespace, as /proc/net is.
import { readFile } from 'node:fs/promises';

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** The MAC of `ip` if the kernel has a complete neighbour entry for it, else null. */
export async function macForIp(ip: string, table = '/proc/net/arp'): Promise<string | null> {
  let text: string;
  try {
    text = await readFile(table, 'utf8');
  } catch {
    return null; // not Linux, or no /proc
  }
  for (const line of text.split('\n').slice(1)) {
    // IP address  HW type  Flags  HW address  Mask  Device
    const [addr, , flags, hw] = line.trim().split(/\s+/);
    if (addr !== ip || !hw) continue;
    const complete = (Number.parseInt(flags ?? '0', 16) & 0x2) !== 0;
    const mac = hw.toLowerCase();
    if (complete && MAC.test(mac) && mac !== '00:00:00:00:00:00') return mac;
  }
  return null;
}
