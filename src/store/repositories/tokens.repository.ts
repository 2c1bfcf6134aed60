import type { Kysely } from 'kysely';
import type { Token, TokenKind } from '../../domain/records.js';
import type { Role } from '../../domain/roles.js';
import type { Database, TokensTable } from '../schema.js';

export interface TokenWithHash extends Token {
  hash: string;
}

export class TokensRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async create(t: TokenWithHash): Promise<Token> {
    await this.db
      .insertInto('tokens')
      .values({
        id: t.id,
        name: t.name,
        role: t.role,
        hash: t.hash,
        prefix: t.prefix,
        device_id: t.deviceId,
        user_id: t.userId,
        kind: t.kind,
        created_at: t.createdAt,
        expires_at: t.expiresAt,
        last_used_at: t.lastUsedAt,
        revoked_at: t.revokedAt,
      })
      .execute();
    return (await this.get(t.id))!;
  }

  async get(id: string): Promise<Token | undefined> {
    const row = await this.db.selectFrom('tokens').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toToken(row);
  }

  async findByHash(hash: string): Promise<Token | undefined> {
    const row = await this.db.selectFrom('tokens').selectAll().where('hash', '=', hash).executeTakeFirst();
    return row && toToken(row);
  }

  /** Tokens people manage; session tokens of logged-in dashboard users are included only if asked. */
  async list(opts: { includeSessions?: boolean; includeRevoked?: boolean } = {}): Promise<Token[]> {
    let q = this.db.selectFrom('tokens').selectAll().orderBy('created_at').orderBy('id');
    if (!opts.includeSessions) q = q.where('kind', '!=', 'session');
    if (!opts.includeRevoked) q = q.where('revoked_at', 'is', null);
    return (await q.execute()).map(toToken);
  }

  async revoke(id: string, now: string): Promise<boolean> {
    const res = await this.db.updateTable('tokens').set({ revoked_at: now }).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  async revokeForUser(userId: string, now: string): Promise<void> {
    await this.db.updateTable('tokens').set({ revoked_at: now }).where('user_id', '=', userId).where('revoked_at', 'is', null).execute();
  }

  async touch(id: string, now: string): Promise<void> {
    await this.db.updateTable('tokens').set({ last_used_at: now }).where('id', '=', id).execute();
  }

  /** Live tokens of a role at a time: not revoked, not expired. */
  async countActive(role: Role, now: string): Promise<number> {
    const row = await this.db
      .selectFrom('tokens')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('role', '=', role)
      .where('revoked_at', 'is', null)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  async countAll(): Promise<number> {
    const row = await this.db.selectFrom('tokens').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst();
    return Number(row?.n ?? 0);
  }
}

function toToken(r: TokensTable): Token {
  return {
    id: r.id,
    name: r.name,
    role: r.role as Role,
    prefix: r.prefix,
    deviceId: r.device_id,
    userId: r.user_id,
    kind: r.kind as TokenKind,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    lastUsedAt: r.last_used_at,
    revokedAt: r.revoked_at,
  };
}
