// Address leases for full-DHCP mode (an isolated cluster network with no other DHCP server).
// Kept in memory, persisted atomically to a JSON file so a restart hands out the same addresses.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';

export interface Lease {
  mac: string;
  ip: string;
  expires: number;
}

const toInt = (ip: string) => ip.split('.').reduce((n, p) => n * 256 + Number(p), 0);
const toIp = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');

export function parseRange(range: string): { first: number; last: number } {
  const m = /^(\d+\.\d+\.\d+\.\d+)\s*-\s*(\d+\.\d+\.\d+\.\d+)$/.exec(range.trim());
  if (!m) throw new Error(`"${range}" is not FIRST-LAST`);
  const first = toInt(m[1]!);
  const last = toInt(m[2]!);
  if (last < first || last - first > 65535) throw new Error(`"${range}" is empty or larger than 65536 addresses`);
  return { first, last };
}

export class LeaseTable {
  private readonly byMac = new Map<string, Lease>();
  private readonly range: { first: number; last: number };

  constructor(
    range: string,
    private readonly leaseSeconds: number,
    private readonly file: string | null,
    private readonly now: () => number = Date.now,
  ) {
    this.range = parseRange(range);
    if (file) {
      try {
        for (const l of JSON.parse(readFileSync(file, 'utf8')) as Lease[]) {
          if (this.inRange(l.ip)) this.byMac.set(l.mac, l);
        }
      } catch {
        /* no leases yet */
      }
    }
  }

  inRange(ip: string): boolean {
    const n = toInt(ip);
    return n >= this.range.first && n <= this.range.last;
  }

  /** The address to offer a client: its current lease, else the lowest free one; null when full. */
  offer(mac: string): string | null {
    const mine = this.byMac.get(mac);
    if (mine) return mine.ip;
    const taken = new Set<number>();
    const t = this.now();
    for (const l of this.byMac.values()) if (l.expires > t) taken.add(toInt(l.ip));
    for (let n = this.range.first; n <= this.range.last; n++) {
      if (!taken.has(n)) return toIp(n);
    }
    return null;
  }

  /** Binds `ip` to `mac`; false when another live lease holds it or it is outside the range. */
  commit(mac: string, ip: string): boolean {
    if (!this.inRange(ip)) return false;
    const t = this.now();
    for (const l of this.byMac.values()) if (l.ip === ip && l.mac !== mac && l.expires > t) return false;
    // Expired leases on that address give way.
    for (const [m, l] of this.byMac) if (l.ip === ip && m !== mac) this.byMac.delete(m);
    this.byMac.set(mac, { mac, ip, expires: t + this.leaseSeconds * 1000 });
    this.persist();
    return true;
  }

  release(mac: string): void {
    if (this.byMac.delete(mac)) this.persist();
  }

  get(mac: string): Lease | undefined {
    return this.byMac.get(mac);
  }

  all(): Lease[] {
    return [...this.byMac.values()];
  }

  private persist(): void {
    if (!this.file) return;
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.all(), null, 1), { mode: 0o600 });
    renameSync(tmp, this.file);
  }
}
