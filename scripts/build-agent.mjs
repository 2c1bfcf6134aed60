#!/usr/bin/env node
// Bundles the device agent into one file: dist/agent/drover-agent.mjs. It runs on the Pi with a
// plain `node` and nothing installed beside it, so everything (ws included) is inlined and the
// bundle has no native dependency: ws's optional accelerators bufferutil and utf-8-validate are
// left out (ws requires them inside try/catch and falls back to JavaScript).
// Usage: node scripts/build-agent.mjs [--outfile PATH] [--no-minify]
import { build } from 'esbuild';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const outIdx = args.indexOf('--outfile');
const outfile = outIdx >= 0 ? args[outIdx + 1] : join(root, 'dist/agent/drover-agent.mjs');
const minify = !args.includes('--no-minify');
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

mkdirSync(dirname(outfile), { recursive: true });
const result = await build({
  entryPoints: [join(root, 'src/agent/main.ts')],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node18',
  minify,
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
  // ws is CommonJS: its require() of node builtins needs a real require in an ES module.
  banner: { js: "#!/usr/bin/env node\nimport { createRequire as __droverCreateRequire } from 'node:module';\nconst require = __droverCreateRequire(import.meta.url);" },
  external: ['bufferutil', 'utf-8-validate'],
  define: { __DROVER_AGENT_VERSION__: JSON.stringify(version) },
});

const inputs = Object.keys(result.metafile.inputs);
const native = inputs.filter((p) => p.endsWith('.node') || /node_modules\/(bufferutil|utf-8-validate)\//.test(p));
if (native.length) {
  console.error(`the agent bundle must not contain native code, but has: ${native.join(', ')}`);
  process.exit(1);
}
const size = statSync(outfile).size;
console.log(`${relative(process.cwd(), outfile) || outfile}: ${(size / 1024).toFixed(1)} KiB (${size} bytes, ${inputs.length} inputs, version ${version})`);
