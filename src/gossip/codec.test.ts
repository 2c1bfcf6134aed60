// The wire format: every message type survives a round trip, and nothing a peer (or a random
// process) can send makes the decoder throw — truncations, flipped bytes, garbage, trailing
// bytes, empty names, port 0, unknown types all come back as null.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodePacket, decodePushPull, encodeMessage, encodePacket, encodePushPull, packetHeaderSize, PART_OVERHEAD, validateMeta, type GossipMessage, type PushPull } from './codec.js';
import { seededRandom } from './rng.js';

const src = { name: 'pi-0042', addr: '10.1.2.3', port: 7946 };
const messages: GossipMessage[] = [
  { type: 'ping', seq: 1, target: 'pi-0007', source: src },
  { type: 'ping-req', seq: 4_294_967_295, target: { name: 'pi-0007', addr: 'fd00::7', port: 65535 }, nack: true, timeoutMs: 500, source: src },
  { type: 'ping-req', seq: 2, target: { name: 'π-ünïcode', addr: 'host.example', port: 1 }, nack: false, timeoutMs: 65535, source: src },
  { type: 'ack', seq: 99 },
  { type: 'nack', seq: 100 },
  { type: 'alive', node: 'pi-0042', addr: '10.1.2.3', port: 7946, incarnation: 7, meta: { role: 'worker', rack: 'b' } },
  { type: 'alive', node: 'x', addr: 'y', port: 2, incarnation: 0, meta: {} },
  { type: 'suspect', node: 'pi-0007', incarnation: 3, from: 'pi-0042' },
  { type: 'dead', node: 'pi-0007', incarnation: 3, from: 'pi-0007' },
];

describe('gossip codec', () => {
  it('round-trips every message type in one packet', () => {
    const pkt = encodePacket('pi-0042', messages.map(encodeMessage));
    const out = decodePacket(pkt);
    assert.ok(out);
    assert.equal(out.sender, 'pi-0042');
    assert.deepEqual(out.messages, messages);
    // The size accounting the member uses to fill datagrams is exact.
    const parts = messages.map(encodeMessage);
    assert.equal(pkt.length, packetHeaderSize('pi-0042') + parts.reduce((a, p) => a + PART_OVERHEAD + p.length, 0));
  });

  it('round-trips push-pull state', () => {
    const pp: PushPull = {
      sender: 'pi-1',
      join: true,
      nodes: [
        { name: 'pi-1', addr: '10.0.0.1', port: 7946, incarnation: 1, state: 'alive', meta: { a: 'b' } },
        { name: 'pi-2', addr: '10.0.0.2', port: 7946, incarnation: 5, state: 'suspect', meta: {} },
        { name: 'pi-3', addr: '10.0.0.3', port: 7946, incarnation: 2, state: 'dead', meta: {} },
        { name: 'pi-4', addr: '10.0.0.4', port: 7946, incarnation: 9, state: 'left', meta: {} },
      ],
    };
    assert.deepEqual(decodePushPull(encodePushPull(pp)), pp);
    assert.deepEqual(decodePushPull(encodePushPull({ sender: 'a', join: false, nodes: [] })), { sender: 'a', join: false, nodes: [] });
  });

  it('rejects every truncation and any trailing byte', () => {
    const pkt = encodePacket('pi-0042', messages.map(encodeMessage));
    for (let len = 0; len < pkt.length; len++) assert.equal(decodePacket(pkt.subarray(0, len)), null, `truncated at ${len}`);
    assert.equal(decodePacket(Buffer.concat([pkt, Buffer.from([0])])), null);
    const pp = encodePushPull({ sender: 'a', join: false, nodes: [{ name: 'b', addr: 'c', port: 1, incarnation: 1, state: 'alive', meta: { k: 'v' } }] });
    for (let len = 0; len < pp.length; len++) assert.equal(decodePushPull(pp.subarray(0, len)), null, `truncated at ${len}`);
  });

  it('rejects bad magic, version, kind, type, state, empty names, port 0, __proto__ meta', () => {
    const good = encodePacket('s', [encodeMessage({ type: 'ack', seq: 1 })]);
    const mutate = (at: number, v: number) => {
      const b = Buffer.from(good);
      b[at] = v;
      return b;
    };
    assert.ok(decodePacket(good));
    assert.equal(decodePacket(mutate(0, 0x00)), null, 'magic');
    assert.equal(decodePacket(mutate(1, 2)), null, 'version');
    assert.equal(decodePacket(mutate(2, 2)), null, 'kind: a push-pull is not a packet');
    // header: magic, version, kind, len(1) 's', count, u16 len, type
    assert.equal(decodePacket(mutate(8, 42)), null, 'unknown message type');
    assert.equal(decodePacket(mutate(5, 0)), null, 'zero messages');
    assert.equal(decodePacket(encodePacket('s', [encodeMessage({ type: 'suspect', node: '', incarnation: 1, from: 'x' })])), null, 'empty node name');
    assert.equal(decodePacket(encodePacket('s', [encodeMessage({ type: 'alive', node: 'n', addr: 'a', port: 0, incarnation: 1, meta: {} })])), null, 'port 0');
    const proto = encodeMessage({ type: 'alive', node: 'n', addr: 'a', port: 1, incarnation: 1, meta: { ['__proto__']: 'x' } });
    assert.equal(decodePacket(encodePacket('s', [proto])), null, '__proto__ meta key');
    const pp = encodePushPull({ sender: 'a', join: false, nodes: [{ name: 'b', addr: 'c', port: 1, incarnation: 1, state: 'alive', meta: {} }] });
    const badState = Buffer.from(pp);
    badState[badState.length - 2] = 7; // state byte precedes the one-byte empty meta
    assert.equal(decodePushPull(badState), null, 'unknown state');
    assert.equal(decodePushPull(good), null, 'a packet is not a push-pull');
  });

  it('never throws on random or bit-flipped input', () => {
    const rnd = seededRandom(42);
    const base = encodePacket('pi-0042', messages.map(encodeMessage));
    const pp = encodePushPull({ sender: 'a', join: true, nodes: [{ name: 'b', addr: 'c', port: 1, incarnation: 1, state: 'alive', meta: { k: 'v' } }] });
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) {
      const garbage = Buffer.alloc(Math.floor(rnd() * 200));
      for (let j = 0; j < garbage.length; j++) garbage[j] = Math.floor(rnd() * 256);
      if (garbage.length > 3 && rnd() < 0.5) garbage.set([0xd7, 1, rnd() < 0.5 ? 1 : 2]);
      assert.doesNotThrow(() => decodePacket(garbage));
      assert.doesNotThrow(() => decodePushPull(garbage));
      const flipped = Buffer.from(i % 2 ? base : pp);
      const at = Math.floor(rnd() * flipped.length);
      flipped[at] = flipped[at]! ^ (1 << Math.floor(rnd() * 8));
      assert.doesNotThrow(() => decodePacket(flipped));
      assert.doesNotThrow(() => decodePushPull(flipped));
      if (decodePacket(flipped) || decodePushPull(flipped)) accepted++;
    }
    // Some flips land in payload bytes (a seq number, a name character) and stay valid; that is fine.
    assert.ok(accepted > 0);
  });

  it('refuses to encode what it would refuse to decode', () => {
    assert.throws(() => encodeMessage({ type: 'suspect', node: 'x'.repeat(256), incarnation: 1, from: 'y' }), RangeError);
    assert.throws(() => encodePacket('s', []), RangeError);
    assert.throws(() => validateMeta({ big: 'x'.repeat(600) }), RangeError);
    assert.throws(() => validateMeta(JSON.parse('{"__proto__": "x"}') as Record<string, string>), RangeError);
    validateMeta({ role: 'worker' });
  });
});
