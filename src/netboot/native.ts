// The native addon (native/*.c, built by `npm run build:native`): SO_BINDTODEVICE sockets for
// DHCP and the TFTP transfer engine. Everything that uses it has a JavaScript fallback or a clear
// error when it is not built.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface NativeAddon {
  openUdp4(ifname: string, port: number, address: string, rcvbuf: number): number;
  tftpEngineCreate(threads: number, onEnd: (id: number, outcome: number, bytesAcked: number, retransmits: number, errCode: number, errMsg: string) => void): object;
  tftpEngineStart(
    engine: object, id: number, host: string, clientAddress: string, clientPort: number, data: Buffer,
    blksize: number, windowsize: number, timeoutMs: number, maxRetries: number, oack: Buffer | null,
  ): void;
  tftpEngineAbortAll(engine: object): void;
  tftpEngineClose(engine: object): void;
}

let addon: NativeAddon | null | undefined;

export function loadNative(): NativeAddon | null {
  if (addon !== undefined) return addon;
  const require = createRequire(import.meta.url);
  // src/netboot → ../../build ; dist/server/netboot → ../../../build
  for (const rel of ['../../build/Release/drover_netsock.node', '../../../build/Release/drover_netsock.node']) {
    const path = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(path)) return (addon = require(path) as NativeAddon);
  }
  return (addon = null);
}
