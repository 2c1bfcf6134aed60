// Host keys made by node:crypto, checked by the real OpenSSH tools: ssh-keygen must derive the
// same public key and fingerprint from our files, and sshd must load them as host keys.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { prereq, which } from '../../test/helpers/prereq.js';
import { generateHostKeys, parseAuthorizedKey, publicKeyFingerprint, type HostKey } from './ssh-keys.js';

const dir = mkdtempSync(join(tmpdir(), 'drover-ssh-keys-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const keys = generateHostKeys('root@drover-test');
const keygen = which('ssh-keygen');
const sshd = which('sshd', ['/usr/sbin', '/usr/local/sbin']);

function writeKey(k: HostKey, into = dir): string {
  const file = join(into, k.file);
  writeFileSync(file, k.privateKey, { mode: 0o600 });
  chmodSync(file, 0o600);
  writeFileSync(`${file}.pub`, k.publicKey);
  return file;
}

/** "3072 SHA256:abc… comment (RSA)" → "SHA256:abc…" */
const fingerprintOf = (listing: string) => listing.split(' ')[1];

describe('SSH host keys', () => {
  it('makes one key of each default type with the usual file names and .pub lines', () => {
    assert.deepEqual(keys.map((k) => [k.type, k.file]), [['ed25519', 'ssh_host_ed25519_key'], ['ecdsa', 'ssh_host_ecdsa_key'], ['rsa', 'ssh_host_rsa_key']]);
    for (const k of keys) {
      assert.match(k.privateKey, /^-----BEGIN OPENSSH PRIVATE KEY-----\n([A-Za-z0-9+/=]{1,70}\n)+-----END OPENSSH PRIVATE KEY-----\n$/);
      assert.match(k.publicKey, /^(ssh-ed25519|ecdsa-sha2-nistp256|ssh-rsa) AAAA[A-Za-z0-9+/=]+ root@drover-test\n$/);
      assert.match(k.fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
      assert.equal(publicKeyFingerprint(k.publicKey), k.fingerprint);
    }
    assert.deepEqual(generateHostKeys('x', ['ed25519', 'ed25519']).map((k) => k.type), ['ed25519']);
    assert.throws(() => generateHostKeys('a\nb', ['ed25519']), { code: 'DROVER_VALIDATION' });
  });

  it('writes the private section as PROTOCOL.key says: no cipher, one key, matching check ints, padding 1,2,3…', () => {
    for (const k of keys) {
      const raw = Buffer.from(k.privateKey.split('\n').filter((l) => !l.startsWith('-----')).join(''), 'base64');
      assert.equal(raw.subarray(0, 15).toString('latin1'), 'openssh-key-v1\0');
      let off = 15;
      const str = () => {
        const n = raw.readUInt32BE(off);
        const s = raw.subarray(off + 4, off + 4 + n);
        off += 4 + n;
        return s;
      };
      assert.equal(str().toString(), 'none');
      assert.equal(str().toString(), 'none');
      assert.equal(str().length, 0);
      assert.equal(raw.readUInt32BE(off), 1);
      off += 4;
      const pub = str();
      assert.equal(pub.toString('base64'), k.publicKey.split(' ')[1]);
      const priv = str();
      assert.equal(off, raw.length);
      assert.equal(priv.length % 8, 0);
      assert.equal(priv.readUInt32BE(0), priv.readUInt32BE(4));
      // The padding is 1,2,3… right after the comment, which ends the key fields.
      const tail = priv.subarray(priv.lastIndexOf(Buffer.from('root@drover-test')) + 'root@drover-test'.length);
      assert.deepEqual([...tail], tail.length ? Array.from({ length: tail.length }, (_, i) => i + 1) : []);
    }
    const [a, b] = [generateHostKeys('c', ['ed25519'])[0]!, generateHostKeys('c', ['ed25519'])[0]!];
    assert.notEqual(a.privateKey, b.privateKey);
  });

  describe('read by ssh-keygen', prereq('ssh-keygen', keygen !== null, 'openssh-client'), () => {
    for (const k of keys) {
      it(`${k.type}: ssh-keygen -y derives our public key and -l prints our fingerprint`, () => {
        const file = writeKey(k);
        const derived = execFileSync('ssh-keygen', ['-y', '-f', file], { encoding: 'utf8' });
        // Comment included: it lives in the private file, as in files ssh-keygen writes.
        assert.equal(derived, k.publicKey);
        const listing = execFileSync('ssh-keygen', ['-l', '-f', `${file}.pub`], { encoding: 'utf8' });
        assert.equal(fingerprintOf(listing), k.fingerprint);
        assert.match(listing, k.type === 'rsa' ? /^3072 .* \(RSA\)$/m : k.type === 'ecdsa' ? /^256 .* \(ECDSA\)$/m : /^256 .* \(ED25519\)$/m);
        // The private file itself, too (ssh-keygen reads the public half out of it).
        assert.equal(fingerprintOf(execFileSync('ssh-keygen', ['-l', '-f', file], { encoding: 'utf8' })), k.fingerprint);
      });
    }
    it('an empty comment leaves no trailing blank, as ssh-keygen writes it', () => {
      const k = generateHostKeys('', ['ed25519'])[0]!;
      const file = writeKey({ ...k, file: 'no_comment_key' });
      assert.equal(execFileSync('ssh-keygen', ['-y', '-f', file], { encoding: 'utf8' }), k.publicKey);
      assert.match(k.publicKey, /^ssh-ed25519 \S+\n$/);
    });
  });

  describe('loaded by sshd', prereq('sshd', sshd !== null, 'openssh-server'), () => {
    // As root, sshd -t insists on its privilege separation user and /run/sshd, which only a
    // started service creates; run it as nobody instead, which skips those checks (not the key's).
    const asRoot = process.getuid?.() === 0;
    const dropTo = asRoot ? userIds('nobody') : null;

    const check = (file: string) => {
      const args = ['-t', '-f', '/dev/null', '-h', file];
      return dropTo
        ? spawnSync('setpriv', [`--reuid=${dropTo.uid}`, `--regid=${dropTo.gid}`, '--clear-groups', sshd!, ...args], { encoding: 'utf8' })
        : spawnSync(sshd!, args, { encoding: 'utf8' });
    };
    // Its own directory under the temp dir, since nobody cannot enter the 0700 one above.
    const sshdDir = mkdtempSync(join(tmpdir(), 'drover-sshd-'));
    after(() => rmSync(sshdDir, { recursive: true, force: true }));
    if (dropTo) chownSync(sshdDir, dropTo.uid, dropTo.gid);
    const own = (file: string) => {
      if (dropTo) chownSync(file, dropTo.uid, dropTo.gid);
      return file;
    };

    for (const k of keys) {
      it(`${k.type}: sshd -t accepts it as a host key`, () => {
        const file = own(writeKey(k, sshdDir));
        const r = check(file);
        assert.equal(r.status, 0, `sshd -t: ${r.stderr}`);
      });
    }

    it('and refuses a damaged one (so the check above means something)', () => {
      const file = join(sshdDir, 'broken_key');
      writeFileSync(file, keys[0]!.privateKey.replace(/\n[A-Za-z0-9+/]{10}/, '\nAAAAAAAAAA'), { mode: 0o600 });
      const r = check(own(file));
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /no hostkeys available|Unable to load host key/);
    });
  });
});

function userIds(name: string): { uid: number; gid: number } {
  const line = execFileSync('getent', ['passwd', name], { encoding: 'utf8' }).split(':');
  return { uid: Number(line[2]), gid: Number(line[3]) };
}

describe('authorized_keys lines', () => {
  const made: Record<string, string> = {};
  if (keygen) {
    for (const t of ['ed25519', 'ecdsa', 'rsa']) {
      const f = join(dir, `user_${t}`);
      execFileSync('ssh-keygen', ['-q', '-t', t, '-N', '', '-C', `alice@laptop ${t}`, '-f', f]);
      made[t] = readFileSync(`${f}.pub`, 'utf8');
    }
  }

  it('accepts lines ssh-keygen wrote, with and without options, and keeps the comment', prereq('ssh-keygen', keygen !== null, 'openssh-client'), () => {
    for (const [t, line] of Object.entries(made)) {
      const k = parseAuthorizedKey(line);
      assert.ok(k, line);
      assert.equal(k.type, line.split(' ')[0]);
      assert.equal(k.comment, `alice@laptop ${t}`);
      assert.equal(k.key.toString('base64'), line.split(' ')[1]);
      const listing = execFileSync('ssh-keygen', ['-l', '-f', '-'], { input: line, encoding: 'utf8' });
      assert.equal(publicKeyFingerprint(line), fingerprintOf(listing));
      const withOptions = `restrict,command="echo \\"hi there\\", bye",from="10.0.0.0/8,!10.0.0.1",no-pty ${line}`;
      assert.deepEqual(parseAuthorizedKey(withOptions), k);
      assert.deepEqual(parseAuthorizedKey(`  no-agent-forwarding\t${line.trim()}\r\n`), k);
    }
    const bare = made.ed25519!.split(' ').slice(0, 2).join(' ');
    assert.equal(parseAuthorizedKey(bare)?.comment, '');
  });

  it('rejects what sshd would not use', () => {
    const good = keys[0]!.publicKey.trim();
    const [type, b64] = good.split(' ') as [string, string];
    const blob = Buffer.from(b64, 'base64');
    const reenc = (b: Buffer) => `${type} ${b.toString('base64')}`;
    for (const bad of [
      '',
      '# ssh-ed25519 AAAA comment',
      'hello world',
      'ssh-ed25519',
      `${type} not*base64`,
      `${type} ${b64.slice(0, -4)}`, // truncated blob
      `ssh-rsa ${b64}`, // the blob says ssh-ed25519
      `ssh-dss ${b64}`,
      reenc(Buffer.concat([blob, Buffer.from([0])])), // trailing bytes
      reenc(Buffer.concat([blob.subarray(0, 15), Buffer.from([0, 0, 0, 31]), blob.subarray(19, 50)])), // short key
      `bogus-option ${good}`,
      `command=unquoted ${good}`,
      `command="unterminated ${good}`,
      `no-pty,,restrict ${good}`,
      `${good}\nssh-ed25519 AAAA`,
    ]) {
      assert.equal(parseAuthorizedKey(bad), null, JSON.stringify(bad));
    }
    // An ECDSA point that is not on the curve.
    const ec = keys[1]!.publicKey.split(' ');
    const ecBlob = Buffer.from(ec[1]!, 'base64');
    ecBlob[ecBlob.length - 1] = ecBlob[ecBlob.length - 1]! ^ 1;
    assert.equal(parseAuthorizedKey(`${ec[0]} ${ecBlob.toString('base64')}`), null);
    assert.throws(() => publicKeyFingerprint('garbage'), { code: 'DROVER_VALIDATION' });
  });
});
