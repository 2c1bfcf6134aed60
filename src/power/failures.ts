// The two ways a power call goes wrong, as coded errors: the settings are wrong (the message names
// the field) or the peer did not do it (the message says what it answered). Output is cut to its
// tail so a chatty tool cannot flood an API answer or a log line.
import { DroverError } from '../domain/errors.js';

export function configError(field: string, message: string): DroverError {
  return new DroverError('DROVER_POWER_CONFIG', `${field}: ${message}`, { field });
}

export function powerFailed(driver: string, message: string): DroverError {
  return new DroverError('DROVER_POWER_FAILED', `power driver ${driver}: ${message}`, { driver });
}

/** The last `max` characters of a tool's output, on one line, for error messages. */
export function tail(text: string, max = 300): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `…${flat.slice(flat.length - max)}`;
}
