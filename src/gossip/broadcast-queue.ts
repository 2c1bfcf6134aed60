// The piggyback queue (memberlist's TransmitLimitedQueue): membership updates waiting to ride
// along on outgoing packets. Each is sent at most RetransmitMult·ceil(log10(N+1)) times, which
// is enough for epidemic spread to reach all N members with high probability; messages sent
// fewer times go first so fresh news overtakes old news. A newer update about the same member
// replaces the queued one, so the queue never holds more than one message per member.
//
// Entries live in buckets by transmit count (bucket b = sent b times) so taking the next few
// messages costs O(messages taken), not a sort of the whole queue on every packet.

interface Entry {
  key: string;
  msg: Uint8Array;
  transmits: number;
  live: boolean;
  onDone: (() => void) | null;
}

/** memberlist's retransmitLimit: mult · ceil(log10(n + 1)). */
export function retransmitLimit(retransmitMult: number, n: number): number {
  return retransmitMult * Math.ceil(Math.log10(n + 1));
}

/** Smallest broadcast message we encode (a suspect/dead with one-byte names). */
const MIN_MESSAGE_BYTES = 9;

export class BroadcastQueue {
  private buckets: Entry[][] = [[]];
  private byKey = new Map<string, Entry>();
  private live = 0;

  constructor(
    private readonly retransmitMult: number,
    private readonly numNodes: () => number,
  ) {}

  /** Messages still waiting to be sent (at least once more). */
  get size(): number {
    return this.live;
  }

  get limit(): number {
    return retransmitLimit(this.retransmitMult, this.numNodes());
  }

  /**
   * Queues `msg` about member `key`, replacing any queued message about the same member.
   * `onDone` runs once the message has been sent `limit` times or was replaced.
   */
  queue(key: string, msg: Uint8Array, onDone?: () => void): void {
    const old = this.byKey.get(key);
    if (old) this.retire(old);
    const e: Entry = { key, msg, transmits: 0, live: true, onDone: onDone ?? null };
    this.byKey.set(key, e);
    this.buckets[0]!.push(e);
    this.live++;
  }

  /**
   * Takes the messages to piggyback on one packet with `limit` bytes free, counting `overhead`
   * extra bytes per message; each one taken counts as one transmission.
   */
  take(overhead: number, limit: number): Uint8Array[] {
    if (this.live === 0) return [];
    const maxTransmits = this.limit;
    const out: Uint8Array[] = [];
    const moved: Entry[] = [];
    let room = limit;
    for (let b = 0; b < this.buckets.length && room >= overhead + MIN_MESSAGE_BYTES; b++) {
      const bucket = this.buckets[b]!;
      if (bucket.length === 0) continue;
      // Newest at the end: walk backwards and rebuild only the part we walked over.
      const kept: Entry[] = [];
      let i = bucket.length - 1;
      for (; i >= 0 && room >= overhead + MIN_MESSAGE_BYTES; i--) {
        const e = bucket[i]!;
        if (!e.live) continue;
        if (e.transmits >= maxTransmits) {
          // The group shrank since it was queued; it has been sent enough.
          this.retire(e);
          continue;
        }
        const cost = overhead + e.msg.length;
        if (cost > room) {
          kept.push(e);
          continue;
        }
        room -= cost;
        out.push(e.msg);
        e.transmits++;
        if (e.transmits >= maxTransmits) this.retire(e);
        else moved.push(e);
      }
      bucket.length = i + 1;
      for (let k = kept.length - 1; k >= 0; k--) bucket.push(kept[k]!);
    }
    for (const e of moved) {
      while (this.buckets.length <= e.transmits) this.buckets.push([]);
      this.buckets[e.transmits]!.push(e);
    }
    return out;
  }

  /** Drops everything (member stopped); pending onDone callbacks run. */
  clear(): void {
    for (const bucket of this.buckets) for (const e of bucket) this.retire(e);
    this.buckets = [[]];
    this.byKey.clear();
  }

  private retire(e: Entry): void {
    if (!e.live) return;
    e.live = false;
    this.live--;
    if (this.byKey.get(e.key) === e) this.byKey.delete(e.key);
    const done = e.onDone;
    e.onDone = null;
    done?.();
  }
}
