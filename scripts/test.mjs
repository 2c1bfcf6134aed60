#!/usr/bin/env node
// `npm test`: builds (server + dashboard), then runs every *.test.ts with Node's test runner and
// ends with a loud summary of tests skipped for missing prerequisites.
// Usage: node scripts/test.mjs [--no-build] [file-or-dir-filter ...]
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const build = !args.includes('--no-build');
const filters = args.filter((a) => !a.startsWith('--'));

function findTests(dir, out = []) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) findTests(p, out);
    else if (name.endsWith('.test.ts')) out.push(relative(root, p));
  }
  return out;
}

if (build) {
  const b = spawnSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
  if (b.status !== 0) process.exit(b.status ?? 1);
}

const skippedFile = join(root, 'test-output', 'skipped-prerequisites.txt');
rmSync(skippedFile, { force: true });

let files = [...findTests(join(root, 'src')), ...findTests(join(root, 'test'))].sort();
if (filters.length) files = files.filter((f) => filters.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}

const res = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=2', '--test-timeout=300000', ...files],
  { cwd: root, stdio: 'inherit', env: { ...process.env, NODE_NO_WARNINGS: '1' } },
);

if (existsSync(skippedFile)) {
  const lines = [...new Set(readFileSync(skippedFile, 'utf8').split('\n').filter(Boolean))];
  console.error(`\n${'*'.repeat(78)}\n* ${lines.length} prerequisite(s) missing; their tests were SKIPPED:`);
  for (const l of lines) console.error(`*   ${l}`);
  console.error(`${'*'.repeat(78)}\n`);
}
process.exit(res.status ?? 1);
