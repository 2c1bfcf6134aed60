// UDP sockets bound to one network interface (SO_BINDTODEVICE), through the small native addon
// in native/netsock.c (built by `npm run build:native`). Only DHCP needs it.
import { createSocket, type Socket } from 'node:dgram';
import { loadNative } from './native.js';

export class NetsockError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/**
 * A UDP socket on `address:port` that only sees and sends on `ifname`, with broadcast allowed and
 * a receive queue of `rcvbuf` bytes (capped by the kernel without CAP_NET_ADMIN; 0: the default).
 */
export async function bindToInterface(ifname: string, port: number, address = '0.0.0.0', rcvbuf = 0): Promise<Socket> {
  const a = loadNative();
  if (!a) throw new NetsockError('The netsock addon is not built; run `npm run build:native` (needs python3, make and a C compiler).', 'ENOADDON');
  let fd: number;
  try {
    fd = a.openUdp4(ifname, port, address, rcvbuf);
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
