// Per-device boot tokens. The rendered cmdline.txt must carry the same token on every boot, yet
// tokens are stored only as hashes; so a device's token is derived, HMAC(key, device, generation),
// from a key kept 0600 in the data dir, and its hash is registered as a device-scoped token.
// Bumping the generation (re-image, compromise) replaces it.
import { createHmac, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { newId } from '../domain/ids.js';
import type { Device } from '../domain/records.js';
import { hashToken, TOKEN_PREFIX } from '../security/tokens.js';
import { inTransaction, type ServiceContext } from './context.js';

export class DeviceTokensService {
  private key: Buffer | undefined;
  private readonly known = new Map<string, string>();

  constructor(
    private readonly ctx: ServiceContext,
    private readonly dataDir: string,
  ) {}

  private secretKey(): Buffer {
    if (this.key) return this.key;
    const dir = join(this.dataDir, 'secrets');
    const file = join(dir, 'device-token.key');
    try {
      this.key = readFileSync(file);
    } catch {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const k = randomBytes(32);
      try {
        writeFileSync(file, k, { mode: 0o600, flag: 'wx' });
        this.key = k;
      } catch {
        this.key = readFileSync(file); // another process created it first
      }
      chmodSync(file, 0o600);
    }
    return this.key!;
  }

  private async generation(deviceId: string): Promise<number> {
    return Number((await this.ctx.store.meta.get(`device-token-generation:${deviceId}`)) ?? 0);
  }

  /** The device's boot token, registering its hash on first use. */
  async tokenFor(device: Device): Promise<string> {
    const gen = await this.generation(device.id);
    const cacheKey = `${device.id}:${gen}`;
    const cached = this.known.get(cacheKey);
    if (cached) return cached;
    const mac = createHmac('sha256', this.secretKey()).update(`device-token\0${device.id}\0${gen}`).digest('base64url');
    const secret = `${TOKEN_PREFIX}${mac}`;
    const hash = hashToken(secret);
    if (!(await this.ctx.store.tokens.findByHash(hash))) {
      await inTransaction(this.ctx, async (tx) => {
        if (await tx.tokens.findByHash(hash)) return;
        const token = await tx.tokens.create({
          id: newId('tok'), name: `boot:${device.serial}`, role: 'device', hash, prefix: secret.slice(0, TOKEN_PREFIX.length + 6),
          deviceId: device.id, userId: null, kind: 'device-boot', createdAt: tx.now, expiresAt: null, lastUsedAt: null, revokedAt: null,
        });
        await tx.emit({ type: 'token.created', deviceId: device.id, actor: 'drover', data: { tokenId: token.id, name: token.name, role: 'device' } });
      });
    }
    this.known.set(cacheKey, secret);
    return secret;
  }

  /** Revokes the current boot token; the next render derives a new one. */
  async rotate(device: Device, actor: string): Promise<void> {
    const gen = await this.generation(device.id);
    const old = await this.tokenFor(device);
    await inTransaction(this.ctx, async (tx) => {
      const t = await tx.tokens.findByHash(hashToken(old));
      if (t) await tx.tokens.revoke(t.id, tx.now);
      await tx.meta.set(`device-token-generation:${device.id}`, String(gen + 1));
      await tx.emit({ type: 'token.rotated', deviceId: device.id, actor, data: { generation: gen + 1 } });
    });
  }
}
