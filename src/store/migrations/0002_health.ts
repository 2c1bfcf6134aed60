import type { Kysely, Migration } from 'kysely';
import type { Dialect } from '../db.js';

// Agents, health and jobs. Health lives in its own table so a heartbeat never rewrites the device
// row (and its updated_at); raw metric samples are kept briefly, one-minute rollups for longer.
export function health(_dialect: Dialect): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema.alterTable('devices').addColumn('settings', 'text', (c) => c.notNull().defaultTo('{}')).execute();

      await db.schema
        .createTable('device_health')
        .addColumn('device_id', 'text', (c) => c.primaryKey().references('devices.id').onDelete('cascade'))
        .addColumn('health', 'text', (c) => c.notNull().defaultTo('unknown'))
        .addColumn('phi', 'double precision')
        .addColumn('since', 'text')
        .addColumn('reason', 'text')
        .addColumn('last_heartbeat', 'text')
        .addColumn('agent_connected', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('agent_version', 'text')
        .addColumn('boot_id', 'text')
        .addColumn('reported_image_id', 'text')
        .addColumn('booted_at', 'text')
        .addColumn('stream', 'text')
        .addColumn('last_seq', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('gossip', 'text')
        .addColumn('remediation', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('device_health_health').on('device_health').column('health').execute();

      await db.schema
        .createTable('metrics')
        .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id').onDelete('cascade'))
        .addColumn('ts', 'text', (c) => c.notNull())
        .addColumn('seq', 'integer', (c) => c.notNull())
        .addColumn('data', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('metrics_device_ts').on('metrics').columns(['device_id', 'ts']).execute();
      await db.schema.createIndex('metrics_ts').on('metrics').column('ts').execute();

      await db.schema
        .createTable('metrics_rollup')
        .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id').onDelete('cascade'))
        .addColumn('minute', 'text', (c) => c.notNull())
        .addColumn('n', 'integer', (c) => c.notNull())
        .addColumn('data', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('metrics_rollup_pk', ['device_id', 'minute'])
        .execute();
      await db.schema.createIndex('metrics_rollup_minute').on('metrics_rollup').column('minute').execute();

      await db.schema
        .createTable('jobs')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id').onDelete('cascade'))
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('params', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('actor', 'text')
        .addColumn('timeout_ms', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('started_at', 'text')
        .addColumn('finished_at', 'text')
        .addColumn('exit_code', 'integer')
        .addColumn('output', 'text')
        .addColumn('error', 'text')
        .execute();
      await db.schema.createIndex('jobs_device').on('jobs').columns(['device_id', 'created_at']).execute();
      await db.schema.createIndex('jobs_state').on('jobs').column('state').execute();
    },
    async down(db: Kysely<any>) {
      for (const t of ['jobs', 'metrics_rollup', 'metrics', 'device_health']) await db.schema.dropTable(t).ifExists().execute();
      await db.schema.alterTable('devices').dropColumn('settings').execute();
    },
  };
}
