// Ready-made DATA packets. Hundreds of Pis fetch the same kernel at the same block size, and a
// packet's bytes depend only on (file, block size, block index), the wrapped block number
// included; so each packet is built once, on first use, and sent as is to every client.
const cache = new WeakMap<Buffer, Map<number, (Buffer | undefined)[]>>();

/** Files larger than this are not cached packet by packet (they are rare and would double memory). */
const MAX_CACHED_FILE = 128 * 1024 * 1024;

export function dataPacket(data: Buffer, blksize: number, index: number): Buffer {
  const off = (index - 1) * blksize;
  const len = Math.max(0, Math.min(blksize, data.length - off));
  if (data.length > MAX_CACHED_FILE) return build(data, off, len, index);
  let bySize = cache.get(data);
  if (!bySize) cache.set(data, (bySize = new Map()));
  let packets = bySize.get(blksize);
  if (!packets) bySize.set(blksize, (packets = new Array(Math.floor(data.length / blksize) + 1)));
  return (packets[index - 1] ??= build(data, off, len, index));
}

function build(data: Buffer, off: number, len: number, index: number): Buffer {
  const p = Buffer.allocUnsafe(4 + len);
  p.writeUInt16BE(3, 0);
  p.writeUInt16BE(index & 0xffff, 2);
  data.copy(p, 4, off, off + len);
  return p;
}
