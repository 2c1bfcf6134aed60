// Just enough ELF to build an initramfs from an OS image of another architecture: which
// architecture a binary is for, its dynamic loader and the libraries it needs (so they can be
// copied along), without running it or relying on the host's readelf/ldd. Input comes from
// untrusted images, so every offset is checked against the buffer and every loop is bounded by
// the buffer size: a malformed file throws DROVER_IMAGE_CORRUPT instead of misreading.
import { DroverError } from '../domain/errors.js';

export interface ElfInfo {
  class: 32 | 64;
  littleEndian: boolean;
  /** e_machine, e.g. 183 for AArch64. */
  machine: number;
  arch: 'arm64' | 'armhf' | 'x86_64' | 'i386' | 'riscv64' | 'unknown';
  type: 'exec' | 'dyn' | 'rel' | 'core' | 'other';
  /** PT_INTERP, e.g. "/lib/ld-linux-aarch64.so.1". */
  interpreter: string | null;
  /** DT_NEEDED in file order, e.g. ["libc.so.6"]. */
  needed: string[];
  /** No PT_INTERP and no DT_NEEDED: runs without any other file (static and static-pie). */
  isStatic: boolean;
}

const EM_386 = 3;
const EM_ARM = 40;
const EM_X86_64 = 62;
const EM_AARCH64 = 183;
const EM_RISCV = 243;

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NULL = 0;
const DT_NEEDED = 1;
const DT_STRTAB = 5;
const DT_STRSZ = 10;
const PN_XNUM = 0xffff;
const PATH_MAX = 4096;

const corrupt = (msg: string) => new DroverError('DROVER_IMAGE_CORRUPT', `Damaged ELF file: ${msg}`);

interface Segment {
  type: number;
  offset: number;
  vaddr: number;
  filesz: number;
}

export function readElf(buf: Buffer): ElfInfo {
  if (buf.length < 16 || buf.readUInt32BE(0) !== 0x7f454c46) throw new DroverError('DROVER_IMAGE_CORRUPT', 'Not an ELF file (no \\x7fELF magic at its start).');
  const cls = buf[4];
  const data = buf[5];
  if (cls !== 1 && cls !== 2) throw corrupt(`unknown class ${cls} (neither 32- nor 64-bit).`);
  if (data !== 1 && data !== 2) throw corrupt(`unknown data encoding ${data} (neither little- nor big-endian).`);
  const r = new Fields(buf, cls === 2, data === 1);
  const is64 = cls === 2;
  r.need(0, is64 ? 64 : 52, 'the ELF header is truncated');

  const eType = r.u16(16);
  const machine = r.u16(18);
  const phoff = r.addr(is64 ? 32 : 28);
  const shoff = r.addr(is64 ? 40 : 32);
  const phentsize = r.u16(is64 ? 54 : 42);
  let phnum = r.u16(is64 ? 56 : 44);
  // More than 0xfffe program headers: the real count is in section header 0's sh_info.
  if (phnum === PN_XNUM) {
    r.need(shoff, is64 ? 64 : 40, 'section header 0 (holding the program header count) lies outside the file');
    phnum = r.u32(shoff + (is64 ? 44 : 28));
  }

  const segments: Segment[] = [];
  if (phnum > 0) {
    if (phentsize < (is64 ? 56 : 32)) throw corrupt(`program header entries of ${phentsize} bytes are too small.`);
    r.need(phoff, phnum * phentsize, 'the program header table lies outside the file');
    for (let i = 0; i < phnum; i++) {
      const p = phoff + i * phentsize;
      segments.push(
        is64
          ? { type: r.u32(p), offset: r.addr(p + 8), vaddr: r.addr(p + 16), filesz: r.addr(p + 32) }
          : { type: r.u32(p), offset: r.u32(p + 4), vaddr: r.u32(p + 8), filesz: r.u32(p + 16) },
      );
    }
  }

  const interpSeg = segments.find((s) => s.type === PT_INTERP);
  let interpreter: string | null = null;
  if (interpSeg) {
    r.need(interpSeg.offset, interpSeg.filesz, 'PT_INTERP lies outside the file');
    interpreter = r.cstring(interpSeg.offset, interpSeg.offset + interpSeg.filesz, 'PT_INTERP');
    if (interpreter === '') throw corrupt('PT_INTERP names no interpreter.');
  }

  const needed = dynamicNeeded(r, segments);
  return {
    class: is64 ? 64 : 32,
    littleEndian: data === 1,
    machine,
    arch: archOf(machine, is64),
    type: eType === 1 ? 'rel' : eType === 2 ? 'exec' : eType === 3 ? 'dyn' : eType === 4 ? 'core' : 'other',
    interpreter,
    needed,
    isStatic: interpreter === null && needed.length === 0,
  };
}

function archOf(machine: number, is64: boolean): ElfInfo['arch'] {
  if (machine === EM_AARCH64 && is64) return 'arm64';
  if (machine === EM_ARM && !is64) return 'armhf';
  if (machine === EM_X86_64 && is64) return 'x86_64';
  if (machine === EM_386 && !is64) return 'i386';
  if (machine === EM_RISCV && is64) return 'riscv64';
  return 'unknown';
}

function dynamicNeeded(r: Fields, segments: Segment[]): string[] {
  const dyn = segments.find((s) => s.type === PT_DYNAMIC);
  if (!dyn) return [];
  r.need(dyn.offset, dyn.filesz, 'PT_DYNAMIC lies outside the file');
  const entSize = r.is64 ? 16 : 8;
  const neededOffsets: number[] = [];
  let strtab: number | null = null;
  let strsz: number | null = null;
  for (let p = dyn.offset; p + entSize <= dyn.offset + dyn.filesz; p += entSize) {
    // Only small tags matter here; larger ones (OS/processor specific) are skipped unread.
    const tag = r.is64 ? r.u64Loose(p) : r.u32(p);
    if (tag === DT_NULL) break;
    if (tag !== DT_NEEDED && tag !== DT_STRTAB && tag !== DT_STRSZ) continue;
    const val = r.is64 ? r.addr(p + 8) : r.u32(p + 4);
    if (tag === DT_NEEDED) neededOffsets.push(val);
    else if (tag === DT_STRTAB) strtab = val;
    else strsz = val;
  }
  if (neededOffsets.length === 0) return [];
  if (strtab === null) throw corrupt('DT_NEEDED entries but no DT_STRTAB.');
  // DT_STRTAB is a virtual address: find the loaded segment whose file bytes hold it.
  const addr = strtab;
  const load = segments.find((s) => s.type === PT_LOAD && addr >= s.vaddr && addr < s.vaddr + s.filesz);
  if (!load) throw corrupt(`DT_STRTAB 0x${addr.toString(16)} is in no PT_LOAD segment's file contents.`);
  const start = load.offset + (addr - load.vaddr);
  let end = load.offset + load.filesz;
  if (strsz !== null) end = Math.min(end, start + strsz);
  r.need(start, end - start, 'the dynamic string table lies outside the file');
  return neededOffsets.map((off) => {
    if (off >= end - start) throw corrupt(`a DT_NEEDED name (string ${off}) is outside the string table.`);
    const name = r.cstring(start + off, end, 'a DT_NEEDED name');
    if (name === '') throw corrupt('an empty DT_NEEDED name.');
    return name;
  });
}

/** Endian- and class-aware reads that throw instead of reading past the buffer. */
class Fields {
  constructor(
    private readonly b: Buffer,
    readonly is64: boolean,
    private readonly le: boolean,
  ) {}

  need(offset: number, length: number, what: string): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.b.length) {
      throw corrupt(`${what} (bytes ${offset}..${offset + length} of ${this.b.length}); the file may be truncated.`);
    }
  }
  u16(o: number): number {
    this.need(o, 2, 'a field');
    return this.le ? this.b.readUInt16LE(o) : this.b.readUInt16BE(o);
  }
  u32(o: number): number {
    this.need(o, 4, 'a field');
    return this.le ? this.b.readUInt32LE(o) : this.b.readUInt32BE(o);
  }
  /** An address, offset or size (Elf32_Addr/Elf64_Off…); 64-bit values beyond 2^53 cannot point into a buffer. */
  addr(o: number): number {
    if (!this.is64) return this.u32(o);
    const v = this.u64(o);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt(`a 64-bit offset or address 0x${v.toString(16)} is implausibly large.`);
    return Number(v);
  }
  /** A 64-bit value as a number, possibly inexact when huge (fine for comparing with small tags). */
  u64Loose(o: number): number {
    return Number(this.u64(o));
  }
  private u64(o: number): bigint {
    this.need(o, 8, 'a field');
    return this.le ? this.b.readBigUInt64LE(o) : this.b.readBigUInt64BE(o);
  }
  /**
   * NUL-terminated text in [start, end), at most PATH_MAX long: the cap keeps many names
   * pointing into one long unterminated run from costing quadratic time.
   */
  cstring(start: number, end: number, what: string): string {
    const nul = this.b.subarray(start, Math.min(end, start + PATH_MAX)).indexOf(0);
    if (nul === -1) throw corrupt(`${what} is not NUL-terminated within ${Math.min(end - start, PATH_MAX)} bytes.`);
    return this.b.subarray(start, start + nul).toString('latin1');
  }
}
