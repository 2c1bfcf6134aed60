// What the gossip member needs from the network: unreliable datagrams for probes and gossip,
// and a reliable request/response exchange for push-pull state sync (memberlist's packet and
// stream layers). UdpTransport (udp-transport.ts) is dgram + TCP; SimNetwork (sim-network.ts)
// is an in-process network in virtual time.
//
// The push-pull call takes a callback rather than returning a promise: under the
// virtual-time scheduler the event loop runs synchronously, and a promise continuation would
// run only after the simulation step, at the wrong virtual time.

export interface Endpoint {
  addr: string;
  port: number;
}

export interface TransportHandlers {
  /** A datagram arrived (already size-capped by the transport; contents not yet validated). */
  packet(data: Buffer, from: Endpoint): void;
  /**
   * A push-pull request arrived; return the reply payload, or null to close without one
   * (malformed request). Runs synchronously so the reply reflects state at arrival.
   */
  pushPull(data: Buffer, from: Endpoint): Buffer | null;
}

export type PushPullCallback = (err: Error | null, reply: Buffer | null) => void;

export interface Transport {
  /** Binds and starts delivering to `handlers`; resolves with the address actually bound. */
  start(handlers: TransportHandlers): Promise<Endpoint>;
  /** Fire-and-forget datagram; failures are silent, as UDP loss is. */
  sendPacket(to: Endpoint, data: Uint8Array): void;
  /**
   * One reliable request/response exchange (push-pull). `done` is called exactly once: with
   * the reply, or with an error on refusal, timeout after `timeoutMs`, or a closed transport.
   */
  pushPull(to: Endpoint, data: Uint8Array, timeoutMs: number, done: PushPullCallback): void;
  /** Stops receiving and releases sockets; pending requests fail. */
  stop(): Promise<void>;
}
