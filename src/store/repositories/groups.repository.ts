import type { Kysely } from 'kysely';
import type { BootMode } from '../../domain/device.js';
import { DroverError } from '../../domain/errors.js';
import type { Group } from '../../domain/records.js';
import type { Database, GroupsTable } from '../schema.js';
import { isUniqueViolation, parseJson } from './util.js';

export type GroupPatch = Partial<Pick<Group, 'name' | 'description' | 'imageId' | 'bootMode' | 'settings' | 'policy'>>;

export class GroupsRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async create(g: Omit<Group, 'updatedAt'>): Promise<Group> {
    try {
      await this.db
        .insertInto('groups')
        .values({
          id: g.id,
          name: g.name,
          description: g.description,
          image_id: g.imageId,
          boot_mode: g.bootMode,
          settings: JSON.stringify(g.settings),
          policy: JSON.stringify(g.policy),
          created_at: g.createdAt,
          updated_at: g.createdAt,
        })
        .execute();
    } catch (err) {
      if (isUniqueViolation(err)) throw new DroverError('DROVER_GROUP_EXISTS', `A group named "${g.name}" already exists.`);
      throw err;
    }
    return (await this.get(g.id))!;
  }

  async get(id: string): Promise<Group | undefined> {
    const row = await this.db.selectFrom('groups').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toGroup(row);
  }

  async findByName(name: string): Promise<Group | undefined> {
    const row = await this.db.selectFrom('groups').selectAll().where('name', '=', name).executeTakeFirst();
    return row && toGroup(row);
  }

  async list(): Promise<Group[]> {
    const rows = await this.db.selectFrom('groups').selectAll().orderBy('name').execute();
    return rows.map(toGroup);
  }

  async update(id: string, patch: GroupPatch, now: string): Promise<Group> {
    const set: Partial<GroupsTable> = { updated_at: now };
    if (patch.name !== undefined) set.name = patch.name;
    if (patch.description !== undefined) set.description = patch.description;
    if (patch.imageId !== undefined) set.image_id = patch.imageId;
    if (patch.bootMode !== undefined) set.boot_mode = patch.bootMode;
    if (patch.settings !== undefined) set.settings = JSON.stringify(patch.settings);
    if (patch.policy !== undefined) set.policy = JSON.stringify(patch.policy);
    try {
      const res = await this.db.updateTable('groups').set(set).where('id', '=', id).executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0) throw new DroverError('DROVER_GROUP_NOT_FOUND');
    } catch (err) {
      if (isUniqueViolation(err)) throw new DroverError('DROVER_GROUP_EXISTS', `A group named "${patch.name}" already exists.`);
      throw err;
    }
    return (await this.get(id))!;
  }

  async delete(id: string): Promise<boolean> {
    const res = await this.db.deleteFrom('groups').where('id', '=', id).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }
}

function toGroup(r: GroupsTable): Group {
  return {
    id: r.id,
    name: r.name,
    description: r.description,
    imageId: r.image_id,
    bootMode: r.boot_mode as BootMode | null,
    settings: parseJson(r.settings, {}),
    policy: parseJson(r.policy, {}),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}
