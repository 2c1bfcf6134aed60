// SSH host keys made in-process with node:crypto, so the controller can seed a node's root
// filesystem with stable host keys (and know their fingerprints before the node first boots)
// without ssh-keygen installed. All three types are written in OpenSSH's own "openssh-key-v1"
// format: it is the only format OpenSSH reads Ed25519 private keys from, and using it for ECDSA
// and RSA too keeps one writer and the comment inside the key, as ssh-keygen does.
import { createHash, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { DroverError } from '../domain/errors.js';

export type HostKeyType = 'ed25519' | 'ecdsa' | 'rsa';

export interface HostKey {
  type: HostKeyType;
  /** File name in /etc/ssh, e.g. "ssh_host_ed25519_key" (the public key goes in FILE.pub). */
  file: string;
  /** Unencrypted OpenSSH private key file text; write it with mode 0600. */
  privateKey: string;
  /** The .pub file: "ssh-ed25519 AAAA… comment\n". */
  publicKey: string;
  /** "SHA256:…" as `ssh-keygen -l` prints it. */
  fingerprint: string;
}

const DEFAULT_TYPES: HostKeyType[] = ['ed25519', 'ecdsa', 'rsa'];
const RSA_BITS = 3072;

export function generateHostKeys(comment: string, types: HostKeyType[] = DEFAULT_TYPES): HostKey[] {
  // A line break would split the .pub file into two lines, the second one garbage.
  if (/[\0-\x1f\x7f]/.test(comment)) throw new DroverError('DROVER_VALIDATION', 'An SSH key comment must not contain control characters or line breaks.');
  return [...new Set(types)].map((type) => {
    const { publicBlob, privateFields } = generate(type);
    const sshName = blobType(publicBlob);
    return {
      type,
      file: `ssh_host_${type}_key`,
      privateKey: opensshPrivateKey(publicBlob, privateFields, comment),
      publicKey: `${sshName} ${publicBlob.toString('base64')}${comment ? ` ${comment}` : ''}\n`,
      fingerprint: fingerprint(publicBlob),
    };
  });
}

export function publicKeyFingerprint(publicKeyLine: string): string {
  const k = parseAuthorizedKey(publicKeyLine);
  if (!k) throw new DroverError('DROVER_VALIDATION', 'Not an SSH public key line ("TYPE BASE64 [COMMENT]", as in a .pub file or authorized_keys).');
  return fingerprint(k.key);
}

const fingerprint = (blob: Buffer) => `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;

// --- generation ----------------------------------------------------------------------------

function generate(type: HostKeyType): { publicBlob: Buffer; privateFields: Buffer } {
  switch (type) {
    case 'ed25519': {
      const { privateKey } = generateKeyPairSync('ed25519');
      const j = jwk(privateKey);
      const pub = j('x');
      const seed = j('d');
      const publicBlob = new Writer().string('ssh-ed25519').string(pub).done();
      // OpenSSH keeps the 64-byte "secret key" of the reference implementation: seed then public key.
      const privateFields = new Writer().string('ssh-ed25519').string(pub).string(Buffer.concat([seed, pub])).done();
      return { publicBlob, privateFields };
    }
    case 'ecdsa': {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const j = jwk(privateKey);
      const q = Buffer.concat([Buffer.from([4]), j('x'), j('y')]);
      const publicBlob = new Writer().string('ecdsa-sha2-nistp256').string('nistp256').string(q).done();
      const privateFields = new Writer().string('ecdsa-sha2-nistp256').string('nistp256').string(q).mpint(j('d')).done();
      return { publicBlob, privateFields };
    }
    case 'rsa': {
      const { privateKey } = generateKeyPairSync('rsa', { modulusLength: RSA_BITS, publicExponent: 65537 });
      const j = jwk(privateKey);
      const publicBlob = new Writer().string('ssh-rsa').mpint(j('e')).mpint(j('n')).done();
      // OpenSSH's order, which is not PKCS#1's: n e d iqmp p q.
      const privateFields = new Writer().string('ssh-rsa').mpint(j('n')).mpint(j('e')).mpint(j('d')).mpint(j('qi')).mpint(j('p')).mpint(j('q')).done();
      return { publicBlob, privateFields };
    }
    default:
      throw new DroverError('DROVER_VALIDATION', `Unknown SSH host key type "${String(type)}" (use ed25519, ecdsa or rsa).`);
  }
}

function jwk(key: KeyObject): (field: string) => Buffer {
  const j = key.export({ format: 'jwk' }) as Record<string, unknown>;
  return (field) => {
    const v = j[field];
    if (typeof v !== 'string') throw new Error(`node:crypto exported a key without JWK field "${field}"`);
    return Buffer.from(v, 'base64url');
  };
}

/** PROTOCOL.key: magic, cipher/kdf "none", one public key, then the private section padded to the cipher block size (8). */
function opensshPrivateKey(publicBlob: Buffer, privateFields: Buffer, comment: string): string {
  const check = randomBytes(4);
  const section = Buffer.concat([check, check, privateFields, new Writer().string(comment).done()]);
  const padLen = (8 - (section.length % 8)) % 8;
  const padding = Buffer.from(Array.from({ length: padLen }, (_, i) => i + 1));
  const body = Buffer.concat([
    Buffer.from('openssh-key-v1\0', 'latin1'),
    new Writer().string('none').string('none').string(Buffer.alloc(0)).u32(1).string(publicBlob).string(Buffer.concat([section, padding])).done(),
  ]);
  const b64 = body.toString('base64').replace(/.{70}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${b64}\n-----END OPENSSH PRIVATE KEY-----\n`;
}

/** RFC 4251 wire encoding. */
class Writer {
  private parts: Buffer[] = [];
  u32(n: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    this.parts.push(b);
    return this;
  }
  string(s: string | Buffer): this {
    const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
    this.u32(b.length);
    this.parts.push(b);
    return this;
  }
  /** A non-negative integer from unsigned big-endian bytes: minimal, with a 0 byte where the top bit would read as a sign. */
  mpint(unsigned: Buffer): this {
    let i = 0;
    while (i < unsigned.length && unsigned[i] === 0) i++;
    const v = unsigned.subarray(i);
    return this.string(v.length > 0 && v[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), v]) : v);
  }
  done(): Buffer {
    return Buffer.concat(this.parts);
  }
}

function blobType(blob: Buffer): string {
  return new Reader(blob).string().toString('latin1');
}

// --- authorized_keys -----------------------------------------------------------------------

class Malformed extends Error {}

class Reader {
  private off = 0;
  constructor(private readonly b: Buffer) {}
  string(): Buffer {
    if (this.off + 4 > this.b.length) throw new Malformed();
    const n = this.b.readUInt32BE(this.off);
    if (this.off + 4 + n > this.b.length) throw new Malformed();
    const s = this.b.subarray(this.off + 4, this.off + 4 + n);
    this.off += 4 + n;
    return s;
  }
  text(): string {
    return this.string().toString('latin1');
  }
  /** A positive mpint (no sign bit, no needless leading zero), as unsigned bytes. */
  positive(): Buffer {
    const s = this.string();
    if (s.length === 0 || s[0]! & 0x80 || (s[0] === 0 && (s.length === 1 || !(s[1]! & 0x80)))) throw new Malformed();
    return s[0] === 0 ? s.subarray(1) : s;
  }
  end(): void {
    if (this.off !== this.b.length) throw new Malformed();
  }
}

const EC_CURVES: Record<string, { crv: string; pointLen: number }> = {
  nistp256: { crv: 'P-256', pointLen: 65 },
  nistp384: { crv: 'P-384', pointLen: 97 },
  nistp521: { crv: 'P-521', pointLen: 133 },
};

/** Key types sshd accepts in authorized_keys by default (DSA is off since OpenSSH 9.0; certificates are not user keys). */
const KEY_TYPES = new Set([
  'ssh-ed25519',
  'ssh-rsa',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
]);

/** Options sshd knows (sshauthopt_parse); it refuses a line with any other, so we do too. */
const FLAG_OPTIONS = new Set(['agent-forwarding', 'cert-authority', 'no-agent-forwarding', 'no-port-forwarding', 'no-pty', 'no-touch-required', 'no-user-rc', 'no-x11-forwarding', 'port-forwarding', 'pty', 'restrict', 'touch-required', 'user-rc', 'verify-required', 'x11-forwarding']);
const VALUE_OPTIONS = new Set(['command', 'environment', 'expiry-time', 'from', 'permitlisten', 'permitopen', 'principals', 'tunnel']);

/**
 * One authorized_keys (or .pub) line: optional options, key type, base64 key blob, optional
 * comment. Returns the type, the decoded blob and the comment, or null when sshd would not use
 * the line: a blank or # line, unknown options, an unknown type, bad base64, or a blob that does
 * not parse as that type's key.
 */
export function parseAuthorizedKey(line: string): { type: string; key: Buffer; comment: string } | null {
  const s = line.replace(/[\r\n]+$/, '').replace(/^[ \t]+/, '');
  if (s === '' || s.startsWith('#') || /[\r\n\0]/.test(s)) return null;
  let rest = s;
  const first = /^\S+/.exec(s)![0];
  if (!KEY_TYPES.has(first)) {
    const optEnd = optionsEnd(s);
    if (optEnd === null || !validOptions(s.slice(0, optEnd))) return null;
    rest = s.slice(optEnd).replace(/^[ \t]+/, '');
  }
  const m = /^(\S+)[ \t]+(\S+)(?:[ \t]+(.*))?$/.exec(rest);
  if (!m) return null;
  const type = m[1]!;
  const b64 = m[2]!;
  if (!KEY_TYPES.has(type) || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) return null;
  const key = Buffer.from(b64, 'base64');
  if (key.toString('base64') !== b64) return null;
  try {
    checkBlob(type, key);
  } catch (e) {
    if (e instanceof Malformed) return null;
    throw e;
  }
  return { type, key, comment: (m[3] ?? '').trim() };
}

/** Where the options field ends: the first blank outside double quotes (inside them \" is a quote). */
function optionsEnd(s: string): number | null {
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quoted && c === '\\' && s[i + 1] === '"') i++;
    else if (c === '"') quoted = !quoted;
    else if (!quoted && (c === ' ' || c === '\t')) return i;
  }
  return null;
}

function validOptions(opts: string): boolean {
  let i = 0;
  while (i < opts.length) {
    const name = /^[A-Za-z0-9-]+/.exec(opts.slice(i))?.[0];
    if (!name) return false;
    i += name.length;
    const lower = name.toLowerCase();
    if (opts[i] === '=') {
      if (!VALUE_OPTIONS.has(lower) || opts[i + 1] !== '"') return false;
      i += 2;
      while (i < opts.length && opts[i] !== '"') i += opts[i] === '\\' && opts[i + 1] === '"' ? 2 : 1;
      if (i >= opts.length) return false;
      i++;
    } else if (!FLAG_OPTIONS.has(lower)) {
      return false;
    }
    if (i === opts.length) return true;
    if (opts[i] !== ',') return false;
    i++;
  }
  return false;
}

function checkBlob(type: string, blob: Buffer): void {
  const r = new Reader(blob);
  if (r.text() !== type) throw new Malformed();
  if (type === 'ssh-ed25519' || type === 'sk-ssh-ed25519@openssh.com') {
    if (r.string().length !== 32) throw new Malformed();
  } else if (type === 'ssh-rsa') {
    r.positive();
    const n = r.positive();
    // sshd refuses RSA keys under 1024 bits (SSH_RSA_MINIMUM_MODULUS_SIZE).
    if (n.length * 8 - Math.clz32(n[0]!) + 24 < 1024) throw new Malformed();
  } else {
    const curveName = r.text();
    const curve = EC_CURVES[curveName];
    if (!curve || !type.includes(`-${curveName}`)) throw new Malformed();
    const q = r.string();
    if (q.length !== curve.pointLen || q[0] !== 4) throw new Malformed();
    onCurve(curve.crv, q);
  }
  if (type.startsWith('sk-')) r.string(); // the FIDO application, e.g. "ssh:"
  r.end();
}

function onCurve(crv: string, q: Buffer): void {
  const half = (q.length - 1) / 2;
  try {
    createPublicKey({ key: { kty: 'EC', crv, x: q.subarray(1, 1 + half).toString('base64url'), y: q.subarray(1 + half).toString('base64url') }, format: 'jwk' });
  } catch {
    throw new Malformed();
  }
}
