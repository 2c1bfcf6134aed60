import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SseParser } from './sse.js';

describe('SSE parser', () => {
  it('parses events, multi-line data, ids and comments', () => {
    const p = new SseParser();
    const got = p.push(': hello\nevent: event\nid: 7\ndata: {"a":1}\n\ndata: x\ndata: y\n\n');
    assert.deepEqual(got, [
      { event: 'event', data: '{"a":1}', id: '7' },
      { event: 'message', data: 'x\ny', id: '7' },
    ]);
  });

  it('handles CR, LF and CRLF, also split across chunks', () => {
    const p = new SseParser();
    const text = 'event: device\r\ndata: 1\r\n\r\ndata: 2\r\rdata: 3\n\n';
    const got = [...text].flatMap((c) => p.push(c)); // one character at a time
    assert.deepEqual(got.map((m) => [m.event, m.data]), [['device', '1'], ['message', '2'], ['message', '3']]);
  });

  it('drops events without data and ignores ids with NUL', () => {
    const p = new SseParser();
    assert.deepEqual(p.push('event: x\n\nid: a\u0000b\ndata: d\n\n'), [{ event: 'message', data: 'd' }]);
  });
});
