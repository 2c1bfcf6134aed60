import type { Kysely } from 'kysely';
import type { Image } from '../../domain/records.js';
import type { Database, ImagesTable } from '../schema.js';
import { parseJson } from './util.js';

export class ImagesRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async create(i: Image): Promise<Image> {
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
