// What /proc says about a process, for the benchmarks that measure the controller, PostgreSQL
// and the agent as separate processes.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** The fields of /proc/PID/stat after the command name (index 0 is the state, 1 the parent pid). */
export function statFields(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** utime + stime of a process, seconds. */
export function cpuOf(pid: number): number {
  const f = statFields(pid);
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

/** A reader of /proc/PID/status's numeric fields (kB for the memory ones), read once. */
export function statusOf(pid: number): (key: string) => number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
}
