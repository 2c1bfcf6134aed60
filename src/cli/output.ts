// How the CLI prints: aligned tables for people, JSON for scripts, errors with code and fix.
import { CliError } from './client.js';

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function table(rows: Record<string, unknown>[], columns: string[]): string {
  const cell = (v: unknown) => (v === null || v === undefined || v === '' ? '-' : String(v));
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) => vals.map((v, i) => (i === vals.length - 1 ? v : v.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(columns.map((c) => c.toUpperCase())), ...rows.map((r) => line(columns.map((c) => cell(r[c]))))].join('\n');
}

export function printTable(rows: Record<string, unknown>[], columns: string[]): void {
  process.stdout.write(`${table(rows, columns)}\n`);
}

export function printFields(fields: [string, unknown][]): void {
  const w = Math.max(...fields.map(([k]) => k.length));
  for (const [k, v] of fields) process.stdout.write(`${`${k}:`.padEnd(w + 2)}${v === null || v === undefined || v === '' ? '-' : String(v)}\n`);
}

export function ago(iso: string | null, now = Date.now()): string {
  if (!iso) return '-';
  const s = Math.round((now - Date.parse(iso)) / 1000);
  if (s < 0) return 'just now';
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export function labelsText(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

/**
 * Exit codes scripts can rely on (docs/cli.md): 0 ok, 1 internal/unknown, 2 usage, 3 auth,
 * 4 not found, 5 conflict, 6 invalid input, 7 server unreachable or not ready.
 */
export const EXIT = { ok: 0, internal: 1, usage: 2, auth: 3, notFound: 4, conflict: 5, invalid: 6, unreachable: 7 } as const;

export function exitCodeFor(err: CliError): number {
  if (err.code === 'DROVER_CLI_BAD_ARGUMENT') return EXIT.usage;
  if (err.code === 'DROVER_CLI_SERVER_UNREACHABLE' || err.code === 'DROVER_NOT_READY' || err.code === 'DROVER_DATABASE_UNREACHABLE') return EXIT.unreachable;
  if (err.code === 'DROVER_CLI_NO_SERVER') return EXIT.usage;
  if (err.code === 'DROVER_CLI_NO_TOKEN') return EXIT.auth;
  switch (err.status) {
    case 401:
    case 403:
    case 429:
      return EXIT.auth;
    case 404:
      return EXIT.notFound;
    case 409:
      return EXIT.conflict;
    case 400:
    case 413:
    case 415:
      return EXIT.invalid;
    case 503:
      return EXIT.unreachable;
    default:
      return EXIT.internal;
  }
}

export function printError(err: CliError, json: boolean): void {
  if (json) {
    process.stderr.write(`${JSON.stringify({ code: err.code, message: err.message, fix: err.fix, status: err.status })}\n`);
    return;
  }
  process.stderr.write(`error ${err.code}: ${err.message}\n${err.fix ? `  fix: ${err.fix}\n` : ''}`);
}
