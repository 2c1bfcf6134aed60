import type { Kysely } from 'kysely';
import type { Image } from '../../domain/records.js';
import type { Database, ImagesTable } from '../schema.js';
import { DroverError } from '../../domain/errors.js';
import { isUniqueViolation, parseJson } from './util.js';

export class ImagesRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async create(i: Image): Promise<Image> {
    try {
      await this.db
      .insertInto('images')
      .values({
        id: i.id,
        name: i.name,
        tag: i.tag,
        sha256: i.sha256,
        status: i.status,
        kind: i.kind,
        metadata: JSON.stringify(i.metadata),
        created_at: i.createdAt,
      })
      .execute();
    } catch (err) {
      if (isUniqueViolation(err)) throw new DroverError('DROVER_IMAGE_EXISTS', `An image ${i.name}:${i.tag} already exists.`);
      throw err;
    }
    return (await this.get(i.id))!;
  }

  async get(id: string): Promise<Image | undefined> {
    const row = await this.db.selectFrom('images').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toImage(row);
  }

  async findByName(name: string, tag: string): Promise<Image | undefined> {
    const row = await this.db.selectFrom('images').selectAll().where('name', '=', name).where('tag', '=', tag).executeTakeFirst();
    return row && toImage(row);
  }

  async delete(id: string): Promise<boolean> {
    const res = await this.db.deleteFrom('images').where('id', '=', id).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  async list(): Promise<Image[]> {
    const rows = await this.db.selectFrom('images').selectAll().orderBy('name').orderBy('tag').execute();
    return rows.map(toImage);
  }
}

function toImage(r: ImagesTable): Image {
  return {
    id: r.id,
    name: r.name,
    tag: r.tag,
    sha256: r.sha256,
    status: r.status as Image['status'],
    kind: r.kind,
    metadata: parseJson(r.metadata, {}),
    createdAt: r.created_at,
  };
}
