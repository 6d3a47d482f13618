import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { verifyWebhook } from './webhook.ts';

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
