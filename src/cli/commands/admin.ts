// Groups, images, tokens and users: the records around the fleet.
import { resolve as resolvePath } from 'node:path';
import type { Command } from 'commander';
import type { Group, Image, Token, User } from '../../domain/records.js';
import { enc } from '../client.js';
import { ago, printFields, printJson, printTable } from '../output.js';
import { action, bad, client, globals, parseDuration } from '../run.js';
import { registerImageCommands } from './images.js';
import { promptHidden, readStdin } from './login.js';

function parseJsonOption(name: string, text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  try {
    const v = JSON.parse(text) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    /* fall through */
  }
  throw bad(`--${name} takes a JSON object, e.g. '{"key": "value"}'.`);
}

export function registerGroup(program: Command): void {
  const group = program.command('group').alias('groups').description('groups: shared image, boot mode, settings and policy for their devices');
  group.command('ls').description('list groups').action(
    action(async (_o: unknown, cmd: Command) => {
      const { items }: { items: Group[] } = await client(cmd).request('GET', '/api/v1/groups');
      if (globals(cmd).json) return printJson({ items });
      printTable(items.map((g) => ({ id: g.id, name: g.name, image: g.imageId, 'boot mode': g.bootMode, 'auto-accept': g.policy.autoAccept ? 'yes' : 'no', description: g.description })), ['id', 'name', 'image', 'boot mode', 'auto-accept', 'description']);
    }),
  );
  group.command('show <group>').description('show a group').action(
    action(async (ref: string, _o: unknown, cmd: Command) => {
      const g: Group = await client(cmd).request('GET', `/api/v1/groups/${enc(ref)}`);
      if (globals(cmd).json) return printJson(g);
      printFields([['id', g.id], ['name', g.name], ['description', g.description], ['image', g.imageId], ['boot mode', g.bootMode], ['settings', JSON.stringify(g.settings)], ['policy', JSON.stringify(g.policy)], ['created', g.createdAt]]);
    }),
  );
  const fields = (c: Command) =>
    c
      .option('--description <text>', 'free text')
      .option('--image <image>', 'default image (id or name[:tag]); "" clears')
      .option('--boot-mode <mode>', 'ramroot | nfs | sdstub | http')
      .option('--auto-accept <yes|no>', 'accept new devices of this group without approval')
      .option('--settings <json>', 'settings object (replaces)');
  const body = (o: { description?: string; image?: string; bootMode?: string; autoAccept?: string; settings?: string }) => {
    const b: Record<string, unknown> = {};
    if (o.description !== undefined) b.description = o.description;
    if (o.image !== undefined) b.imageId = o.image || null;
    if (o.bootMode !== undefined) b.bootMode = o.bootMode || null;
    if (o.autoAccept !== undefined) {
      if (!/^(yes|no|true|false)$/.test(o.autoAccept)) throw bad('--auto-accept takes yes or no.');
      b.policy = { autoAccept: /^(yes|true)$/.test(o.autoAccept) };
    }
    const settings = parseJsonOption('settings', o.settings);
    if (settings) b.settings = settings;
    return b;
  };
  fields(group.command('create <name>').description('create a group')).action(
    action(async (name: string, o: Parameters<typeof body>[0], cmd: Command) => {
      const g: Group = await client(cmd).request('POST', '/api/v1/groups', { name, ...body(o) });
      if (globals(cmd).json) return printJson(g);
      process.stdout.write(`Created group ${g.name} (${g.id}).\n`);
    }),
  );
  fields(group.command('update <group>').description('change a group').option('--name <name>', 'rename')).action(
    action(async (ref: string, o: Parameters<typeof body>[0] & { name?: string }, cmd: Command) => {
      const b = body(o);
      if (o.name) b.name = o.name;
      if (!Object.keys(b).length) throw bad('Nothing to change.');
      const g: Group = await client(cmd).request('PATCH', `/api/v1/groups/${enc(ref)}`, b);
      if (globals(cmd).json) return printJson(g);
      process.stdout.write(`Updated group ${g.name}.\n`);
    }),
  );
  group.command('rm <group>').description('delete an empty group').action(
    action(async (ref: string, _o: unknown, cmd: Command) => {
      await client(cmd).request('DELETE', `/api/v1/groups/${enc(ref)}`);
      if (globals(cmd).json) return printJson({ deleted: ref });
      process.stdout.write(`Deleted group ${ref}.\n`);
    }),
  );
}

export function registerImage(program: Command): void {
  const image = program.command('image').alias('images').description('OS images devices boot');
  image.command('ls').description('list images').action(
    action(async (_o: unknown, cmd: Command) => {
      const { items }: { items: Image[] } = await client(cmd).request('GET', '/api/v1/images');
      if (globals(cmd).json) return printJson({ items });
      if (!items.length) return void process.stdout.write('No images.\n');
      printTable(
        items.map((i) => ({ id: i.id, name: `${i.name}:${i.tag}`, default: (i as { isDefault?: boolean }).isDefault ? '*' : '', kind: i.kind, status: i.status, models: ((i.metadata.models as string[] | undefined) ?? []).join(','), sha256: i.sha256?.slice(0, 12), created: i.createdAt })),
        ['id', 'name', 'default', 'kind', 'status', 'models', 'sha256', 'created'],
      );
    }),
  );
  image
    .command('add-boot-dir <name> <dir>')
    .description('register a directory of boot files (firmware, kernels, DTBs, config.txt, cmdline.txt) as image NAME[:TAG]; the directory is read by the controller, so it must be on the controller host')
    .option('--default', 'also make it the default image (served to devices with no image of their own)')
    .action(
      action(async (ref: string, dir: string, o: { default?: boolean }, cmd: Command) => {
        const [name, tag] = ref.includes(':') ? [ref.slice(0, ref.indexOf(':')), ref.slice(ref.indexOf(':') + 1)] : [ref, undefined];
        const i: Image & { metadata: { files?: number; bytes?: number; models?: string[] } } = await client(cmd).request('POST', '/api/v1/images/boot-dir', {
          name,
          ...(tag ? { tag } : {}),
          path: resolvePath(dir),
          ...(o.default ? { default: true } : {}),
        });
        if (globals(cmd).json) return printJson(i);
        process.stdout.write(`Added ${i.name}:${i.tag} (${i.id}): ${i.metadata.files} files, ${i.metadata.bytes} bytes, boots ${(i.metadata.models ?? []).join(', ') || 'no known Pi model'}${o.default ? '; now the default image' : ''}.\n`);
      }),
    );
  image
    .command('default [image]')
    .description('show, set, or (--none) clear the default image')
    .option('--none', 'clear the default')
    .action(
      action(async (ref: string | undefined, o: { none?: boolean }, cmd: Command) => {
        const c = client(cmd);
        if (!ref && !o.none) {
          const { items }: { items: (Image & { isDefault?: boolean })[] } = await c.request('GET', '/api/v1/images');
          const d = items.find((i) => i.isDefault);
          if (globals(cmd).json) return printJson({ image: d ?? null });
          process.stdout.write(d ? `${d.name}:${d.tag} (${d.id})\n` : 'No default image.\n');
          return;
        }
        const r: { image: Image | null } = await c.request('PUT', '/api/v1/images/default', { image: o.none ? null : ref });
        if (globals(cmd).json) return printJson(r);
        process.stdout.write(r.image ? `Default image: ${r.image.name}:${r.image.tag}.\n` : 'Default image cleared.\n');
      }),
    );
  image.command('show <image>').description('show an image: kernels, models it boots, root filesystem, who uses it').action(
    action(async (ref: string, _o: unknown, cmd: Command) => {
      const c = client(cmd);
      const i: Image = await c.request('GET', `/api/v1/images/${enc(ref)}`);
      const usage: { devices: string[]; groups: string[]; isDefault: boolean } = await c.request('GET', `/api/v1/images/${enc(i.id)}/usage`);
      if (globals(cmd).json) return printJson({ ...i, usage });
      const m = i.metadata as { kernels?: { file: string; version: string; initramfs: string; missingModules?: string[]; wifi?: { firmware: string[] } | { reason: string } }[]; models?: string[]; dtbs?: string[]; rootfs?: { bytes: number; sha256: string; entries: number }; osName?: string; files?: number };
      const rows: [string, unknown][] = [['id', i.id], ['name', `${i.name}:${i.tag}`], ['kind', i.kind], ['status', i.status], ['sha256', i.sha256]];
      if (m.osName) rows.push(['os', m.osName]);
      if (m.kernels?.length) rows.push(['kernels', m.kernels.map((k) => (typeof k === 'string' ? k : `${k.file} ${k.version} → ${k.initramfs}${k.missingModules?.length ? ` (no ${k.missingModules.join(', ')})` : ''}`)).join('; ')]);
      const wifi = m.kernels?.find((k) => typeof k !== 'string' && k.wifi)?.wifi;
      if (wifi) rows.push(['SD stub Wi-Fi', 'firmware' in wifi ? `wpa_supplicant, firmware ${wifi.firmware.join(', ') || 'none (no Pi Wi-Fi chip firmware in the image)'}` : `none: ${wifi.reason}`]);
      rows.push(['boots', (m.models ?? []).join(', ') || 'no known Pi model'], ['dtbs', (m.dtbs ?? []).length]);
      if (m.rootfs) rows.push(['rootfs', `${m.rootfs.bytes} bytes, ${m.rootfs.entries} entries, sha256 ${m.rootfs.sha256}`]);
      rows.push(['used by', [usage.isDefault ? 'default image' : '', usage.groups.length ? `groups ${usage.groups.join(', ')}` : '', usage.devices.length ? `devices ${usage.devices.join(', ')}` : ''].filter(Boolean).join('; ') || 'nothing'], ['created', i.createdAt]);
      printFields(rows as Parameters<typeof printFields>[0]);
    }),
  );
  registerImageCommands(image);
}

export function registerToken(program: Command): void {
  const token = program.command('token').alias('tokens').description('API tokens (admin)');
  token
    .command('create')
    .description('create a token; the secret is printed once')
    .requiredOption('--name <name>', 'what it is for')
    .option('--role <role>', 'admin | operator | viewer | device', 'viewer')
    .option('--device <node>', 'for role device: the only device it may reach')
    .option('--ttl <duration>', 'lifetime, e.g. 90m, 12h, 30d (default: no expiry)')
    .action(
      action(async (o: { name: string; role: string; device?: string; ttl?: string }, cmd: Command) => {
        const res: { token: Token; secret: string } = await client(cmd).request('POST', '/api/v1/tokens', {
          name: o.name,
          role: o.role,
          ...(o.device ? { deviceId: o.device } : {}),
          ...(o.ttl ? { ttl: parseDuration(o.ttl) } : {}),
        });
        if (globals(cmd).json) return printJson(res);
        process.stderr.write(`Created ${res.token.role} token ${res.token.id} (${res.token.name}). The secret is shown only now:\n`);
        process.stdout.write(`${res.secret}\n`);
      }),
    );
  token
    .command('ls')
    .description('list tokens (never their secrets)')
    .option('--all', 'include revoked and dashboard session tokens')
    .action(
      action(async (o: { all?: boolean }, cmd: Command) => {
        const { items }: { items: Token[] } = await client(cmd).request('GET', `/api/v1/tokens${o.all ? '?all=true' : ''}`);
        if (globals(cmd).json) return printJson({ items });
        printTable(
          items.map((t) => ({ id: t.id, name: t.name, role: t.role, prefix: `${t.prefix}…`, device: t.deviceId, kind: t.kind, 'last used': ago(t.lastUsedAt), expires: t.expiresAt, revoked: t.revokedAt })),
          ['id', 'name', 'role', 'prefix', 'device', 'kind', 'last used', 'expires', 'revoked'],
        );
      }),
    );
  token.command('revoke <id>').description('revoke a token').action(
    action(async (id: string, _o: unknown, cmd: Command) => {
      const t: Token = await client(cmd).request('DELETE', `/api/v1/tokens/${enc(id)}`);
      if (globals(cmd).json) return printJson(t);
      process.stdout.write(`Revoked ${t.id} (${t.name}).\n`);
    }),
  );
}

async function readPassword(o: { passwordStdin?: boolean }, who: string): Promise<string> {
  if (o.passwordStdin) return readStdin();
  const a = await promptHidden(`New password for ${who}: `);
  const b = await promptHidden('Again: ');
  if (a !== b) throw bad('The passwords differ.');
  return a;
}

export function registerUser(program: Command): void {
  const user = program.command('user').alias('users').description('dashboard users (admin)');
  user.command('ls').description('list users').action(
    action(async (_o: unknown, cmd: Command) => {
      const { items }: { items: User[] } = await client(cmd).request('GET', '/api/v1/users');
      if (globals(cmd).json) return printJson({ items });
      printTable(items.map((u) => ({ id: u.id, username: u.username, role: u.role, disabled: u.disabled ? 'yes' : 'no', created: u.createdAt })), ['id', 'username', 'role', 'disabled', 'created']);
    }),
  );
  user
    .command('add <username>')
    .description('create a user (asks for the password, or --password-stdin)')
    .option('--role <role>', 'admin | operator | viewer', 'viewer')
    .option('--password-stdin', 'read the password from standard input')
    .action(
      action(async (username: string, o: { role: string; passwordStdin?: boolean }, cmd: Command) => {
        const password = await readPassword(o, username);
        const u: User = await client(cmd).request('POST', '/api/v1/users', { username, password, role: o.role });
        if (globals(cmd).json) return printJson(u);
        process.stdout.write(`Created ${u.role} user ${u.username} (${u.id}).\n`);
      }),
    );
  user
    .command('passwd <user>')
    .description("set a user's password (ends their sessions)")
    .option('--password-stdin', 'read the password from standard input')
    .action(
      action(async (ref: string, o: { passwordStdin?: boolean }, cmd: Command) => {
        const password = await readPassword(o, ref);
        const u: User = await client(cmd).request('PATCH', `/api/v1/users/${enc(ref)}`, { password });
        if (globals(cmd).json) return printJson(u);
        process.stdout.write(`Password of ${u.username} changed.\n`);
      }),
    );
  user
    .command('set <user>')
    .description('change role or disable/enable (ends their sessions)')
    .option('--role <role>', 'admin | operator | viewer')
    .option('--disable', 'block logins')
    .option('--enable', 'allow logins again')
    .action(
      action(async (ref: string, o: { role?: string; disable?: boolean; enable?: boolean }, cmd: Command) => {
        const b: Record<string, unknown> = {};
        if (o.role) b.role = o.role;
        if (o.disable) b.disabled = true;
        if (o.enable) b.disabled = false;
        if (!Object.keys(b).length) throw bad('Nothing to change.');
        const u: User = await client(cmd).request('PATCH', `/api/v1/users/${enc(ref)}`, b);
        if (globals(cmd).json) return printJson(u);
        process.stdout.write(`${u.username}: ${u.role}${u.disabled ? ', disabled' : ''}.\n`);
      }),
    );
  user.command('rm <user>').description('delete a user').action(
    action(async (ref: string, _o: unknown, cmd: Command) => {
      await client(cmd).request('DELETE', `/api/v1/users/${enc(ref)}`);
      if (globals(cmd).json) return printJson({ deleted: ref });
      process.stdout.write(`Deleted user ${ref}.\n`);
    }),
  );
}
