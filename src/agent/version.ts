// The agent's version for its hello. The bundle has no package.json beside it, so
// scripts/build-agent.mjs defines __DROVER_AGENT_VERSION__; otherwise package.json says.
import { readFileSync } from 'node:fs';

declare const __DROVER_AGENT_VERSION__: string | undefined;

/** From src/agent/ or dist/server/agent/ (`drover agent` of the installed package). */
function fromPackageJson(): string {
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'drover' && pkg.version) return pkg.version;
    } catch {
      /* try the next */
    }
  }
  return '0.0.0';
}

/** At most 40 characters: the controller refuses a longer hello version. */
export const AGENT_VERSION: string = (typeof __DROVER_AGENT_VERSION__ === 'string' ? __DROVER_AGENT_VERSION__ : fromPackageJson()).slice(0, 40);
