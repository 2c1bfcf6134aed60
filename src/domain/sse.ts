// An incremental Server-Sent Events parser (the WHATWG "event stream interpretation"), shared by
// the CLI's `drover events --follow` and the dashboard. Pure: text in, messages out.

export interface SseMessage {
  event: string;
  data: string;
  /** The last `id` field seen so far in the stream, if any. */
  id?: string;
}

export class SseParser {
  private buffer = '';
  private event = '';
  private data: string[] = [];
  private lastId: string | undefined;

  /** Feeds decoded text; returns the messages it completed. */
  push(text: string): SseMessage[] {
    this.buffer += text;
    const out: SseMessage[] = [];
    let nl: number;
    while ((nl = this.buffer.search(/\r\n|\r|\n/)) >= 0) {
      if (this.buffer[nl] === '\r' && nl === this.buffer.length - 1) break; // a CRLF split across chunks
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + (this.buffer[nl] === '\r' && this.buffer[nl + 1] === '\n' ? 2 : 1));
      if (line === '') {
        // A blank line dispatches; an event with no data is dropped.
        if (this.data.length) out.push({ event: this.event || 'message', data: this.data.join('\n'), ...(this.lastId !== undefined ? { id: this.lastId } : {}) });
        this.event = '';
        this.data = [];
        continue;
      }
      if (line.startsWith(':')) continue; // a comment (heartbeat)
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') this.event = value;
      else if (field === 'data') this.data.push(value);
      else if (field === 'id' && !value.includes('\0')) this.lastId = value;
    }
    return out;
  }
}
