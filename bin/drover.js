#!/usr/bin/env node
// Thin launcher so the bin works from an npm install and from a checkout after `npm run build`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/server/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write('drover: not built yet; run `npm run build` in the package directory first\n');
  process.exit(70);
}
await import(main.href);
