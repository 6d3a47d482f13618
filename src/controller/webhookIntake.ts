import type { IncomingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import { readSecret } from '../git/secrets.ts';
import type { DeploymentRecord } from './deploymentRecord.ts';
import { DeliveryLog } from './deliveryLog.ts';
import type { ControllerMetrics } from './metrics.ts';
import { deliveryId, hasCredentials, MAX_DELIVERY_ID, verifyWebhook } from './webhook.ts';

type Answer = { status: number; message: string };

/** Where webhooks arrive (docs/controller.md, "Webhooks"): verified, de-duplicated, then a queued reconcile. */
export class WebhookIntake {
  /** Webhook deliveries seen in the last hour, by deployment and delivery id. */
  private readonly deliveries = new DeliveryLog();

  constructor(private readonly deps: { metrics: ControllerMetrics; log: () => Logger; enqueue: (name: string, why: string) => void }) {}

  /**
   * Refuses a webhook request that cannot succeed before its body is read (and buffered): an
   * unknown deployment, one without a webhook, a request with no signature or token at all.
   */
  refusal(d: DeploymentRecord, headers: IncomingHttpHeaders): Answer | undefined {
    const name = d.config.name;
    if (!d.config.webhook) return { status: 404, message: `deployment ${name} has no webhook configured` };
    if (!hasCredentials(headers)) {
      this.deps.metrics.webhookDeliveries.inc({ deployment: name, result: 'refused' });
      this.deps.log().warn({ deployment: name }, 'refused a webhook: no signature or token');
      return { status: 401, message: 'a webhook needs a signature or token (docs/controller.md, "Webhooks")' };
    }
    return undefined;
  }

  /**
   * Verifies a push notification; a good one queues a reconcile, a bad one queues nothing.
   * A delivery id seen in the last hour (a retry, a redelivery, a replay) is acknowledged and
   * queues nothing. Ids are recorded only after the signature or token matched, so a sender
   * without the secret cannot make the controller ignore a real delivery.
   */
  deliver(d: DeploymentRecord, headers: IncomingHttpHeaders, body: Buffer): Answer {
    const name = d.config.name;
    if (!d.config.webhook) return { status: 404, message: `deployment ${name} has no webhook configured` };
    const check = verifyWebhook(headers, body, readSecret(d.config.webhook.secret, `webhook secret of ${name}`));
    if (!check.ok) {
      this.deps.metrics.webhookDeliveries.inc({ deployment: name, result: 'refused' });
      this.deps.log().warn({ deployment: name, provider: check.provider }, `refused a webhook: ${check.reason}`);
      return { status: 401, message: check.reason ?? 'unauthorized' };
    }
    const delivery = deliveryId(headers, check.provider);
    if (delivery && delivery.id.length > MAX_DELIVERY_ID) {
      this.deps.metrics.webhookDeliveries.inc({ deployment: name, result: 'refused' });
      return { status: 400, message: `${delivery.header} is over ${MAX_DELIVERY_ID} characters: not a delivery id` };
    }
    if (delivery) {
      const key = `${name}\0${delivery.id}`;
      const seenAt = this.deliveries.seen(key);
      if (seenAt !== undefined) {
        this.deps.metrics.webhookDeliveries.inc({ deployment: name, result: 'replayed' });
        this.deps.log().info({ deployment: name, provider: check.provider, delivery: delivery.id }, 'a webhook delivery seen before was acknowledged and ignored');
        return { status: 200, message: `delivery ${delivery.id} was received already at ${new Date(seenAt).toISOString()}; nothing queued` };
      }
      this.deliveries.record(key);
    }
    this.deps.metrics.webhookDeliveries.inc({ deployment: name, result: 'queued' });
    this.deps.enqueue(name, `${check.provider} push${check.ref ? ` to ${check.ref}` : ''}`);
    return { status: 202, message: `reconcile of ${name} queued` };
  }
}
