import { describe, expect, it } from 'vitest';
import type { DeploymentConfig } from './config.ts';
import { hasIntent, newRecord, queueIntent, retryAfter, retrySucceeded, takeIntent } from './deploymentRecord.ts';
import type { RevisionSource } from './revisionSource.ts';

const source = { label: 'file:///srv/git/app' } as RevisionSource;
const config = { name: 'app', suspended: false } as DeploymentConfig;
const settle = () => {};

describe('the deployment record', () => {
  it('starts Unknown, with nothing asked', () => {
    const d = newRecord(config, source);
    expect(d.status.conditions).toMatchObject([{ type: 'Ready', status: 'Unknown', reason: 'Starting' }]);
    expect(d.intents).toEqual([]);
  });

  it('queues intents, at most one of each kind; a second rollback or abandon is refused', () => {
    const d = newRecord(config, source);
    queueIntent(d, { kind: 'retry-commit' });
    queueIntent(d, { kind: 'retry-commit' });
    queueIntent(d, { kind: 'rollback', to: 2, settle });
    queueIntent(d, { kind: 'abandon', machine: 'web3', reason: 'disk died', by: 'ada', settle });
    expect(d.intents.map((i) => i.kind)).toEqual(['retry-commit', 'rollback', 'abandon']);
    expect(() => queueIntent(d, { kind: 'rollback', settle })).toThrow(expect.objectContaining({ code: 'ROLLBACK_PENDING' }));
    expect(() => queueIntent(d, { kind: 'abandon', machine: 'web1', reason: 'x', by: 'y', settle })).toThrow(/abandoning web3 of app is already waiting/);
  });

  it('takes an intent once', () => {
    const d = newRecord(config, source);
    queueIntent(d, { kind: 'rollback', to: 2, settle });
    expect(takeIntent(d, 'rollback')).toMatchObject({ kind: 'rollback', to: 2 });
    expect(takeIntent(d, 'rollback')).toBeUndefined();
    expect(hasIntent(d, 'rollback')).toBe(false);
  });

  it('shows the failures in a row of what fails now', () => {
    const d = newRecord(config, source);
    retryAfter(d, 'recovery');
    retryAfter(d, 'recovery');
    expect(d.status.consecutiveFailures).toBe(2);
    retrySucceeded(d, 'recovery');
    retryAfter(d, 'reconcile');
    expect(d.status.consecutiveFailures).toBe(1);
    retrySucceeded(d, 'reconcile');
    expect(d.status.consecutiveFailures).toBe(0);
  });
});
