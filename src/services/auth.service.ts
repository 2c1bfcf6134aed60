// Tokens, users and logins: who is calling, and the records that decide it.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DroverError } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import type { Token, User } from '../domain/records.js';
import { PERSON_ROLES, type PersonRole, type Principal, type Role } from '../domain/roles.js';
import { dummyHash, hashPassword, verifyPassword } from '../security/password.js';
import { generateToken, hashToken, looksLikeToken } from '../security/tokens.js';
import { inTransaction, type ServiceContext, type Tx } from './context.js';
import { resolveDevice } from './devices.service.js';

export const MIN_PASSWORD_LENGTH = 12;
const BOOTSTRAP_KEY = 'bootstrap.completed';
/** Writing last_used_at on every request would turn reads into writes; once a minute is enough. */
const TOUCH_INTERVAL_MS = 60_000;

export interface CreateTokenInput {
  name: string;
  role: Role;
  deviceId?: string | undefined;
  /** Lifetime in seconds; unset = no expiry. */
  ttl?: number | undefined;
}

export class AuthService {
  private readonly lastTouched = new Map<string, number>();

  constructor(
    private readonly ctx: ServiceContext,
    private readonly sessionTtlSeconds: number,
  ) {}

  /** The principal behind a bearer secret, or a coded 401. */
  async authenticate(secret: string): Promise<Principal> {
    if (!looksLikeToken(secret)) throw new DroverError('DROVER_AUTH_INVALID');
    const token = await this.ctx.store.tokens.findByHash(hashToken(secret));
    const now = this.ctx.clock();
    if (!token || token.revokedAt || (token.expiresAt && token.expiresAt <= now.toISOString())) {
      throw new DroverError('DROVER_AUTH_INVALID');
    }
    const last = this.lastTouched.get(token.id) ?? 0;
    if (now.getTime() - last > TOUCH_INTERVAL_MS) {
      this.lastTouched.set(token.id, now.getTime());
      await this.ctx.store.tokens.touch(token.id, now.toISOString());
    }
    return { tokenId: token.id, role: token.role, deviceId: token.deviceId, userId: token.userId, name: token.name };
  }

  /**
   * On the very first start (empty database) creates an admin token, writes it to
   * DATA_DIR/initial-admin-token (0600) and returns it so the caller can print it once.
   */
  async bootstrap(dataDir: string): Promise<string | null> {
    return inTransaction(this.ctx, async (tx) => {
      if (await tx.meta.get(BOOTSTRAP_KEY)) return null;
      const { secret, hash, prefix } = generateToken();
      const token = await tx.tokens.create({
        id: newId('tok'), name: 'initial-admin', role: 'admin', hash, prefix, deviceId: null, userId: null,
        kind: 'bootstrap', createdAt: tx.now, expiresAt: null, lastUsedAt: null, revokedAt: null,
      });
      await tx.meta.set(BOOTSTRAP_KEY, tx.now);
      await tx.emit({ type: 'token.created', deviceId: null, actor: 'drover', data: { tokenId: token.id, name: token.name, role: 'admin' } });
      // Written inside the transaction: if the file cannot be written, no token exists either.
      const path = join(dataDir, 'initial-admin-token');
      writeFileSync(path, `${secret}\n`, { mode: 0o600, flag: 'w' });
      return secret;
    });
  }

  async createToken(input: CreateTokenInput, actor: string): Promise<{ token: Token; secret: string }> {
    const name = input.name.trim();
    if (!name || name.length > 100) throw new DroverError('DROVER_VALIDATION', 'Token name must be 1-100 characters.');
    if ((input.role === 'device') !== Boolean(input.deviceId)) throw new DroverError('DROVER_TOKEN_DEVICE_REQUIRED');
    return inTransaction(this.ctx, async (tx) => {
      const device = input.deviceId ? await resolveDevice(tx, input.deviceId) : null;
      const { secret, hash, prefix } = generateToken();
      const expiresAt = input.ttl ? new Date(Date.parse(tx.now) + input.ttl * 1000).toISOString() : null;
      const token = await tx.tokens.create({
        id: newId('tok'), name, role: input.role, hash, prefix, deviceId: device?.id ?? null, userId: null,
        kind: 'api', createdAt: tx.now, expiresAt, lastUsedAt: null, revokedAt: null,
      });
      await tx.emit({ type: 'token.created', deviceId: device?.id ?? null, actor, data: { tokenId: token.id, name, role: input.role } });
      return { token, secret };
    });
  }

  listTokens(opts: { includeRevoked?: boolean; includeSessions?: boolean } = {}): Promise<Token[]> {
    return this.ctx.store.tokens.list(opts);
  }

  revokeToken(id: string, actor: string): Promise<Token> {
    return inTransaction(this.ctx, async (tx) => {
      const token = await tx.tokens.get(id);
      if (!token) throw new DroverError('DROVER_TOKEN_NOT_FOUND', `No token has id "${id.slice(0, 64)}".`);
      if (!token.revokedAt) {
        if (token.role === 'admin' && !token.userId && (await tx.tokens.countActive('admin', tx.now)) <= 1 && (await tx.users.countActiveAdmins()) === 0) {
          throw new DroverError('DROVER_LAST_ADMIN', 'This is the last admin token and no admin user exists.');
        }
        await tx.tokens.revoke(token.id, tx.now);
        await tx.emit({ type: 'token.revoked', deviceId: token.deviceId, actor, data: { tokenId: token.id, name: token.name } });
      }
      return (await tx.tokens.get(token.id))!;
    });
  }

  async login(username: string, password: string): Promise<{ token: string; expiresAt: string; user: User }> {
    const user = await this.ctx.store.users.findByUsername(username.trim().toLowerCase());
    const ok = await verifyPassword(password, user?.passwordHash ?? (await dummyHash()));
    if (!user || !ok || user.disabled) throw new DroverError('DROVER_LOGIN_FAILED');
    return inTransaction(this.ctx, async (tx) => {
      const { secret, hash, prefix } = generateToken();
      const expiresAt = new Date(Date.parse(tx.now) + this.sessionTtlSeconds * 1000).toISOString();
      await tx.tokens.create({
        id: newId('tok'), name: `session:${user.username}`, role: user.role, hash, prefix, deviceId: null, userId: user.id,
        kind: 'session', createdAt: tx.now, expiresAt, lastUsedAt: null, revokedAt: null,
      });
      await tx.emit({ type: 'user.login', deviceId: null, actor: `user:${user.username}`, data: { userId: user.id } });
      const { passwordHash: _omit, ...publicUser } = user;
      return { token: secret, expiresAt, user: publicUser };
    });
  }

  /** Ends a dashboard session. API tokens are revoked through revokeToken (with its last-admin check). */
  async logout(principal: Principal): Promise<boolean> {
    const token = await this.ctx.store.tokens.get(principal.tokenId);
    if (token?.kind !== 'session') return false;
    return this.ctx.store.tokens.revoke(principal.tokenId, this.ctx.clock().toISOString());
  }

  // --- users -----------------------------------------------------------------------------

  listUsers(): Promise<User[]> {
    return this.ctx.store.users.list();
  }

  async createUser(input: { username: string; password: string; role: PersonRole }, actor: string): Promise<User> {
    const username = checkUsername(input.username);
    checkPassword(input.password);
    const passwordHash = await hashPassword(input.password);
    return inTransaction(this.ctx, async (tx) => {
      const user = await tx.users.create({ id: newId('usr'), username, passwordHash, role: input.role, disabled: false, createdAt: tx.now });
      await tx.emit({ type: 'user.created', deviceId: null, actor, data: { userId: user.id, username, role: user.role } });
      return user;
    });
  }

  async updateUser(ref: string, input: { password?: string | undefined; role?: PersonRole | undefined; disabled?: boolean | undefined }, actor: string): Promise<User> {
    if (input.password !== undefined) checkPassword(input.password);
    if (input.role !== undefined && !PERSON_ROLES.includes(input.role)) throw new DroverError('DROVER_VALIDATION', 'Unknown role.');
    const passwordHash = input.password !== undefined ? await hashPassword(input.password) : undefined;
    return inTransaction(this.ctx, async (tx) => {
      const current = await this.resolveUser(tx, ref);
      const user = await tx.users.update(current.id, { passwordHash, role: input.role, disabled: input.disabled }, tx.now);
      if (current.role === 'admin' && !current.disabled && (user.role !== 'admin' || user.disabled)) await this.ensureAdminLeft(tx);
      // A changed password, role or disabled flag ends existing sessions.
      await tx.tokens.revokeForUser(user.id, tx.now);
      const fields = Object.keys(input).filter((k) => (input as Record<string, unknown>)[k] !== undefined);
      await tx.emit({ type: 'user.updated', deviceId: null, actor, data: { userId: user.id, fields } });
      return user;
    });
  }

  deleteUser(ref: string, actor: string): Promise<void> {
    return inTransaction(this.ctx, async (tx) => {
      const user = await this.resolveUser(tx, ref);
      await tx.users.delete(user.id);
      if (user.role === 'admin') await this.ensureAdminLeft(tx);
      await tx.emit({ type: 'user.deleted', deviceId: null, actor, data: { userId: user.id, username: user.username } });
    });
  }

  private async resolveUser(tx: Tx, ref: string): Promise<User> {
    const user = (await tx.users.get(ref)) ?? (await tx.users.findByUsername(ref.toLowerCase()));
    if (!user) throw new DroverError('DROVER_USER_NOT_FOUND', `No user matches "${ref.slice(0, 64)}".`);
    const { passwordHash: _omit, ...u } = user as User & { passwordHash?: string };
    return u;
  }

  private async ensureAdminLeft(tx: Tx): Promise<void> {
    const adminTokens = (await tx.tokens.list()).filter((t) => t.role === 'admin' && !t.userId && (!t.expiresAt || t.expiresAt > tx.now)).length;
    if ((await tx.users.countActiveAdmins()) === 0 && adminTokens === 0) {
      throw new DroverError('DROVER_LAST_ADMIN');
    }
  }
}

function checkUsername(name: string): string {
  const u = name.trim().toLowerCase();
  if (!/^[a-z0-9][a-z0-9._-]{0,62}$/.test(u)) {
    throw new DroverError('DROVER_VALIDATION', 'User names are 1-63 characters of a-z, 0-9, ".", "_", "-".');
  }
  return u;
}

function checkPassword(password: string): void {
  if (password.length < MIN_PASSWORD_LENGTH) throw new DroverError('DROVER_WEAK_PASSWORD');
  if (password.length > 1024) throw new DroverError('DROVER_VALIDATION', 'Password is longer than 1024 characters.');
}
