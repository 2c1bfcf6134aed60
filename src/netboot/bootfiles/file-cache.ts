// Boot files are small and read by many Pis at once: keep them in memory, bounded, and
// re-read a file when its size or mtime changes.
import { readFile, stat } from 'node:fs/promises';

interface Entry {
  data: Buffer;
  mtimeMs: number;
  size: number;
}

export class FileCache {
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;
  /** One read per file at a time, however many transfers ask for it. */
  private readonly inflight = new Map<string, Promise<Buffer>>();

  constructor(private readonly maxBytes = 256 * 1024 * 1024) {}

  async read(path: string): Promise<Buffer> {
    const st = await stat(path);
    const hit = this.entries.get(path);
    if (hit && hit.mtimeMs === st.mtimeMs && hit.size === st.size) {
      // Refresh LRU position.
      this.entries.delete(path);
      this.entries.set(path, hit);
      return hit.data;
    }
    let p = this.inflight.get(path);
    if (!p) {
      p = readFile(path)
        .then(toShared)
        .finally(() => this.inflight.delete(path));
      this.inflight.set(path, p);
    }
    const data = await p;
    if (data.length <= this.maxBytes / 4) this.store(path, { data, mtimeMs: st.mtimeMs, size: data.length });
    return data;
  }

  private store(path: string, e: Entry): void {
    const old = this.entries.get(path);
    if (old) {
      this.bytes -= old.size;
      this.entries.delete(path);
    }
    this.entries.set(path, e);
    this.bytes += e.size;
    for (const [k, v] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(k);
      this.bytes -= v.size;
    }
  }
}

/** Cached files live in shared memory: the native TFTP engine's threads send straight from them. */
function toShared(b: Buffer): Buffer {
  const shared = Buffer.from(new SharedArrayBuffer(b.length));
  b.copy(shared);
  return shared;
}
