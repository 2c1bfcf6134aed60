import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { configMarkdown, errorsMarkdown } from '../../scripts/gen-docs.js';
import { SETTINGS } from '../config/settings.js';
import { DroverError, ERRORS } from './errors.js';

const root = new URL('../../', import.meta.url).pathname;

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (/\.(ts|tsx)$/.test(name)) out.push(p);
  }
  return out;
}

describe('error catalogue', () => {
  it('docs/errors.md documents every code (and is what scripts/gen-docs.ts generates)', () => {
    const doc = readFileSync(join(root, 'docs/errors.md'), 'utf8');
    for (const code of Object.keys(ERRORS)) assert.ok(doc.includes(`\`${code}\``), `${code} is missing from docs/errors.md`);
    assert.equal(doc, errorsMarkdown(), 'docs/errors.md is stale: run `npm run docs`');
  });

  it('every code is DROVER_ prefixed, with a message and a fix; every code the code mentions exists', () => {
    for (const [code, e] of Object.entries(ERRORS)) {
      assert.match(code, /^DROVER_[A-Z_]+$/);
      assert.ok(e.message.length > 5 && e.fix.length > 5, code);
      assert.ok(e.status >= 400 && e.status < 600, code);
    }
    const known = new Set(Object.keys(ERRORS));
    // Environment variables share the prefix; they are not error codes.
    const envVars = new Set<string>([...SETTINGS.map((x) => x.env), 'DROVER_SERVER', 'DROVER_TOKEN', 'DROVER_CONFIG']);
    for (const file of [...sources(join(root, 'src')), ...sources(join(root, 'web/src'))]) {
      for (const m of readFileSync(file, 'utf8').matchAll(/'(DROVER_[A-Z_]*[A-Z])'/g)) {
        if (!envVars.has(m[1]!)) assert.ok(known.has(m[1]!), `${file} uses unknown code ${m[1]}`);
      }
    }
  });

  it('DroverError carries status and fix from the catalogue', () => {
    const e = new DroverError('DROVER_DEVICE_NOT_FOUND', 'No device "x".');
    assert.equal(e.status, 404);
    assert.equal(e.message, 'No device "x".');
    assert.equal(e.fix, ERRORS.DROVER_DEVICE_NOT_FOUND.fix);
  });

  it('docs/config.md is what scripts/gen-docs.ts generates', () => {
    assert.equal(readFileSync(join(root, 'docs/config.md'), 'utf8'), configMarkdown(), 'docs/config.md is stale: run `npm run docs`');
  });
});
