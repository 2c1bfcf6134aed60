import type { Kysely } from 'kysely';
import { DroverError } from '../../domain/errors.js';
import type { User } from '../../domain/records.js';
import type { Database, UsersTable } from '../schema.js';
import { isUniqueViolation } from './util.js';

export interface UserWithHash extends User {
  passwordHash: string;
}

export class UsersRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async create(u: Omit<UserWithHash, 'updatedAt'>): Promise<User> {
    try {
      await this.db
        .insertInto('users')
        .values({
          id: u.id,
          username: u.username,
          password_hash: u.passwordHash,
          role: u.role,
          disabled: u.disabled ? 1 : 0,
          created_at: u.createdAt,
          updated_at: u.createdAt,
        })
        .execute();
    } catch (err) {
      if (isUniqueViolation(err)) throw new DroverError('DROVER_USER_EXISTS', `A user named "${u.username}" already exists.`);
      throw err;
    }
    return (await this.get(u.id))!;
  }

  async get(id: string): Promise<User | undefined> {
    const row = await this.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toUser(row);
  }

  async findByUsername(username: string): Promise<UserWithHash | undefined> {
    const row = await this.db.selectFrom('users').selectAll().where('username', '=', username).executeTakeFirst();
    return row && { ...toUser(row), passwordHash: row.password_hash };
  }

  async list(): Promise<User[]> {
    return (await this.db.selectFrom('users').selectAll().orderBy('username').execute()).map(toUser);
  }

  async update(id: string, patch: { role?: User['role']; disabled?: boolean; passwordHash?: string }, now: string): Promise<User> {
    const set: Partial<UsersTable> = { updated_at: now };
    if (patch.role !== undefined) set.role = patch.role;
    if (patch.disabled !== undefined) set.disabled = patch.disabled ? 1 : 0;
    if (patch.passwordHash !== undefined) set.password_hash = patch.passwordHash;
    const res = await this.db.updateTable('users').set(set).where('id', '=', id).executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) throw new DroverError('DROVER_USER_NOT_FOUND');
    return (await this.get(id))!;
  }

  async delete(id: string): Promise<boolean> {
    const res = await this.db.deleteFrom('users').where('id', '=', id).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  async countActiveAdmins(): Promise<number> {
    const row = await this.db
      .selectFrom('users')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('role', '=', 'admin')
      .where('disabled', '=', 0)
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }
}

function toUser(r: UsersTable): User {
  return {
    id: r.id,
    username: r.username,
    role: r.role as User['role'],
    disabled: Boolean(r.disabled),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}
