// The agent's version for its hello. The bundle has no package.json beside it, so
// scripts/build-agent.mjs defines __DROVER_AGENT_VERSION__; otherwise it is the package's.
import { VERSION } from '../version.js';

declare const __DROVER_AGENT_VERSION__: string | undefined;

/** At most 40 characters: the controller refuses a longer hello version. */
export const AGENT_VERSION: string = (typeof __DROVER_AGENT_VERSION__ === 'string' ? __DROVER_AGENT_VERSION__ : VERSION).slice(0, 40);
