// Polling until something holds, for tests that watch a system settle (agents alive, events
// recorded, a ladder finished). Every wait is bounded.

type Maybe<T> = T | undefined | false | null;

/** Polls `fn` until it returns something truthy and returns that; throws naming `what` after `ms`. */
export async function until<T>(what: string, fn: () => Promise<Maybe<T>> | Maybe<T>, ms = 20_000, everyMs = 50): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Polls `cond` until it holds (true) or `ms` passed (false), for tests that assert on the outcome. */
export async function waitFor(cond: () => boolean, ms: number, everyMs = 20): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return cond();
}
