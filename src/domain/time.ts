// Timestamps are stored and sent as ISO 8601 UTC strings with milliseconds: fixed width, so
// they sort as text in both SQLite and PostgreSQL.
export type Clock = () => Date;
export const systemClock: Clock = () => new Date();
export const iso = (d: Date): string => d.toISOString();
