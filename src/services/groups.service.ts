// Groups: shared defaults (image, boot mode, settings) and policy for their devices.
import type { BootMode } from '../domain/device.js';
import { DroverError } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import type { Group, GroupPolicy } from '../domain/records.js';
import { inTransaction, type ServiceContext } from './context.js';
import { resolveGroup, resolveImage } from './devices.service.js';

export interface GroupInput {
  name?: string | undefined;
  description?: string | undefined;
  imageId?: string | null | undefined;
  bootMode?: BootMode | null | undefined;
  settings?: Record<string, unknown> | undefined;
  policy?: GroupPolicy | undefined;
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

function checkName(name: string): string {
  const n = name.trim();
  if (!NAME.test(n)) {
    throw new DroverError('DROVER_VALIDATION', `Group name "${n.slice(0, 64)}" must be 1-63 characters of a-z, 0-9, ".", "_", "-".`);
  }
  return n;
}

export class GroupsService {
  constructor(private readonly ctx: ServiceContext) {}

  list(): Promise<Group[]> {
    return this.ctx.store.groups.list();
  }

  get(ref: string): Promise<Group> {
    return resolveGroup(this.ctx.store, ref);
  }

  create(input: GroupInput & { name: string }, actor: string): Promise<Group> {
    const name = checkName(input.name);
    return inTransaction(this.ctx, async (tx) => {
      const imageId = input.imageId ? (await resolveImage(tx, input.imageId)).id : null;
      const group = await tx.groups.create({
        id: newId('grp'),
        name,
        description: input.description ?? '',
        imageId,
        bootMode: input.bootMode ?? null,
        settings: input.settings ?? {},
        policy: input.policy ?? {},
        createdAt: tx.now,
      });
      await tx.emit({ type: 'group.created', deviceId: null, actor, data: { groupId: group.id, name } });
      return group;
    });
  }

  update(ref: string, input: GroupInput, actor: string): Promise<Group> {
    const name = input.name === undefined ? undefined : checkName(input.name);
    return inTransaction(this.ctx, async (tx) => {
      const current = await resolveGroup(tx, ref);
      const imageId = input.imageId ? (await resolveImage(tx, input.imageId)).id : input.imageId;
      const group = await tx.groups.update(
        current.id,
        { name, description: input.description, imageId, bootMode: input.bootMode, settings: input.settings, policy: input.policy },
        tx.now,
      );
      await tx.emit({ type: 'group.updated', deviceId: null, actor, data: { groupId: group.id, fields: Object.keys(input) } });
      return group;
    });
  }

  delete(ref: string, actor: string): Promise<void> {
    return inTransaction(this.ctx, async (tx) => {
      const group = await resolveGroup(tx, ref);
      const members = await tx.devices.countInGroup(group.id);
      if (members > 0) {
        throw new DroverError('DROVER_GROUP_NOT_EMPTY', `Group "${group.name}" still has ${members} device(s).`);
      }
      await tx.groups.delete(group.id);
      await tx.emit({ type: 'group.deleted', deviceId: null, actor, data: { groupId: group.id, name: group.name } });
    });
  }
}
