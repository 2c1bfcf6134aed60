// Which source a benchmark measured: the commit, and whether the working tree had changes on top.
import { execFileSync } from 'node:child_process';

export function sourceState(root: string): { commit: string; dirty: boolean } {
  const git = (args: string[]) => execFileSync('git', args, { cwd: root, encoding: 'utf8' }).trim();
  let commit = 'unknown';
  let dirty = true;
  try {
    commit = git(['rev-parse', '--short', 'HEAD']);
  } catch {
    /* not a git checkout */
  }
  try {
    dirty = git(['status', '--porcelain']).length > 0;
  } catch {
    /* not a git checkout: say so by "dirty" */
  }
  return { commit, dirty };
}
