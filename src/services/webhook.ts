// Health alerts to a webhook: JSON POSTs signed with HMAC-SHA256 over the exact body
// (`X-Drover-Signature: sha256=<hex>`, like GitHub's), retried with back-off, each delivery an
// event. Deliveries run in the background, one at a time per notifier, so a slow receiver
// never stalls health evaluation; the queue is bounded and a dropped alert is logged.
import { createHmac, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { inTransaction, type ServiceContext } from './context.js';

export interface WebhookOptions {
  url: string;
  secret: string | null;
  /** Retries after the first attempt. */
  retries?: number;
  /** First back-off; each retry waits 4× longer. */
  backoffMs?: number;
  timeoutMs?: number;
  logger?: Logger | undefined;
}

export interface Alert {
  type: string;
  deviceId: string | null;
  device?: { id: string; serial: string; hostname: string | null } | undefined;
  data: Record<string, unknown>;
}

const QUEUE_MAX = 1000;

export function sign(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export class WebhookNotifier {
  private readonly queue: Alert[] = [];
  private running: Promise<void> | null = null;
  private closed = false;

  constructor(
    private readonly ctx: ServiceContext,
    private readonly opts: WebhookOptions,
  ) {}

  notify(alert: Alert): void {
    if (this.closed) return;
    if (this.queue.length >= QUEUE_MAX) {
      this.opts.logger?.error({ type: alert.type, device: alert.deviceId }, 'webhook queue full; alert dropped');
      return;
    }
    this.queue.push(alert);
    this.running ??= this.drain().finally(() => {
      this.running = null;
    });
  }

  /** Resolves when everything queued so far has been delivered or given up. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    for (let alert = this.queue.shift(); alert; alert = this.queue.shift()) await this.deliver(alert);
  }

  private async deliver(alert: Alert): Promise<void> {
    const id = randomUUID();
    const body = JSON.stringify({ id, type: alert.type, time: this.ctx.clock().toISOString(), device: alert.device ?? (alert.deviceId ? { id: alert.deviceId } : null), data: alert.data });
    const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'drover-webhook', 'x-drover-event': alert.type, 'x-drover-delivery': id };
    if (this.opts.secret) headers['x-drover-signature'] = sign(this.opts.secret, body);
    const retries = this.opts.retries ?? 3;
    let wait = this.opts.backoffMs ?? 1000;
    let last = '';
    for (let attempt = 1; attempt <= retries + 1; attempt++) {
      try {
        const res = await fetch(this.opts.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(this.opts.timeoutMs ?? 10_000) });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) {
          await this.record('webhook.delivered', alert, { delivery: id, alert: alert.type, attempt, status: res.status });
          return;
        }
        last = `HTTP ${res.status}`;
      } catch (err) {
        last = (err as Error).message;
      }
      if (attempt <= retries && !this.closed) {
        await new Promise((r) => setTimeout(r, wait));
        wait *= 4;
      }
    }
    this.opts.logger?.warn({ delivery: id, type: alert.type, error: last }, 'webhook delivery failed');
    await this.record('webhook.failed', alert, { delivery: id, alert: alert.type, attempts: retries + 1, error: last });
  }

  private async record(type: string, alert: Alert, data: Record<string, unknown>): Promise<void> {
    try {
      await inTransaction(this.ctx, (tx) => tx.emit({ type, deviceId: alert.deviceId, actor: 'webhook', data }));
    } catch (err) {
      this.opts.logger?.error({ err }, 'could not record a webhook delivery');
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.queue.length = 0;
    await this.idle();
  }
}
