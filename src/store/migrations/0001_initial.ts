import type { Kysely, Migration } from 'kysely';
import type { Dialect } from '../db.js';

// One migration set for both dialects; the only difference is how an auto-increment key is spelled.
export function initial(dialect: Dialect): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('devices')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('serial', 'text', (c) => c.notNull().unique())
        .addColumn('model', 'text')
        .addColumn('board_revision', 'text')
        .addColumn('hostname', 'text')
        .addColumn('group_id', 'text')
        .addColumn('image_id', 'text')
        .addColumn('boot_mode', 'text')
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('ip_addresses', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('first_seen', 'text')
        .addColumn('last_seen', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('devices_state').on('devices').column('state').execute();
      await db.schema.createIndex('devices_group').on('devices').column('group_id').execute();
      await db.schema.createIndex('devices_hostname').on('devices').column('hostname').execute();

      await db.schema
        .createTable('device_macs')
        .addColumn('mac', 'text', (c) => c.primaryKey())
        .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id').onDelete('cascade'))
        .execute();
      await db.schema.createIndex('device_macs_device').on('device_macs').column('device_id').execute();

      await db.schema
        .createTable('device_labels')
        .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id').onDelete('cascade'))
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('value', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('device_labels_pk', ['device_id', 'key'])
        .execute();
      await db.schema.createIndex('device_labels_kv').on('device_labels').columns(['key', 'value']).execute();

      await db.schema
        .createTable('groups')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('image_id', 'text')
        .addColumn('boot_mode', 'text')
        .addColumn('settings', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('policy', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('images')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('tag', 'text', (c) => c.notNull().defaultTo('latest'))
        .addColumn('sha256', 'text')
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('metadata', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('images_name_tag', ['name', 'tag'])
        .execute();

      await db.schema
        .createTable('users')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('username', 'text', (c) => c.notNull().unique())
        .addColumn('password_hash', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('tokens')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull().unique())
        .addColumn('prefix', 'text', (c) => c.notNull())
        .addColumn('device_id', 'text', (c) => c.references('devices.id').onDelete('cascade'))
        .addColumn('user_id', 'text', (c) => c.references('users.id').onDelete('cascade'))
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text')
        .addColumn('last_used_at', 'text')
        .addColumn('revoked_at', 'text')
        .execute();

      await db.schema
        .createTable('events')
        .addColumn('id', dialect === 'postgres' ? 'bigserial' : 'integer', (c) =>
          dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
        )
        .addColumn('time', 'text', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('device_id', 'text')
        .addColumn('actor', 'text')
        .addColumn('data', 'text', (c) => c.notNull().defaultTo('{}'))
        .execute();
      await db.schema.createIndex('events_device').on('events').columns(['device_id', 'id']).execute();
      await db.schema.createIndex('events_type').on('events').columns(['type', 'id']).execute();
      await db.schema.createIndex('events_time').on('events').column('time').execute();

      await db.schema
        .createTable('meta')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<any>) {
      for (const t of ['meta', 'events', 'tokens', 'users', 'images', 'groups', 'device_labels', 'device_macs', 'devices']) {
        await db.schema.dropTable(t).execute();
      }
    },
  };
}
