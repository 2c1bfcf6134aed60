// A userspace stand-in for `tc qdisc … netem delay`, which this kernel lacks (no sch_netem):
// a UDP relay and TCP proxies that hold every byte for `delayMs` before passing it on. The
// delayed agent advertises the relay as its gossip address and dials the controller through a
// TCP proxy, so everything sent to it (gossip pings, acks, push-pull) and everything it sends
// to the controller waits — what netem on its interface would do to one direction of each
// exchange. The delay can be changed at any time (0 = pass straight through).
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { createServer, connect, type Server, type Socket as TcpSocket } from 'node:net';

export class DelayRelay {
  delayMs = 0;
  private udp: Socket | null = null;
  private readonly servers: Server[] = [];
  private readonly sockets = new Set<TcpSocket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  /** One upstream socket per remote peer, so the target's replies find their way back. */
  private readonly upstream = new Map<string, Socket>();

  private later(fn: () => void): void {
    if (this.delayMs <= 0) return fn();
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, this.delayMs);
    this.timers.add(t);
  }

  /** Relays UDP arriving at listen to target (and its replies back), delayed. */
  async udpRelay(listen: { host: string; port: number }, target: { host: string; port: number }): Promise<number> {
    const s = createSocket('udp4');
    this.udp = s;
    s.on('message', (msg: Buffer, from: RemoteInfo) => {
      const key = `${from.address}:${from.port}`;
      let up = this.upstream.get(key);
      if (!up) {
        up = createSocket('udp4');
        up.bind(0, listen.host);
        up.on('message', (reply: Buffer) => this.later(() => s.send(reply, from.port, from.address)));
        up.on('error', () => undefined);
        this.upstream.set(key, up);
      }
      const u = up;
      this.later(() => u.send(msg, target.port, target.host));
    });
    s.on('error', () => undefined);
    await new Promise<void>((resolve) => s.bind(listen.port, listen.host, resolve));
    return s.address().port;
  }

  /** A TCP proxy from listen to target; bytes in the direction(s) named are delayed. */
  async tcpProxy(listen: { host: string; port: number }, target: { host: string; port: number }, delay: 'to-target' | 'both' = 'both'): Promise<number> {
    const server = createServer((client) => {
      const up = connect(target.port, target.host);
      this.sockets.add(client);
      this.sockets.add(up);
      // Writes keep their order: each chunk is scheduled after the one before it.
      client.on('data', (d) => this.later(() => up.writable && up.write(d)));
      up.on('data', (d) => (delay === 'both' ? this.later(() => client.writable && client.write(d)) : client.write(d)));
      const close = () => {
        this.later(() => {
          client.destroy();
          up.destroy();
        });
      };
      client.on('close', close);
      up.on('close', close);
      client.on('error', () => undefined);
      up.on('error', () => undefined);
    });
    this.servers.push(server);
    await new Promise<void>((resolve) => server.listen(listen.port, listen.host, resolve));
    return (server.address() as { port: number }).port;
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    for (const s of this.sockets) s.destroy();
    for (const u of this.upstream.values()) u.close();
    this.udp?.close();
    await Promise.all(this.servers.map((s) => new Promise((r) => s.close(r))));
  }
}
