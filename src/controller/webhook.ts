import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export type WebhookProvider = 'github' | 'gitlab' | 'gitea' | 'generic';

export interface WebhookCheck {
  ok: boolean;
  provider: WebhookProvider;
  /** Why a request was refused (never includes the secret or the presented signature). */
  reason?: string;
  /** The pushed ref when the payload names one (refs/heads/main). */
  ref?: string;
}

/**
 * Verifies a push notification. GitHub signs the body (X-Hub-Signature-256: sha256=HMAC),
 * Gitea too (X-Gitea-Signature: hex HMAC), GitLab sends the secret itself (X-Gitlab-Token);
 * anything else must carry `Authorization: Bearer SECRET` or `X-Strata-Signature: sha256=HMAC`.
 */
export function verifyWebhook(headers: IncomingHttpHeaders, body: Buffer, secret: string): WebhookCheck {
  const h = (name: string) => {
    const v = headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  const hmac = createHmac('sha256', secret).update(body).digest('hex');
  let provider: WebhookProvider;
  let ok: boolean;
  if (h('x-gitea-signature') !== undefined) {
    provider = 'gitea';
    ok = equal(h('x-gitea-signature')!, hmac);
  } else if (h('x-hub-signature-256') !== undefined) {
    provider = 'github';
    ok = equal(h('x-hub-signature-256')!, `sha256=${hmac}`);
  } else if (h('x-gitlab-token') !== undefined) {
    provider = 'gitlab';
    ok = equal(h('x-gitlab-token')!, secret);
  } else {
    provider = 'generic';
    const auth = h('authorization');
    const sig = h('x-strata-signature');
    ok = (auth !== undefined && equal(auth, `Bearer ${secret}`)) || (sig !== undefined && equal(sig, `sha256=${hmac}`));
  }
  if (!ok) return { ok, provider, reason: `${provider} webhook: signature or token does not match` };
  return { ok, provider, ref: refOf(body) };
}

const CREDENTIAL_HEADERS = ['x-gitea-signature', 'x-hub-signature-256', 'x-gitlab-token', 'authorization', 'x-strata-signature'];

/** Whether a request carries anything verifyWebhook could accept (checked before its body is read). */
export function hasCredentials(headers: IncomingHttpHeaders): boolean {
  return CREDENTIAL_HEADERS.some((h) => headers[h] !== undefined);
}

/** The header that carries a provider's delivery id (a retry or a redelivery repeats it). */
export const DELIVERY_HEADER: Record<WebhookProvider, readonly string[]> = {
  github: ['x-github-delivery'],
  gitea: ['x-gitea-delivery', 'x-forgejo-delivery', 'x-gogs-delivery'],
  gitlab: ['x-gitlab-event-uuid'],
  generic: ['x-strata-delivery', 'x-github-delivery', 'x-gitea-delivery', 'x-gitlab-event-uuid'],
};

/** Longest delivery id kept (GitHub's and Gitea's are 36-character GUIDs). */
export const MAX_DELIVERY_ID = 256;

/**
 * The delivery id of a request from `provider`: the first of its delivery headers present,
 * with the header's name; undefined when the sender sends none (nothing to de-duplicate on).
 */
export function deliveryId(headers: IncomingHttpHeaders, provider: WebhookProvider): { header: string; id: string } | undefined {
  for (const header of DELIVERY_HEADER[provider]) {
    const v = headers[header];
    const id = (Array.isArray(v) ? v[0] : v)?.trim();
    if (id) return { header, id };
  }
  return undefined;
}

function equal(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function refOf(body: Buffer): string | undefined {
  try {
    const ref = (JSON.parse(body.toString('utf8')) as { ref?: unknown }).ref;
    return typeof ref === 'string' ? ref : undefined;
  } catch {
    return undefined;
  }
}
