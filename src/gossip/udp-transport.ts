// The production transport: a dgram socket for probes and gossip and a TCP listener on the same
// port number for push-pull (as memberlist does), so one firewall rule or port forward per
// member covers both. With bind port 0 both sockets get the same ephemeral port (retrying when
// TCP finds it taken). Push-pull frames are a 4-byte big-endian length and the payload; one
// request and one reply per connection.
//
// The address peers should use is not necessarily the bound one: behind a NAT or a relay hop
// the member advertises another address/port (GossipMember's advertiseAddr/advertisePort),
// and replies go to the advertised source in each ping, not to the datagram's source address.
import dgram from 'node:dgram';
import net from 'node:net';
import { MAX_STREAM_BYTES } from './codec.js';
import type { Endpoint, PushPullCallback, Transport, TransportHandlers } from './transport.js';

export interface UdpTransportOptions {
  /** Local address to bind (IPv4 or IPv6 literal; '0.0.0.0' for all). */
  bindAddr: string;
  /** UDP and TCP port; 0 = an ephemeral port shared by both. */
  bindPort: number;
  /** Idle limit on an inbound push-pull connection, ms (default 10 s, memberlist's TCPTimeout). */
  streamTimeoutMs?: number;
  /** Called with transport-level errors that are otherwise swallowed (socket errors, bad frames). */
  onError?: (err: Error) => void;
}

/** Splits a byte stream into one length-prefixed frame; calls `done` once with it or an error. */
function readFrame(sock: net.Socket, done: (err: Error | null, frame: Buffer | null) => void): void {
  const chunks: Buffer[] = [];
  let have = 0;
  let want = -1;
  let finished = false;
  const finish = (err: Error | null, frame: Buffer | null) => {
    if (finished) return;
    finished = true;
    sock.removeListener('data', onData);
    done(err, frame);
  };
  const onData = (chunk: Buffer) => {
    chunks.push(chunk);
    have += chunk.length;
    if (want < 0 && have >= 4) {
      const head = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      want = head.readUInt32BE(0);
      if (want > MAX_STREAM_BYTES) return finish(new Error(`push-pull frame of ${want} bytes refused`), null);
    }
    if (want >= 0 && have >= 4 + want) {
      const all = Buffer.concat(chunks, have);
      finish(null, all.subarray(4, 4 + want));
    }
  };
  sock.on('data', onData);
  sock.once('end', () => finish(new Error('connection closed before a full frame'), null));
  sock.once('error', (err) => finish(err, null));
  sock.once('close', () => finish(new Error('connection closed'), null));
}

function frame(payload: Uint8Array): Buffer {
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32BE(payload.length, 0);
  return Buffer.concat([head, payload]);
}

export class UdpTransport implements Transport {
  private udp: dgram.Socket | null = null;
  private tcp: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  private readonly streamTimeoutMs: number;

  constructor(private readonly opts: UdpTransportOptions) {
    this.streamTimeoutMs = opts.streamTimeoutMs ?? 10_000;
  }

  async start(handlers: TransportHandlers): Promise<Endpoint> {
    if (this.udp) throw new Error('transport already started');
    const type = net.isIPv6(this.opts.bindAddr) ? 'udp6' : 'udp4';
    for (let attempt = 0; ; attempt++) {
      const udp = dgram.createSocket({ type });
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind(this.opts.bindPort, this.opts.bindAddr, () => {
          udp.removeListener('error', reject);
          resolve();
        });
      });
      const port = udp.address().port;
      const tcp = net.createServer((sock) => this.serve(sock, handlers));
      try {
        await new Promise<void>((resolve, reject) => {
          tcp.once('error', reject);
          tcp.listen({ port, host: this.opts.bindAddr, exclusive: true }, () => {
            tcp.removeListener('error', reject);
            resolve();
          });
        });
      } catch (err) {
        udp.close();
        const inUse = (err as NodeJS.ErrnoException).code === 'EADDRINUSE';
        if (inUse && this.opts.bindPort === 0 && attempt < 10) continue;
        throw err;
      }
      udp.on('message', (msg, rinfo) => handlers.packet(msg, { addr: rinfo.address, port: rinfo.port }));
      udp.on('error', (err) => this.opts.onError?.(err));
      tcp.on('error', (err) => this.opts.onError?.(err));
      this.udp = udp;
      this.tcp = tcp;
      return { addr: this.opts.bindAddr, port };
    }
  }

  sendPacket(to: Endpoint, data: Uint8Array): void {
    const udp = this.udp;
    if (!udp) return;
    udp.send(data, to.port, to.addr, (err) => {
      if (err) this.opts.onError?.(err);
    });
  }

  pushPull(to: Endpoint, data: Uint8Array, timeoutMs: number, done: PushPullCallback): void {
    if (!this.udp) {
      setImmediate(() => done(new Error('transport stopped'), null));
      return;
    }
    let finished = false;
    const sock = net.connect({ host: to.addr, port: to.port });
    // readFrame reports the first error; later ones (a reset after the reply) must not crash us.
    sock.on('error', () => {});
    this.sockets.add(sock);
    const finish = (err: Error | null, reply: Buffer | null) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      this.sockets.delete(sock);
      sock.destroy();
      done(err, reply);
    };
    const timer = setTimeout(() => finish(new Error(`push-pull to ${to.addr}:${to.port} timed out`), null), timeoutMs);
    sock.once('connect', () => sock.write(frame(data)));
    readFrame(sock, finish);
  }

  private serve(sock: net.Socket, handlers: TransportHandlers): void {
    this.sockets.add(sock);
    sock.on('error', () => {});
    sock.setTimeout(this.streamTimeoutMs, () => sock.destroy());
    sock.once('close', () => this.sockets.delete(sock));
    const from = { addr: sock.remoteAddress ?? '', port: sock.remotePort ?? 0 };
    readFrame(sock, (err, req) => {
      if (err || !req) {
        if (err) this.opts.onError?.(err);
        sock.destroy();
        return;
      }
      const reply = handlers.pushPull(req, from);
      if (reply) sock.end(frame(reply));
      else sock.destroy();
    });
  }

  async stop(): Promise<void> {
    const udp = this.udp;
    const tcp = this.tcp;
    this.udp = null;
    this.tcp = null;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await Promise.all([
      udp ? new Promise<void>((resolve) => udp.close(() => resolve())) : undefined,
      tcp ? new Promise<void>((resolve) => tcp.close(() => resolve())) : undefined,
    ]);
  }
}
