// The controller's JSON API over real HTTP with a bearer token, for end-to-end tests: a non-2xx
// answer fails the test with the method, path, status and body.
import assert from 'node:assert/strict';

export function httpApi(baseUrl: () => string, token: () => string): (method: string, path: string, body?: unknown) => Promise<any> {
  return async (method, path, body) => {
    const res = await fetch(`${baseUrl()}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${token()}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    assert.ok(res.ok, `${method} ${path} → ${res.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  };
}
