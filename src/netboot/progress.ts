// Boot progress: turns netboot traffic into the device's timeline. A DHCP answer becomes a
// `boot.dhcp` event; the TFTP transfers of one boot become one `boot.tftp` event (files, bytes,
// time) once the device has been quiet for a moment, rather than an event per file.
import type { Device } from '../domain/records.js';
import { inTransaction } from '../services/context.js';
import type { Services } from '../services/index.js';

interface TftpBurst {
  device: Device;
  /** Where the transfers came from: the device's address, which proxy DHCP never learns. */
  ip: string | null;
  files: { file: string; bytes: number; outcome: string }[];
  started: number;
  timer: NodeJS.Timeout;
}

const QUIET_MS = 2000;
const DHCP_EVENT_INTERVAL_MS = 20_000;
/** A device that was last seen this long ago is starting a new boot. */
const NEW_BOOT_AFTER_MS = 60_000;

export class BootProgress {
  private readonly bursts = new Map<string, TftpBurst>();
  private readonly lastDhcp = new Map<string, number>();

  constructor(
    private readonly services: Services,
    private readonly quietMs = QUIET_MS,
  ) {}

  /** A DHCP exchange with a known device (rate-limited: the ROM retries every few seconds). */
  async dhcp(device: Device, data: Record<string, unknown>): Promise<void> {
    const now = Date.now();
    if (now - (this.lastDhcp.get(device.id) ?? 0) < DHCP_EVENT_INTERVAL_MS) return;
    this.lastDhcp.set(device.id, now);
    await this.touch(device, 'boot.dhcp', null, data);
  }

  /** A completed or abandoned TFTP transfer for a device. */
  tftp(device: Device, file: string, bytes: number, outcome: string, ip: string | null = null): void {
    let b = this.bursts.get(device.id);
    if (!b) {
      b = { device, ip, files: [], started: Date.now(), timer: setTimeout(() => undefined, 0) };
      this.bursts.set(device.id, b);
    }
    if (ip) b.ip = ip;
    // The probe for start4.elf and the tsize "early terminate" are not files served.
    if (outcome !== 'early-terminate') b.files.push({ file, bytes, outcome });
    clearTimeout(b.timer);
    b.timer = setTimeout(() => void this.flush(device.id), this.quietMs);
  }

  async flush(deviceId?: string): Promise<void> {
    for (const id of deviceId ? [deviceId] : [...this.bursts.keys()]) {
      const b = this.bursts.get(id);
      if (!b) continue;
      this.bursts.delete(id);
      clearTimeout(b.timer);
      if (b.files.length === 0) continue;
      const ok = b.files.filter((f) => f.outcome === 'complete');
      await this.touch(b.device, 'boot.tftp', b.ip, {
        files: ok.length,
        bytes: ok.reduce((n, f) => n + f.bytes, 0),
        ms: Date.now() - b.started - this.quietMs,
        failed: b.files.length - ok.length,
        names: ok.map((f) => f.file).slice(0, 100),
      });
    }
  }

  stop(): void {
    for (const b of this.bursts.values()) clearTimeout(b.timer);
    this.bursts.clear();
  }

  private async touch(device: Device, type: string, ip: string | null, data: Record<string, unknown>): Promise<void> {
    await inTransaction(this.services.ctx, async (tx) => {
      const current = await tx.devices.get(device.id);
      if (!current) return;
      const fresh = !current.lastSeen || Date.parse(tx.now) - Date.parse(current.lastSeen) > NEW_BOOT_AFTER_MS;
      // An accepted device that netboots is booting; a running, suspect or failed one is booting
      // again when this is a new boot (DHCP, or the first traffic after a quiet spell).
      const rebooting = ['running', 'suspect', 'failed'].includes(current.state) && (fresh || type === 'boot.dhcp');
      const state = current.state === 'accepted' || rebooting ? 'booting' : current.state;
      const ipAddresses = ip && !ip.startsWith('127.') && current.ipAddresses[0] !== ip ? [ip] : undefined;
      const updated = await tx.devices.update(current.id, { lastSeen: tx.now, firstSeen: current.firstSeen ?? tx.now, state, ipAddresses }, tx.now);
      await tx.emit({ type, deviceId: device.id, actor: 'netboot', data });
      tx.changed(updated);
    });
  }
}
