// A small seedable PRNG (mulberry32) so a simulation with a given seed replays exactly;
// production members use Math.random.

export type Random = () => number;

/** Uniform in [0, 1), 2^32 period; plenty for picking gossip targets and dropping packets. */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
