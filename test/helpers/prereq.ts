// Prerequisite checks for tests that need tools from Debian packages. Outside CI a missing tool
// skips the test with a loud line naming the package; with CI=true it is a failure.
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

export const inCI = process.env.CI === 'true';
export const outputDir = join(process.cwd(), 'test-output');

export function which(cmd: string, extraDirs: string[] = []): string | null {
  for (const dir of extraDirs) if (existsSync(join(dir, cmd))) return join(dir, cmd);
  try {
    return execFileSync('sh', ['-c', `command -v "${cmd}"`], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

/**
 * Returns the `skip` option for a describe/it: false when the prerequisite holds, a reason when
 * it does not (outside CI). In CI a missing prerequisite throws, failing the test file.
 */
export function prereq(what: string, available: boolean, debianPackage: string): { skip: string | false } {
  if (available) return { skip: false };
  const line = `missing prerequisite: ${what} — install the Debian package '${debianPackage}' (apt-get install ${debianPackage})`;
  if (inCI) throw new Error(`CI=true and ${line}`);
  process.stderr.write(`\n*** SKIPPED: ${line}\n`);
  mkdirSync(outputDir, { recursive: true });
  appendFileSync(join(outputDir, 'skipped-prerequisites.txt'), `${line}\n`);
  return { skip: line };
}
