import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AuthFailureLimiter } from './auth-limiter.js';
import { hashPassword, verifyPassword } from './password.js';
import { generateToken, hashToken, looksLikeToken } from './tokens.js';

describe('passwords', () => {
  it('hashes with scrypt, salts, verifies, and rejects wrong or malformed hashes', async () => {
    const h1 = await hashPassword('correct horse battery');
    const h2 = await hashPassword('correct horse battery');
    assert.match(h1, /^\$scrypt\$ln=15,r=8,p=3\$/);
    assert.notEqual(h1, h2, 'salted');
    assert.equal(await verifyPassword('correct horse battery', h1), true);
    assert.equal(await verifyPassword('correct horse batterY', h1), false);
    assert.equal(await verifyPassword('x', 'plain'), false);
    assert.equal(await verifyPassword('x', '$scrypt$ln=30,r=8,p=1$aa$bb'), false, 'absurd cost parameters are refused');
  });
});

describe('tokens', () => {
  it('are 256-bit, prefixed, and stored only as a hash', () => {
    const t = generateToken();
    assert.ok(looksLikeToken(t.secret));
    assert.equal(t.hash, hashToken(t.secret));
    assert.ok(!t.hash.includes(t.secret));
    assert.ok(t.secret.startsWith(t.prefix));
    assert.equal(looksLikeToken('drv_short'), false);
    assert.notEqual(generateToken().secret, t.secret);
  });
});

describe('auth failure limiter', () => {
  it('blocks an address after the limit until its window ends, per address', () => {
    let now = 0;
    const l = new AuthFailureLimiter(3, 60_000, () => now);
    for (let i = 0; i < 3; i++) {
      assert.equal(l.retryAfter('a'), 0);
      l.recordFailure('a');
    }
    assert.equal(l.retryAfter('a'), 60);
    assert.equal(l.retryAfter('b'), 0);
    now = 30_000;
    assert.equal(l.retryAfter('a'), 30);
    now = 60_000;
    assert.equal(l.retryAfter('a'), 0);
  });

  it('stays bounded under a spray of addresses', () => {
    const l = new AuthFailureLimiter(3, 60_000, () => 0, 100);
    for (let i = 0; i < 1000; i++) l.recordFailure(`10.0.${i >> 8}.${i & 255}`);
    assert.ok((l as unknown as { failures: Map<string, unknown> }).failures.size <= 100);
  });
});
