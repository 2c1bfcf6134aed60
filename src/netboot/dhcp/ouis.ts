// The Raspberry Pi MAC prefix list is data (data/raspberry-pi-ouis.json), extended by the user:
// out-of-date lists that silently ignore new Pis are a recurring complaint about other tools.
import { readFileSync } from 'node:fs';
import { normalizeMac } from '../../domain/device.js';

const FILE = new URL('../../../data/raspberry-pi-ouis.json', import.meta.url);
const FILE_FROM_DIST = new URL('../../../../data/raspberry-pi-ouis.json', import.meta.url);

export function builtinOuis(): string[] {
  for (const f of [FILE, FILE_FROM_DIST]) {
    try {
      const doc = JSON.parse(readFileSync(f, 'utf8')) as { ouis: { prefix: string }[] };
      return doc.ouis.map((o) => o.prefix.toLowerCase());
    } catch {
      /* try the next location */
    }
  }
  throw new Error('data/raspberry-pi-ouis.json not found');
}

/** Normalises `B8-27-EB`, `b827eb` or `b8:27:eb` to `b8:27:eb`. */
export function normalizeOui(s: string): string {
  return normalizeMac(`${s.replace(/[:\-.]/g, '')}000000`).slice(0, 8);
}

export function piOuiSet(extra: string[] = []): Set<string> {
  return new Set([...builtinOuis(), ...extra.map(normalizeOui)]);
}
