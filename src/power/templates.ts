// {{placeholder}} templates in power settings (URLs, bodies, the PPI piId). Unknown placeholders
// are refused when the config is parsed, not discovered when a Pi needs power at 3 a.m.; a device
// without the value a template needs (no hostname yet) is a clear failure, never an empty string.
import type { PowerTarget } from './types.js';

export type Placeholder = 'serial' | 'deviceId' | 'hostname' | 'port' | 'action';

const PLACEHOLDER = /\{\{\s*([A-Za-z]+)\s*\}\}/g;

/** The placeholders a template uses, in order of first use. */
export function placeholdersOf(template: string): string[] {
  return [...new Set([...template.matchAll(PLACEHOLDER)].map((m) => m[1]!))];
}

/** The first placeholder of `template` not in `allowed`, or null. */
export function unknownPlaceholder(template: string, allowed: readonly Placeholder[]): string | null {
  return placeholdersOf(template).find((p) => !(allowed as readonly string[]).includes(p)) ?? null;
}

export type TemplateValues = Partial<Record<Placeholder, string>>;

export function targetValues(t: PowerTarget): TemplateValues {
  return { serial: t.serial, deviceId: t.deviceId, ...(t.hostname !== null ? { hostname: t.hostname } : {}) };
}

/**
 * Fills a template. `encode` URL-encodes each value (for URLs); a placeholder without a value
 * throws via `missing` so the caller can word the failure for its driver.
 */
export function fill(template: string, values: TemplateValues, encode: boolean, missing: (name: string) => Error): string {
  return template.replace(PLACEHOLDER, (_all, name: string) => {
    const v = values[name as Placeholder];
    if (v === undefined) throw missing(name);
    return encode ? encodeURIComponent(v) : v;
  });
}
