// cpio "newc" archives, the format the Linux kernel unpacks as an initramfs. The kernel's reader
// (init/initramfs.c) is strict and small: 110-byte ASCII-hex headers, NUL-terminated names,
// 4-byte alignment after the name and after the data, no directories made implicitly, and
// "TRAILER!!!" to end an archive.

export interface CpioEntry {
  /** Relative; a leading '/' or './' is dropped. */
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'chardev' | 'blockdev';
  /** Permission bits incl. setuid/setgid/sticky; file-type bits are set from `type`. */
  mode: number;
  uid?: number;
  gid?: number;
  /** Seconds since the epoch. */
  mtime?: number;
  data?: Buffer;
  linkTarget?: string;
  devMajor?: number;
  devMinor?: number;
}

const MAGIC = '070701';
const HEADER = 110;
const TRAILER = 'TRAILER!!!';
const IFMT: Record<CpioEntry['type'], number> = { file: 0o100000, dir: 0o040000, symlink: 0o120000, chardev: 0o020000, blockdev: 0o060000 };
const MAX32 = 0xffffffff;
const ZEROS = Buffer.alloc(4);

const pad4 = (n: number) => (4 - (n % 4)) % 4;

function normalize(p: string): string {
  return p.replace(/^(?:\.?\/+)+/, '').replace(/\/+$/, '');
}

/** The archive, entries in the given order, inode numbers from 1. */
export function cpioNewc(entries: CpioEntry[]): Buffer {
  // Headers are built apart and the data joined once, so file contents are copied only once.
  const parts: Buffer[] = [];
  let ino = 1;
  for (const e of entries) {
    const name = normalize(e.path);
    if (!name || name === '.' || e.path.includes('\0')) throw new Error(`cpio: ${JSON.stringify(e.path)} is not a valid path for a ${e.type}.`);
    let body: Buffer;
    if (e.type === 'file') body = e.data ?? Buffer.alloc(0);
    else if (e.type === 'symlink') {
      if (!e.linkTarget || e.linkTarget.includes('\0')) throw new Error(`cpio: ${name}: a symlink needs a linkTarget.`);
      // The kernel reads the target as the data, up to its length: no NUL.
      body = Buffer.from(e.linkTarget, 'utf8');
    } else body = Buffer.alloc(0);
    if (e.data && e.type !== 'file') throw new Error(`cpio: ${name}: only files carry data (this is a ${e.type}).`);
    let rdevMajor = 0;
    let rdevMinor = 0;
    if (e.type === 'chardev' || e.type === 'blockdev') {
      if (e.devMajor === undefined || e.devMinor === undefined) throw new Error(`cpio: ${name}: a device needs devMajor and devMinor.`);
      rdevMajor = e.devMajor;
      rdevMinor = e.devMinor;
    }
    parts.push(...record(name, body, {
      ino: ino++,
      mode: IFMT[e.type] | (e.mode & 0o7777),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      nlink: e.type === 'dir' ? 2 : 1,
      mtime: e.mtime ?? 0,
      rdevMajor,
      rdevMinor,
    }));
  }
  parts.push(...record(TRAILER, Buffer.alloc(0), { ino: 0, mode: 0, uid: 0, gid: 0, nlink: 1, mtime: 0, rdevMajor: 0, rdevMinor: 0 }));
  return Buffer.concat(parts);
}

interface Fields {
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  mtime: number;
  rdevMajor: number;
  rdevMinor: number;
}

function record(name: string, body: Buffer, f: Fields): Buffer[] {
  const nameBytes = Buffer.from(name, 'utf8');
  const namesize = nameBytes.length + 1;
  const fields = [f.ino, f.mode, f.uid, f.gid, f.nlink, Math.floor(f.mtime), body.length, 0, 0, f.rdevMajor, f.rdevMinor, namesize, 0];
  for (const v of fields) {
    if (!Number.isInteger(v) || v < 0 || v > MAX32) throw new Error(`cpio: ${name}: a header field (${v}) does not fit 32 bits.`);
  }
  const headerLen = HEADER + namesize;
  const head = Buffer.alloc(headerLen + pad4(headerLen));
  // Upper-case hex as the kernel's own gen_init_cpio writes it; the kernel accepts either case.
  head.write(MAGIC + fields.map((v) => v.toString(16).toUpperCase().padStart(8, '0')).join(''), 0, 'latin1');
  nameBytes.copy(head, HEADER);
  return body.length ? [head, body, ZEROS.subarray(0, pad4(body.length))] : [head];
}

/**
 * Parents before children, the same order for the same set of paths: paths are compared
 * component by component, so "a", "a/b" and "a-b" come out as a, a/b, a-b.
 */
export function sortForCpio(entries: CpioEntry[]): CpioEntry[] {
  const keyed = entries.map((e, i) => ({ e, i, parts: normalize(e.path).split('/') }));
  keyed.sort((x, y) => {
    const n = Math.min(x.parts.length, y.parts.length);
    for (let k = 0; k < n; k++) {
      const a = x.parts[k]!;
      const b = y.parts[k]!;
      if (a !== b) return a < b ? -1 : 1;
    }
    return x.parts.length - y.parts.length || x.i - y.i;
  });
  return keyed.map((k) => k.e);
}
