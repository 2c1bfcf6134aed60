// UDP sockets bound to one network interface (SO_BINDTODEVICE), through the small native addon
// in native/netsock.c (built by `npm run build:native`). Only DHCP needs it.
import { createSocket, type Socket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

interface Addon {
  openUdp4(ifname: string, port: number, address: string): number;
}

let addon: Addon | null | undefined;

function load(): Addon | null {
  if (addon !== undefined) return addon;
  const require = createRequire(import.meta.url);
  // src/netboot → ../../build ; dist/server/netboot → ../../../build
  for (const rel of ['../../build/Release/drover_netsock.node', '../../../build/Release/drover_netsock.node']) {
    const path = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(path)) return (addon = require(path) as Addon);
  }
  return (addon = null);
}

export class NetsockError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/** A UDP socket on `address:port` that only sees and sends on `ifname`, with broadcast allowed. */
export async function bindToInterface(ifname: string, port: number, address = '0.0.0.0'): Promise<Socket> {
  const a = load();
  if (!a) throw new NetsockError('The netsock addon is not built; run `npm run build:native` (needs python3, make and a C compiler).', 'ENOADDON');
  let fd: number;
  try {
    fd = a.openUdp4(ifname, port, address);
  } catch (err) {
    const e = err as Error & { code?: string };
    throw new NetsockError(e.message, e.code ?? 'EIO');
  }
  const sock = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind({ fd }, () => {
      sock.off('error', reject);
      resolve();
    });
  });
  return sock;
}
