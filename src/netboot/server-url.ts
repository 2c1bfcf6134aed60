// Which URL a booting device should use for the controller: the configured public URL, else
// this machine's address on the device's subnet (a Pi cannot route to another subnet at boot).
import { networkInterfaces } from 'node:os';

function toInt(ip: string): number {
  return ip.split('.').reduce((n, p) => (n << 8) + Number(p), 0) >>> 0;
}

export function localAddressFacing(client: string | null, ifaces = networkInterfaces()): string {
  const v4 = Object.values(ifaces)
    .flat()
    .filter((a): a is NonNullable<typeof a> => Boolean(a) && a!.family === 'IPv4');
  if (client && /^\d+\.\d+\.\d+\.\d+$/.test(client)) {
    if (client.startsWith('127.')) return '127.0.0.1';
    const c = toInt(client);
    for (const a of v4) {
      const mask = toInt(a.netmask);
      if (((toInt(a.address) ^ c) & mask) === 0) return a.address;
    }
  }
  return v4.find((a) => !a.internal)?.address ?? '127.0.0.1';
}

export function serverUrlResolver(publicUrl: string | undefined, listen: { host: string; port: number }): (client: string | null) => string {
  if (publicUrl) return () => publicUrl.replace(/\/$/, '');
  const fixed = listen.host !== '0.0.0.0' && listen.host !== '::' ? listen.host : null;
  return (client) => `http://${fixed ?? localAddressFacing(client)}:${listen.port}`;
}
