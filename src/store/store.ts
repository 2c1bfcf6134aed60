// The store: one object holding every repository over one database, plus transactions.
import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import { migrate, openDatabase, type Dialect } from './db.js';
import { DevicesRepository } from './repositories/devices.repository.js';
import { EventsRepository } from './repositories/events.repository.js';
import { GroupsRepository } from './repositories/groups.repository.js';
import { HealthRepository } from './repositories/health.repository.js';
import { JobsRepository } from './repositories/jobs.repository.js';
import { MetricsRepository } from './repositories/metrics.repository.js';
import { ImagesRepository } from './repositories/images.repository.js';
import { MetaRepository } from './repositories/meta.repository.js';
import { TokensRepository } from './repositories/tokens.repository.js';
import { UsersRepository } from './repositories/users.repository.js';
import type { Database } from './schema.js';

export class Repositories {
  readonly devices: DevicesRepository;
  readonly groups: GroupsRepository;
  readonly images: ImagesRepository;
  readonly tokens: TokensRepository;
  readonly users: UsersRepository;
  readonly events: EventsRepository;
  readonly meta: MetaRepository;
  readonly health: HealthRepository;
  readonly metrics: MetricsRepository;
  readonly jobs: JobsRepository;

  constructor(db: Kysely<Database>) {
    this.devices = new DevicesRepository(db);
    this.groups = new GroupsRepository(db);
    this.images = new ImagesRepository(db);
    this.tokens = new TokensRepository(db);
    this.users = new UsersRepository(db);
    this.events = new EventsRepository(db);
    this.meta = new MetaRepository(db);
    this.health = new HealthRepository(db);
    this.metrics = new MetricsRepository(db);
    this.jobs = new JobsRepository(db);
  }
}

export class Store extends Repositories {
  constructor(
    readonly db: Kysely<Database>,
    readonly dialect: Dialect,
    readonly location: string,
  ) {
    super(db);
  }

  static async open(url: string): Promise<Store> {
    const { db, dialect, location } = await openDatabase(url);
    try {
      await migrate(db, dialect);
    } catch (err) {
      await db.destroy();
      throw err;
    }
    return new Store(db, dialect, location);
  }

  /** Runs `fn` in one transaction: everything it writes lands together or not at all. */
  transaction<T>(fn: (repos: Repositories) => Promise<T>): Promise<T> {
    return this.db.transaction().execute((trx) => fn(new Repositories(trx)));
  }

  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db);
  }

  close(): Promise<void> {
    return this.db.destroy();
  }
}
