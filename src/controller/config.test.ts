import { afterEach, describe, expect, it } from 'vitest';
import { ModelError } from '../errors.ts';
import { HTTP_DEFAULTS, httpLimits } from './config.ts';
import { parseControllerConfig } from './loadConfig.ts';

const BASE = `deployments:
  - name: web
    repository:
      url: https://git.example.com/org/deploy.git
      interval: 30s
      password: { env: GIT_TOKEN }
    interval: 5m
    webhook:
      secret: file:/etc/strata/secrets/webhook-secret
`;

afterEach(() => {
  delete process.env.STRATA_LISTEN;
  delete process.env.STRATA_STATE_DIR;
});

describe('controller configuration', () => {
  it('fills defaults, turns durations into milliseconds and reads both secret forms', () => {
    const c = parseControllerConfig('c.yaml', BASE);
    expect(c.listen).toBe('127.0.0.1:8080');
    expect(c.stateDir).toBe('/var/lib/strata-controller');
    const d = c.deployments[0]!;
    expect([d.repository.interval, d.interval, d.path, d.selfHeal, d.suspended]).toEqual([30_000, 300_000, 'strata.yaml', true, false]);
    expect(d.repository.password).toEqual({ env: 'GIT_TOKEN' });
    expect(d.webhook?.secret).toEqual({ file: '/etc/strata/secrets/webhook-secret' });
  });

  it('takes listen and stateDir from the environment when the file leaves them out', () => {
    process.env.STRATA_LISTEN = '0.0.0.0:9000';
    process.env.STRATA_STATE_DIR = '/data';
    const c = parseControllerConfig('c.yaml', BASE);
    expect([c.listen, c.stateDir]).toEqual(['0.0.0.0:9000', '/data']);
    expect(parseControllerConfig('c.yaml', `listen: 127.0.0.1:1\n${BASE}`).listen).toBe('127.0.0.1:1');
  });

  it('names file, line and field of every problem', () => {
    const bad = BASE.replace('interval: 5m', 'interval: soon').replace('{ env: GIT_TOKEN }', '{ env: GIT_TOKEN, file: /x }');
    try {
      parseControllerConfig('c.yaml', bad);
      throw new Error('expected an error');
    } catch (e) {
      expect(e).toBeInstanceOf(ModelError);
      const issues = (e as ModelError).issues.map((i) => `${i.line}:${i.field}`);
      expect(issues).toContain('7:deployments[0].interval');
      expect(issues).toContain('6:deployments[0].repository.password');
    }
  });

  it('refuses two deployments with one name, and a branch together with a tag', () => {
    expect(() => parseControllerConfig('c.yaml', `${BASE}${BASE.replace('deployments:\n', '')}`)).toThrow(/configured twice/);
    expect(() => parseControllerConfig('c.yaml', BASE.replace('      interval: 30s', '      branch: main\n      tag: v1'))).toThrow(/at most one of/);
  });

  it('bounds HTTP requests by default and takes other bounds with units', () => {
    expect(httpLimits(parseControllerConfig('c.yaml', BASE).http)).toEqual({
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 30_000,
      bodyIdleTimeoutMs: 10_000,
      maxBodyBytes: 1024 * 1024,
      maxWebhookBodyBytes: 25 * 1024 * 1024,
    });
    expect(HTTP_DEFAULTS.requestTimeoutMs).toBeLessThan(45_000);
    const c = parseControllerConfig('c.yaml', `http:\n  headersTimeout: 2s\n  requestTimeout: 5s\n  bodyIdleTimeout: 500ms\n  maxBodySize: 64KiB\n  maxWebhookBodySize: 1048576\n${BASE}`);
    expect(httpLimits(c.http)).toEqual({ headersTimeoutMs: 2000, requestTimeoutMs: 5000, bodyIdleTimeoutMs: 500, maxBodyBytes: 65536, maxWebhookBodyBytes: 1048576 });
  });

  it('refuses HTTP bounds that make no sense, naming the field', () => {
    const bad = (http: string) => {
      try {
        parseControllerConfig('c.yaml', `http:\n${http}\n${BASE}`);
      } catch (e) {
        return (e as ModelError).message;
      }
      throw new Error(`accepted ${http}`);
    };
    expect(bad('  headersTimeout: 1m\n  requestTimeout: 30s')).toMatch(/^c\.yaml:2:\d+: http\.headersTimeout: headersTimeout must not be longer than requestTimeout/);
    expect(bad('  maxBodySize: 1MB')).toMatch(/c\.yaml:2:\d+: http\.maxBodySize: .*"1MiB"/);
    expect(bad('  maxBodySize: 0')).toMatch(/http\.maxBodySize/);
    expect(bad('  requestTimout: 5s')).toMatch(/requestTimout/);
  });
});
