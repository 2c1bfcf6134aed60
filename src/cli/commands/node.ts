import type { Command } from 'commander';
import type { Device, DroverEvent, Page } from '../../domain/records.js';
import { enc } from '../client.js';
import { ago, labelsText, printFields, printJson, printTable } from '../output.js';
import { action, bad, client, collect, globals } from '../run.js';
import { printEvents } from './events.js';

function deviceRow(d: Device) {
  return {
    id: d.id,
    serial: d.serial,
    hostname: d.hostname,
    state: d.state,
    model: d.model,
    ip: d.ipAddresses[0],
    image: d.imageId,
    'last seen': ago(d.lastSeen),
    labels: labelsText(d.labels),
  };
}

export function parseLabelArgs(args: string[]): Record<string, string | null> {
  const patch: Record<string, string | null> = {};
  for (const a of args) {
    if (/^[^=]+-$/.test(a)) patch[a.slice(0, -1)] = null;
    else if (a.indexOf('=') > 0) patch[a.slice(0, a.indexOf('='))] = a.slice(a.indexOf('=') + 1);
    else throw bad(`"${a}" is neither key=value (set) nor key- (remove).`);
  }
  return patch;
}

export function registerNode(program: Command): void {
  const node = program.command('node').alias('nodes').description('list and manage devices (NODE = id, serial, MAC or hostname)');

  node
    .command('ls')
    .description('list devices')
    .option('--state <states>', 'comma-separated states (incoming, accepted, booting, running, suspect, failed, retired)')
    .option('--label <key=value>', 'only devices with this label (repeat to AND)', collect)
    .option('--group <group>', 'only devices in this group')
    .option('-q, --query <text>', 'substring of serial, hostname, model or MAC')
    .option('--limit <n>', 'page size', '100')
    .option('--all', 'follow pages to the end')
    .action(
      action(async (opts: { state?: string; label?: string[]; group?: string; query?: string; limit: string; all?: boolean }, cmd: Command) => {
        const c = client(cmd);
        const params = new URLSearchParams({ limit: opts.limit });
        if (opts.state) params.set('state', opts.state);
        for (const l of opts.label ?? []) params.append('label', l);
        if (opts.group) params.set('group', opts.group);
        if (opts.query) params.set('q', opts.query);
        const items: Device[] = [];
        let total = 0;
        let cursor: string | null = null;
        do {
          if (cursor) params.set('cursor', cursor);
          const page: Page<Device> = await c.request('GET', `/api/v1/devices?${params}`);
          items.push(...page.items);
          total = page.total ?? items.length;
          cursor = opts.all ? page.nextCursor : null;
        } while (cursor);
        if (globals(cmd).json) return printJson({ items, total });
        if (items.length === 0) {
          process.stdout.write('No devices.\n');
          return;
        }
        printTable(items.map(deviceRow), ['id', 'serial', 'hostname', 'state', 'model', 'ip', 'image', 'last seen', 'labels']);
        if (items.length < total) process.stderr.write(`(${items.length} of ${total}; --all for every page)\n`);
      }),
    );

  node
    .command('show <node>')
    .description('show one device and its latest events')
    .action(
      action(async (ref: string, _opts: unknown, cmd: Command) => {
        const c = client(cmd);
        const d: Device = await c.request('GET', `/api/v1/devices/${enc(ref)}`);
        const events: Page<DroverEvent> = await c.request('GET', `/api/v1/devices/${enc(d.id)}/events?limit=10`);
        if (globals(cmd).json) return printJson({ ...d, events: events.items });
        printFields([
          ['id', d.id], ['serial', d.serial], ['hostname', d.hostname], ['state', d.state], ['model', d.model],
          ['board revision', d.boardRevision], ['MACs', d.macs.join(', ')], ['IPs', d.ipAddresses.join(', ')],
          ['labels', labelsText(d.labels)], ['group', d.groupId], ['image', d.imageId], ['boot mode', d.bootMode],
          ['first seen', d.firstSeen], ['last seen', d.lastSeen ? `${d.lastSeen} (${ago(d.lastSeen)})` : null], ['created', d.createdAt],
        ]);
        if (events.items.length) {
          process.stdout.write('\nrecent events:\n');
          printEvents(events.items);
        }
      }),
    );

  node
    .command('add <serial>')
    .description('register a device before it first boots (accepted unless --incoming)')
    .option('--mac <mac>', 'a MAC address (repeatable)', collect)
    .option('--model <model>', 'e.g. "Raspberry Pi 4 Model B"')
    .option('--hostname <name>', 'hostname to give it')
    .option('--label <key=value>', 'a label (repeatable)', collect)
    .option('--group <group>', 'group name or id')
    .option('--incoming', 'leave it waiting for approval')
    .action(
      action(async (serial: string, opts: { mac?: string[]; model?: string; hostname?: string; label?: string[]; group?: string; incoming?: boolean }, cmd: Command) => {
        const labels = parseLabelArgs(opts.label ?? []);
        if (Object.values(labels).some((v) => v === null)) throw bad('--label takes key=value.');
        const d: Device = await client(cmd).request('POST', '/api/v1/devices', {
          serial,
          ...(opts.mac ? { macs: opts.mac } : {}),
          ...(opts.model ? { model: opts.model } : {}),
          ...(opts.hostname ? { hostname: opts.hostname } : {}),
          ...(opts.label ? { labels } : {}),
          ...(opts.group ? { groupId: opts.group } : {}),
          state: opts.incoming ? 'incoming' : 'accepted',
        });
        if (globals(cmd).json) return printJson(d);
        process.stdout.write(`Added ${d.serial} as ${d.id} (${d.state}).\n`);
      }),
    );

  for (const verb of ['accept', 'reject', 'retire'] as const) {
    node
      .command(`${verb} <nodes...>`)
      .description(`${verb} one or more devices`)
      .option('--reason <text>', 'recorded in the event')
      .action(
        action(async (refs: string[], opts: { reason?: string }, cmd: Command) => {
          const c = client(cmd);
          const done: Device[] = [];
          for (const ref of refs) {
            done.push(await c.request('POST', `/api/v1/devices/${enc(ref)}/${verb}`, opts.reason ? { reason: opts.reason } : {}));
          }
          if (globals(cmd).json) return printJson({ items: done });
          for (const d of done) process.stdout.write(`${d.serial} (${d.id}) is now ${d.state}.\n`);
        }),
      );
  }

  node
    .command('label <node> <changes...>')
    .description('set labels with key=value, remove with key-')
    .action(
      action(async (ref: string, changes: string[], _opts: unknown, cmd: Command) => {
        const d: Device = await client(cmd).request('PATCH', `/api/v1/devices/${enc(ref)}`, { labels: parseLabelArgs(changes) });
        if (globals(cmd).json) return printJson(d);
        process.stdout.write(`${d.serial}: ${labelsText(d.labels) || '(no labels)'}\n`);
      }),
    );

  node
    .command('set <node>')
    .description('change hostname or group')
    .option('--hostname <name>', 'new hostname ("" clears it)')
    .option('--group <group>', 'group name or id ("" removes it from its group)')
    .action(
      action(async (ref: string, opts: { hostname?: string; group?: string }, cmd: Command) => {
        const body: Record<string, unknown> = {};
        if (opts.hostname !== undefined) body.hostname = opts.hostname || null;
        if (opts.group !== undefined) body.groupId = opts.group || null;
        if (!Object.keys(body).length) throw bad('Nothing to change: pass --hostname or --group.');
        const d: Device = await client(cmd).request('PATCH', `/api/v1/devices/${enc(ref)}`, body);
        if (globals(cmd).json) return printJson(d);
        process.stdout.write(`${d.serial}: hostname ${d.hostname ?? '-'}, group ${d.groupId ?? '-'}\n`);
      }),
    );

  node
    .command('assign <node> [image]')
    .description('assign an image (id or name[:tag]) for the next boot; --none clears it; --group moves the device')
    .option('--none', 'clear the assignment (the group default or the default image applies)')
    .option('--group <group>', 'also move the device into this group')
    .action(
      action(async (ref: string, image: string | undefined, opts: { none?: boolean; group?: string }, cmd: Command) => {
        if (!image && !opts.none && !opts.group) throw bad('Name an image, or pass --none or --group.');
        if (image && opts.none) throw bad('Either an image or --none, not both.');
        const c = client(cmd);
        let d: Device | undefined;
        if (opts.group) d = await c.request('PATCH', `/api/v1/devices/${enc(ref)}`, { groupId: opts.group });
        if (image || opts.none) d = await c.request('POST', `/api/v1/devices/${enc(ref)}/assign`, { image: image ?? null });
        if (globals(cmd).json) return printJson(d);
        process.stdout.write(`${d!.serial}: image ${d!.imageId ?? '(none)'}, group ${d!.groupId ?? '-'}\n`);
      }),
    );

  node
    .command('reimage <nodes...>')
    .description('force a fresh root filesystem download on the next boot (drops an SD stub card\'s cache); reboot the device to apply')
    .action(
      action(async (refs: string[], _o: unknown, cmd: Command) => {
        const c = client(cmd);
        const out: { node: string; generation: number }[] = [];
        for (const ref of refs) out.push({ node: ref, ...(await c.request<{ generation: number }>('POST', `/api/v1/devices/${enc(ref)}/reimage`)) });
        if (globals(cmd).json) return printJson({ items: out });
        for (const r of out) process.stdout.write(`${r.node}: re-image on next boot (generation ${r.generation})\n`);
      }),
    );

  node
    .command('events <node>')
    .description("a device's events, newest first")
    .option('--limit <n>', 'how many', '50')
    .action(
      action(async (ref: string, opts: { limit: string }, cmd: Command) => {
        const page: Page<DroverEvent> = await client(cmd).request('GET', `/api/v1/devices/${enc(ref)}/events?limit=${enc(opts.limit)}`);
        if (globals(cmd).json) return printJson(page);
        printEvents(page.items);
      }),
    );
}
