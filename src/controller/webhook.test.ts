import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { deliveryId, hasCredentials, verifyWebhook } from './webhook.ts';

const secret = 's3cret-value';
const body = Buffer.from(JSON.stringify({ ref: 'refs/heads/main' }));
const hmac = (s: string) => createHmac('sha256', s).update(body).digest('hex');

describe('verifyWebhook', () => {
  it('accepts each provider with the right secret and names the pushed ref', () => {
    for (const headers of [
      { 'x-hub-signature-256': `sha256=${hmac(secret)}` },
      { 'x-gitea-signature': hmac(secret) },
      { 'x-gitlab-token': secret },
      { authorization: `Bearer ${secret}` },
      { 'x-strata-signature': `sha256=${hmac(secret)}` },
    ]) {
      const r = verifyWebhook(headers, body, secret);
      expect(r, JSON.stringify(headers)).toMatchObject({ ok: true, ref: 'refs/heads/main' });
    }
  });

  it('refuses a wrong secret, a tampered body and no signature, without echoing secrets', () => {
    const cases = [
      { 'x-hub-signature-256': `sha256=${hmac('wrong')}` },
      { 'x-gitea-signature': hmac('wrong') },
      { 'x-gitlab-token': 'wrong' },
      { authorization: 'Bearer wrong' },
      {},
    ];
    for (const headers of cases) {
      const r = verifyWebhook(headers, body, secret);
      expect(r.ok, JSON.stringify(headers)).toBe(false);
      expect(JSON.stringify(r)).not.toContain(secret);
    }
    const tampered = verifyWebhook({ 'x-hub-signature-256': `sha256=${hmac(secret)}` }, Buffer.from('{"ref":"refs/heads/evil"}'), secret);
    expect(tampered.ok).toBe(false);
  });
});

describe('deliveryId', () => {
  it("reads each provider's delivery header, and nothing when there is none", () => {
    expect(deliveryId({ 'x-github-delivery': ' 72d3162e-cc78-11e3-81ab-4c9367dc0958 ' }, 'github')).toEqual({ header: 'x-github-delivery', id: '72d3162e-cc78-11e3-81ab-4c9367dc0958' });
    expect(deliveryId({ 'x-gitea-delivery': 'g1' }, 'gitea')).toEqual({ header: 'x-gitea-delivery', id: 'g1' });
    expect(deliveryId({ 'x-forgejo-delivery': 'f1' }, 'gitea')).toEqual({ header: 'x-forgejo-delivery', id: 'f1' });
    expect(deliveryId({ 'x-gitlab-event-uuid': 'l1' }, 'gitlab')).toEqual({ header: 'x-gitlab-event-uuid', id: 'l1' });
    expect(deliveryId({ 'x-strata-delivery': 's1' }, 'generic')).toEqual({ header: 'x-strata-delivery', id: 's1' });
    // A GitHub id does not count for a GitLab-authenticated request (another provider's header).
    expect(deliveryId({ 'x-github-delivery': 'x' }, 'gitlab')).toBeUndefined();
    expect(deliveryId({ 'x-github-delivery': '  ' }, 'github')).toBeUndefined();
    expect(deliveryId({}, 'generic')).toBeUndefined();
  });
});

describe('hasCredentials', () => {
  it('is true for any header verifyWebhook reads, false for none', () => {
    for (const h of ['x-hub-signature-256', 'x-gitea-signature', 'x-gitlab-token', 'authorization', 'x-strata-signature']) expect(hasCredentials({ [h]: 'x' }), h).toBe(true);
    expect(hasCredentials({ 'x-github-delivery': 'x', 'content-type': 'application/json' })).toBe(false);
  });
});
