// Tests whose steps build on each other (a browser session, a fleet under successive faults):
// after a failing step the rest are skipped rather than failing for the same cause, and
// `onFailure` (a screenshot, say) runs first.
import { it } from 'node:test';

export function sequentialSteps(onFailure?: () => Promise<unknown>): (name: string, fn: () => Promise<void>) => void {
  let failed = false;
  return (name, fn) => {
    it(name, async (t) => {
      if (failed) return t.skip('an earlier step failed');
      try {
        await fn();
      } catch (err) {
        failed = true;
        await onFailure?.().catch(() => {});
        throw err;
      }
    });
  };
}
