import type { Command } from 'commander';
import type { DroverEvent, Page } from '../../domain/records.js';
import { SseParser, type SseMessage } from '../../domain/sse.js';
import type { ApiClient } from '../client.js';
import { printJson, printTable } from '../output.js';
import { action, client, globals } from '../run.js';

export function eventLine(e: DroverEvent): Record<string, unknown> {
  return { id: e.id, time: e.time, type: e.type, device: e.deviceId, actor: e.actor, data: JSON.stringify(e.data) };
}

export function printEvents(items: DroverEvent[]): void {
  printTable(items.map(eventLine), ['id', 'time', 'type', 'device', 'actor', 'data']);
}

/** Parses a Server-Sent Events byte stream into (event, data, id) messages. */
export async function* sseMessages(body: ReadableStream<Uint8Array>): AsyncGenerator<SseMessage> {
  const decoder = new TextDecoder();
  const parser = new SseParser();
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) yield* parser.push(decoder.decode(chunk, { stream: true }));
}

export function typeMatches(pattern: string | undefined, type: string): boolean {
  if (!pattern) return true;
  return pattern.endsWith('.*') ? type.startsWith(pattern.slice(0, -1)) : type === pattern;
}

async function follow(c: ApiClient, query: URLSearchParams, json: boolean, lastId: number | null, type?: string): Promise<never> {
  let last = lastId;
  let delay = 500;
  for (;;) {
    try {
      const q = new URLSearchParams(query);
      if (last !== null) q.set('after', String(last));
      const res = await c.raw('GET', `/api/v1/events/stream?${q}`, undefined, { accept: 'text/event-stream' });
      if (!res.ok || !res.body) {
        const body = await res.text();
        throw Object.assign(new Error(body), { status: res.status });
      }
      delay = 500;
      for await (const m of sseMessages(res.body)) {
        if (m.event !== 'event') continue;
        const e = JSON.parse(m.data) as DroverEvent;
        last = e.id;
        if (!typeMatches(type, e.type)) continue;
        if (json) process.stdout.write(`${JSON.stringify(e)}\n`);
        else process.stdout.write(`${e.id}  ${e.time}  ${e.type}  ${e.deviceId ?? '-'}  ${e.actor ?? '-'}  ${JSON.stringify(e.data)}\n`);
      }
    } catch (err) {
      const status = (err as { status?: number }).status;
      if (status === 401 || status === 403 || status === 404 || status === 400) throw err;
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 15_000);
  }
}

export function registerEvents(program: Command): void {
  program
    .command('events')
    .description('show events, newest first; --follow streams new ones as they happen')
    .option('--device <node>', 'only this device')
    .option('--type <type>', 'exact type, or a prefix like boot.*')
    .option('--since <time>', 'ISO time')
    .option('--limit <n>', 'how many', '50')
    .option('-f, --follow', 'keep streaming new events (reconnects by itself)')
    .action(
      action(async (opts: { device?: string; type?: string; since?: string; limit: string; follow?: boolean }, cmd: Command) => {
        const c = client(cmd);
        const json = Boolean(globals(cmd).json);
        const q = new URLSearchParams({ limit: opts.limit });
        if (opts.device) q.set('device', opts.device);
        if (opts.type) q.set('type', opts.type);
        if (opts.since) q.set('since', opts.since);
        const page: Page<DroverEvent> = await c.request('GET', `/api/v1/events?${q}`);
        if (json && !opts.follow) return printJson(page);
        const items = [...page.items].reverse();
        if (json) for (const e of items) process.stdout.write(`${JSON.stringify(e)}\n`);
        else if (items.length) printEvents(items);
        if (!opts.follow) return;
        const streamQ = new URLSearchParams();
        if (opts.device) streamQ.set('device', opts.device);
        process.once('SIGINT', () => process.exit(0));
        await follow(c, streamQ, json, items.length ? items[items.length - 1]!.id : null, opts.type);
      }),
    );
}
