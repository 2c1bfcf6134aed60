// Reading tar archives (ustar, pax and GNU long names), the counterpart of tar.ts's writer:
// `tarEntries` streams entries out of any chunked source, checking every header's checksum, so
// a 40 MB runtime tarball is never held in memory; `tarFiles` collects the regular files of a
// small archive (a device overlay) into a map. Malformed input throws an Error whose message
// says what is wrong ("a tar header checksum does not match", "ends inside …").

export interface TarReadEntry {
  /** Path, with the pax `path` or GNU long name applied. */
  name: string;
  /** The typeflag character ('0' or NUL for a regular file, '5' a directory, …). */
  type: string;
  size: number;
  /** Hands the body to `sink` in the chunks it arrives in; a body not read is skipped. */
  read(sink: (chunk: Buffer) => Promise<void> | void): Promise<void>;
}

export async function* tarEntries(source: AsyncIterable<Buffer> | Iterable<Buffer>): AsyncGenerator<TarReadEntry> {
  const it = Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : (async function* () {
    yield* source;
  })();
  const pieces = new Pieces(it);
  let longName: string | null = null;
  let pax: Map<string, string> | null = null;
  for (;;) {
    const h = await pieces.read(512);
    if (!h || h.every((x) => x === 0)) return;
    const sum = tarNumber(h.subarray(148, 156));
    let calc = 0;
    for (let i = 0; i < 512; i++) calc += i >= 148 && i < 156 ? 0x20 : h[i]!;
    if (sum !== calc) throw new Error('a tar header checksum does not match');
    const type = String.fromCharCode(h[156]!);
    const magic = h.subarray(257, 263).toString('latin1');
    let name = cstr(h.subarray(0, 100));
    const prefix = magic.startsWith('ustar') ? cstr(h.subarray(345, 500)) : '';
    if (prefix) name = `${prefix}/${name}`;
    let size = tarNumber(h.subarray(124, 136));
    if (pax?.has('size')) size = Number(pax.get('size'));
    if (pax?.has('path')) name = pax.get('path')!;
    if (longName !== null) name = longName;
    const padded = Math.ceil(size / 512) * 512;
    if (type === 'x' || type === 'g' || type === 'L') {
      if (size > 1024 * 1024) throw new Error('an extended header is implausibly large');
      const data = (await pieces.read(padded)) ?? Buffer.alloc(0);
      if (data.length !== padded) throw new Error('ends inside an extended header');
      if (type === 'x') pax = paxRecords(data.subarray(0, size));
      else if (type === 'L') longName = cstr(data.subarray(0, size));
      continue;
    }
    longName = null;
    pax = null;
    let consumed = false;
    yield {
      name,
      type,
      size,
      async read(sink) {
        if (consumed) throw new Error(`the body of ${name} was already read`);
        consumed = true;
        await pieces.pass(size, async (b) => {
          await sink(b);
        });
      },
    };
    await pieces.pass(consumed ? padded - size : padded);
  }
}

/** The regular files of a whole (small) archive in memory, by path without a leading "./". */
export async function tarFiles(tar: Buffer): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for await (const e of tarEntries([tar])) {
    if (e.type !== '0' && e.type !== '\0') continue;
    const parts: Buffer[] = [];
    await e.read((b) => {
      parts.push(b);
    });
    files.set(e.name.replace(/^\.\//, ''), Buffer.concat(parts));
  }
  return files;
}

/**
 * Reads exactly-sized pieces out of a stream of chunks. `read` returns
 * null only at a clean end (nothing buffered); a stream that ends inside a piece is an error.
 */
class Pieces {
  private buf: Buffer[] = [];
  private have = 0;
  private ended = false;
  constructor(private readonly it: AsyncIterator<Buffer>) {}

  private async fill(n: number): Promise<boolean> {
    while (this.have < n && !this.ended) {
      const r = await this.it.next();
      if (r.done) this.ended = true;
      else if (r.value.length) {
        this.buf.push(r.value);
        this.have += r.value.length;
      }
    }
    return this.have >= n;
  }

  private take(n: number): Buffer {
    const all = this.buf.length === 1 ? this.buf[0]! : Buffer.concat(this.buf, this.have);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.buf = rest.length ? [rest] : [];
    this.have = rest.length;
    return out;
  }

  async read(n: number): Promise<Buffer | null> {
    if (!(await this.fill(n))) {
      if (this.have === 0) return null;
      throw new Error(`ends inside a ${n}-byte piece`);
    }
    return this.take(n);
  }

  /** Hands `n` bytes to `sink` (or drops them) in the chunks they come in. */
  async pass(n: number, sink?: (b: Buffer) => Promise<void>): Promise<void> {
    let left = n;
    while (left > 0) {
      if (this.have === 0 && !(await this.fill(1))) throw new Error(`ends ${left} bytes before the end of an entry`);
      const first = this.buf[0]!;
      const piece = first.length <= left ? first : first.subarray(0, left);
      if (piece === first) this.buf.shift();
      else this.buf[0] = first.subarray(left);
      this.have -= piece.length;
      left -= piece.length;
      if (sink) await sink(piece);
    }
  }
}

const cstr = (b: Buffer) => {
  const nul = b.indexOf(0);
  return b.subarray(0, nul < 0 ? b.length : nul).toString('utf8');
};

function tarNumber(field: Buffer): number {
  if (field[0]! & 0x80) {
    // base-256, as GNU tar writes sizes past 8 GiB
    let v = 0;
    for (let i = 1; i < field.length; i++) v = v * 256 + field[i]!;
    return v;
  }
  const s = cstr(field).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new Error(`a header field is not octal ("${s}")`);
  return parseInt(s, 8);
}

function paxRecords(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let off = 0;
  while (off < data.length) {
    const sp = data.indexOf(0x20, off);
    if (sp < 0) break;
    const len = Number(data.subarray(off, sp).toString('latin1'));
    if (!Number.isInteger(len) || len <= sp - off || off + len > data.length) throw new Error('a pax header record is malformed');
    const rec = data.subarray(sp + 1, off + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1));
    off += len;
  }
  return out;
}
