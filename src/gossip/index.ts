// Drover's gossip membership library: SWIM + Lifeguard over UDP (see docs/gossip.md).
export { GossipMember, toView, type GossipEvents, type GossipMemberInfo, type GossipStats, type MemberState, type Meta } from './swim.js';
export { DEFAULT_TIMINGS, type GossipLogger, type GossipMemberOptions, type GossipTimings } from './config.js';
export type { Endpoint, Transport, TransportHandlers, PushPullCallback } from './transport.js';
export { UdpTransport, type UdpTransportOptions } from './udp-transport.js';
export { SimNetwork, type SimNetworkOptions, type SimEndpointStats } from './sim-network.js';
export { SimCluster, type SimClusterOptions } from './sim-cluster.js';
export { RealScheduler, type Scheduler, type Timer } from './scheduler.js';
export { VirtualScheduler } from './virtual-scheduler.js';
export { seededRandom, type Random } from './rng.js';
export { PhiAccrualDetector, phiOf, type PhiOptions } from './phi.js';
export { MdnsDiscovery, joinViaMdns, type MdnsDiscoveryOptions, type MdnsPeer } from './mdns.js';
