// Fleet records: create, find, change and move devices through their lifecycle. Every change is
// one transaction with its event.
import {
  mergeLabels,
  normalizeMac,
  normalizeSerial,
  transition,
  validateHostname,
  validateLabels,
  type BootMode,
  type DeviceAction,
  type DeviceState,
} from '../domain/device.js';
import { DroverError } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import type { Device, Page } from '../domain/records.js';
import type { DeviceFilter, DevicePatch } from '../store/repositories/devices.repository.js';
import type { Repositories } from '../store/store.js';
import { inTransaction, type ServiceContext } from './context.js';

export interface CreateDeviceInput {
  serial: string;
  macs?: string[] | undefined;
  model?: string | null | undefined;
  boardRevision?: string | null | undefined;
  hostname?: string | null | undefined;
  labels?: Record<string, string> | undefined;
  groupId?: string | null | undefined;
  imageId?: string | null | undefined;
  bootMode?: BootMode | null | undefined;
  state?: Extract<DeviceState, 'incoming' | 'accepted'> | undefined;
}

export interface PatchDeviceInput {
  hostname?: string | null | undefined;
  labels?: Record<string, string | null> | undefined;
  groupId?: string | null | undefined;
  model?: string | null | undefined;
  boardRevision?: string | null | undefined;
  bootMode?: BootMode | null | undefined;
  macs?: string[] | undefined;
  settings?: Record<string, unknown> | undefined;
}

export class DevicesService {
  constructor(private readonly ctx: ServiceContext) {}

  list(filter: DeviceFilter, page: { limit: number; cursor?: string | undefined }): Promise<Page<Device>> {
    return this.ctx.store.devices.list(filter, page);
  }

  get(ref: string): Promise<Device> {
    return resolveDevice(this.ctx.store, ref);
  }

  create(input: CreateDeviceInput, actor: string): Promise<Device> {
    const serial = normalizeSerial(input.serial);
    const macs = [...new Set((input.macs ?? []).map(normalizeMac))];
    const labels = input.labels ?? {};
    validateLabels(labels);
    const hostname = input.hostname ? validateHostname(input.hostname) : null;
    return inTransaction(this.ctx, async (tx) => {
      const groupId = input.groupId ? (await resolveGroup(tx, input.groupId)).id : null;
      const imageId = input.imageId ? (await resolveImage(tx, input.imageId)).id : null;
      const device = await tx.devices.create({
        id: newId('dev'),
        serial,
        macs,
        model: input.model ?? null,
        boardRevision: input.boardRevision ?? null,
        hostname,
        labels,
        groupId,
        imageId,
        bootMode: input.bootMode ?? null,
        state: input.state ?? 'accepted',
        ipAddresses: [],
        firstSeen: null,
        lastSeen: null,
        createdAt: tx.now,
      });
      await tx.emit({ type: 'device.created', deviceId: device.id, actor, data: { serial, state: device.state } });
      tx.changed(device);
      return device;
    });
  }

  patch(ref: string, input: PatchDeviceInput, actor: string): Promise<Device> {
    if (input.labels) validateLabels(input.labels);
    const hostname = input.hostname ? validateHostname(input.hostname) : input.hostname;
    const macs = input.macs && [...new Set(input.macs.map(normalizeMac))];
    return inTransaction(this.ctx, async (tx) => {
      const current = await resolveDevice(tx, ref);
      const groupId = input.groupId ? (await resolveGroup(tx, input.groupId)).id : input.groupId;
      const device = await tx.devices.update(
        current.id,
        {
          hostname,
          groupId,
          model: input.model,
          boardRevision: input.boardRevision,
          bootMode: input.bootMode,
          macs,
          settings: input.settings,
          labels: input.labels && mergeLabels(current.labels, input.labels),
        },
        tx.now,
      );
      const changed = Object.keys(input).filter((k) => (input as Record<string, unknown>)[k] !== undefined);
      await tx.emit({ type: 'device.updated', deviceId: device.id, actor, data: { fields: changed } });
      tx.changed(device);
      return device;
    });
  }

  act(ref: string, action: DeviceAction, actor: string, reason?: string): Promise<Device> {
    return inTransaction(this.ctx, async (tx) => {
      const current = await resolveDevice(tx, ref);
      const state = transition(current.state, action);
      const device = await tx.devices.update(current.id, { state }, tx.now);
      const type = { accept: 'device.accepted', reject: 'device.rejected', retire: 'device.retired' }[action];
      await tx.emit({ type, deviceId: device.id, actor, data: { from: current.state, to: state, ...(reason ? { reason } : {}) } });
      tx.changed(device);
      return device;
    });
  }

  assignImage(ref: string, imageRef: string | null, actor: string): Promise<Device> {
    return inTransaction(this.ctx, async (tx) => {
      const current = await resolveDevice(tx, ref);
      const image = imageRef ? await resolveImage(tx, imageRef) : null;
      const device = await tx.devices.update(current.id, { imageId: image?.id ?? null }, tx.now);
      await tx.emit({
        type: 'device.image-assigned',
        deviceId: device.id,
        actor,
        data: { from: current.imageId, to: device.imageId, ...(image ? { image: `${image.name}:${image.tag}` } : {}) },
      });
      tx.changed(device);
      return device;
    });
  }
}

const MAX_MACS = 4;

export interface NetbootSighting {
  serial: string | null;
  mac: string | null;
  model: string | null;
  boardRevision: string | null;
  ip: string | null;
  via: 'dhcp' | 'tftp';
}

/**
 * A bootloader showed up on the network: find its device (by serial, else MAC) and fill in what
 * the packet told us, or record it as incoming. Null when it cannot be keyed (a Pi 3B's DHCP
 * carries no serial; it is recorded when it asks for its boot files).
 */
export async function recordSighting(ctx: ServiceContext, s: NetbootSighting): Promise<Device | null> {
  const attempt = () =>
    inTransaction(ctx, async (tx) => {
      const found = (s.serial ? await tx.devices.findBySerial(s.serial) : undefined) ?? (s.mac ? await tx.devices.findByMac(s.mac) : undefined);
      if (!found) {
        if (!s.serial) return null;
        const device = await tx.devices.create({
          id: newId('dev'), serial: s.serial, macs: s.mac ? [s.mac] : [], model: s.model, boardRevision: s.boardRevision, hostname: null, labels: {},
          groupId: null, imageId: null, bootMode: null, state: 'incoming', ipAddresses: s.ip ? [s.ip] : [], firstSeen: tx.now, lastSeen: tx.now, createdAt: tx.now,
        });
        await tx.emit({ type: 'device.discovered', deviceId: device.id, actor: 'netboot', data: { via: s.via, serial: s.serial, ...(s.mac ? { mac: s.mac } : {}), ...(s.model ? { model: s.model } : {}) } });
        tx.changed(device);
        return device;
      }
      const patch: DevicePatch = {};
      // A Pi has one or two MACs (Ethernet, Wi-Fi); a serial claimed by many MACs is a misbehaving
      // or forged client, and its device keeps the addresses it already had.
      if (s.mac && found.macs.length < MAX_MACS && !found.macs.includes(s.mac) && !(await tx.devices.findByMac(s.mac))) patch.macs = [...found.macs, s.mac];
      if (!found.model && s.model) patch.model = s.model;
      if (!found.boardRevision && s.boardRevision) patch.boardRevision = s.boardRevision;
      if (s.ip && found.ipAddresses[0] !== s.ip) patch.ipAddresses = [s.ip];
      if (Object.keys(patch).length === 0) return found;
      const device = await tx.devices.update(found.id, patch, tx.now);
      tx.changed(device);
      return device;
    });
  try {
    return await attempt();
  } catch (err) {
    // Parallel packets from one Pi: the other one recorded it first.
    if (err instanceof DroverError && err.code === 'DROVER_DEVICE_EXISTS') return attempt();
    throw err;
  }
}

/**
 * Finds a device by what a person would type: its id, serial (8 or 16 hex digits), a MAC, or a
 * hostname when exactly one device has it.
 */
export async function resolveDevice(repos: Repositories, ref: string): Promise<Device> {
  const r = ref.trim();
  const serial = tryNormalize(normalizeSerial, r);
  const mac = tryNormalize(normalizeMac, r);
  const found =
    (r.startsWith('dev_') ? await repos.devices.get(r) : undefined) ??
    (serial ? await repos.devices.findBySerial(serial) : undefined) ??
    (mac ? await repos.devices.findByMac(mac) : undefined);
  if (found) return found;
  const byName = await repos.devices.findByHostname(r.toLowerCase());
  if (byName.length === 1) return byName[0]!;
  if (byName.length > 1) {
    throw new DroverError('DROVER_DEVICE_NOT_FOUND', `Hostname "${r}" matches ${byName.length} devices; use an id or serial.`);
  }
  throw new DroverError('DROVER_DEVICE_NOT_FOUND', `No device matches "${r.slice(0, 64)}".`);
}

export async function resolveGroup(repos: Repositories, ref: string) {
  const g = (await repos.groups.get(ref)) ?? (await repos.groups.findByName(ref));
  if (!g) throw new DroverError('DROVER_GROUP_NOT_FOUND', `No group matches "${ref.slice(0, 64)}".`);
  return g;
}

/** An image by id, `name:tag`, or `name` (tag `latest`). */
export async function resolveImage(repos: Repositories, ref: string) {
  const [name, tag] = ref.includes(':') ? [ref.slice(0, ref.lastIndexOf(':')), ref.slice(ref.lastIndexOf(':') + 1)] : [ref, 'latest'];
  const img = (await repos.images.get(ref)) ?? (await repos.images.findByName(name, tag));
  if (!img) throw new DroverError('DROVER_IMAGE_NOT_FOUND', `No image matches "${ref.slice(0, 64)}".`);
  return img;
}

function tryNormalize(fn: (s: string) => string, s: string): string | undefined {
  try {
    return fn(s);
  } catch {
    return undefined;
  }
}
