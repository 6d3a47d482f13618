import { describe, expect, it } from 'vitest';
import { isEmptyPlan, planTransition } from './diff.ts';
import { DIST, hashArtifact, indexOf, manifest, MOTD, NETWORK, order, recorded, stepOf } from '../../test/support/diffFixtures.ts';

describe('planTransition', () => {
  it('activates everything in dependency order on a first deployment', () => {
    const desired = manifest();
    const p = planTransition(undefined, desired);
    expect(p.format).toBe('strata-plan/2');
    expect(p.kind).toBe('transition');
    expect(p.deployment).toBe('hello');
    expect(p.basis).toEqual({ generation: null, manifestHash: null });
    expect(p.generation).toBe(1);
    expect(p.desired).toBe(desired);
    expect(p.steps.every((s) => s.action === 'activate' && s.phase === 'activate')).toBe(true);
    expect(p.steps).toHaveLength(4);
    expect(p.steps.map((s) => s.id)).toEqual(['1', '2', '3', '4']);

    const server = stepOf(p, 'activate', 'm2', 'hello-world-server');
    for (const m of ['m1', 'm3']) {
      const client = stepOf(p, 'activate', m, 'hello-world-client');
      expect(indexOf(p, client)).toBeGreaterThan(indexOf(p, server));
      expect(client.after).toEqual([server.id]);
    }
    expect(server.after).toEqual([]);
    expect(stepOf(p, 'activate', 'm2', 'extra').after).toEqual([]);

    expect(p.changes.every((c) => c.action === 'add')).toBe(true);
    expect(p.changes.map((c) => `${c.name}@${c.machine}`)).toEqual(['extra@m2', 'hello-world-client@m1', 'hello-world-client@m3', 'hello-world-server@m2']);
    expect(p.machines).toEqual(['m1', 'm2', 'm3']);
    expect(isEmptyPlan(p)).toBe(false);
  });

  it('plans nothing for an identical manifest', () => {
    const m = manifest();
    const p = planTransition(recorded(m, 7), manifest());
    expect(p.steps).toEqual([]);
    expect(p.changes).toEqual([]);
    expect(p.uploads).toEqual({});
    expect(p.machines).toEqual([]);
    expect(p.basis).toEqual({ generation: 7, manifestHash: m.hash });
    expect(p.generation).toBe(8);
    expect(isEmptyPlan(p)).toBe(true);
  });

  it('is not empty for a first deployment of nothing-to-do models', () => {
    // no services, no infrastructure: no steps, but nothing is recorded yet either
    const none = manifest({ services: 'services: {}\n', distribution: 'distribution: {}\n' });
    const p = planTransition(undefined, none);
    expect(p.steps).toEqual([]);
    expect(isEmptyPlan(p)).toBe(false);
  });

  describe('moving the server', () => {
    const before = manifest();
    const after = manifest({ distribution: DIST.replace('hello-world-server: m2', 'hello-world-server: m3') });
    const p = planTransition(recorded(before, 4), after);

    it('records the basis and the next generation', () => {
      expect(p.basis).toEqual({ generation: 4, manifestHash: before.hash });
      expect(p.generation).toBe(5);
      expect(isEmptyPlan(p)).toBe(false);
    });

    it('deactivates the dependents before the dependency, in the deactivate phase', () => {
      const oldServer = stepOf(p, 'deactivate', 'm2', 'hello-world-server');
      expect(oldServer.phase).toBe('deactivate');
      expect(oldServer.item).toBe(before.machines.m2!.items.find((i) => i.key === 's.hello-world-server'));
      const clients = ['m1', 'm3'].map((m) => stepOf(p, 'deactivate', m, 'hello-world-client'));
      for (const c of clients) {
        expect(c.phase).toBe('deactivate');
        expect(indexOf(p, c)).toBeLessThan(indexOf(p, oldServer));
        // the recorded version is deactivated
        expect(c.item.hash).toBe(before.machines[c.machine]!.items.find((i) => i.key === 's.hello-world-client')!.hash);
      }
      expect([...oldServer.after].sort()).toEqual(clients.map((c) => c.id).sort());
    });

    it('activates dependencies first, every deactivation before any activation', () => {
      const newServer = stepOf(p, 'activate', 'm3', 'hello-world-server');
      expect(newServer.phase).toBe('activate');
      for (const m of ['m1', 'm3']) {
        const c = stepOf(p, 'activate', m, 'hello-world-client');
        expect(c.after).toEqual([newServer.id]);
        expect(indexOf(p, c)).toBeGreaterThan(indexOf(p, newServer));
      }
      const lastDeactivate = Math.max(...p.steps.flatMap((s, i) => (s.action === 'deactivate' ? [i] : [])));
      const firstActivate = p.steps.findIndex((s) => s.action === 'activate');
      expect(lastDeactivate).toBeLessThan(firstActivate);
      expect(order(p)).toHaveLength(6);
      // the untouched service is not in the plan
      expect(p.steps.some((s) => s.item.name === 'extra')).toBe(false);
    });

    it('classifies the server as moved and the clients as upgraded because of the move', () => {
      const move = p.changes.filter((c) => c.action === 'move');
      expect(move).toEqual([{ action: 'move', layer: 'service', name: 'hello-world-server', machine: 'm3', from: 'm2', reasons: ['moved from m2 to m3'] }]);
      const upgrades = p.changes.filter((c) => c.action === 'upgrade');
      expect(upgrades.map((c) => c.machine).sort()).toEqual(['m1', 'm3']);
      for (const u of upgrades) {
        expect(u.name).toBe('hello-world-client');
        expect(u.reasons).toEqual(['address of hello-world-server changed']);
      }
      expect(p.changes).toHaveLength(3);
    });

    it('uploads only what a machine did not use before', () => {
      // m3 runs a client already, but not the server; m1 keeps its client artifact
      expect(p.uploads).toEqual({ m3: [{ hash: 'hash(/repo/server)', size: '/repo/server'.length }] });
      expect(p.machines).toEqual(['m1', 'm2', 'm3']);
    });
  });

  it('removes a service that left the models with a deactivate step', () => {
    const before = manifest();
    const after = manifest({ distribution: DIST.replace('  extra: m2\n', '') });
    const p = planTransition(recorded(before), after);
    expect(p.changes).toEqual([{ action: 'remove', layer: 'service', name: 'extra', machine: 'm2', reasons: ['no longer in the models'] }]);
    expect(p.steps).toHaveLength(1);
    expect(p.steps[0]).toMatchObject({ id: '1', phase: 'deactivate', action: 'deactivate', machine: 'm2', after: [] });
    expect(p.steps[0]!.item.name).toBe('extra');
    expect(p.uploads).toEqual({});
    expect(p.machines).toEqual(['m2']);
  });

  it('upgrades a service whose artifact changed, and only that one', () => {
    const before = manifest();
    const after = manifest({ hash: (s) => (s.kind === 'dir' && s.path === '/repo/extra' ? { hash: 'new-extra', size: 5, files: 1 } : hashArtifact(s)) });
    const p = planTransition(recorded(before), after);
    expect(p.changes).toEqual([{ action: 'upgrade', layer: 'service', name: 'extra', machine: 'm2', reasons: ['artifact changed'] }]);
    expect(order(p)).toEqual(['deactivate m2/extra', 'activate m2/extra']);
    expect(p.uploads).toEqual({ m2: [{ hash: 'new-extra', size: 5 }] });
  });

  it('runs infrastructure steps before service steps', () => {
    const before = manifest();
    const network = NETWORK.replace('  m1: { address: 10.0.0.1, allowedPaths: [/etc/hello] }', `  m1:\n    address: 10.0.0.1\n    allowedPaths: [/etc/hello]\n${MOTD}`);
    const after = manifest({ network, distribution: DIST.replace('hello-world-server: m2', 'hello-world-server: m3') });
    const p = planTransition(recorded(before), after);
    const infra = p.steps.filter((s) => s.item.layer === 'infrastructure');
    expect(infra).toHaveLength(1);
    expect(infra[0]).toMatchObject({ id: '1', phase: 'infrastructure', action: 'activate', machine: 'm1' });
    expect(infra[0]!.item.name).toBe('/etc/hello/motd');
    expect(p.steps.slice(1).every((s) => s.item.layer === 'service')).toBe(true);
    const phases = p.steps.map((s) => s.phase);
    expect(phases).toEqual(['infrastructure', 'deactivate', 'deactivate', 'deactivate', 'activate', 'activate', 'activate']);
    expect(p.changes[0]).toMatchObject({ action: 'add', layer: 'infrastructure', name: '/etc/hello/motd', machine: 'm1' });
    expect(p.uploads.m1).toEqual([{ hash: 'hash(inline:welcome)', size: 'inline:welcome'.length }]);
  });

  it('replaces a changed infrastructure item within its phase and removes old ones last', () => {
    const withMotd = (text: string) => NETWORK.replace('  m1: { address: 10.0.0.1, allowedPaths: [/etc/hello] }', `  m1:\n    address: 10.0.0.1\n    allowedPaths: [/etc/hello]\n${text}`);
    const before = manifest({ network: withMotd(MOTD) });
    const changed = manifest({ network: withMotd(MOTD.replace('welcome', 'hello again')) });
    const p = planTransition(recorded(before), changed);
    expect(p.steps.map((s) => `${s.phase}:${s.action}`)).toEqual(['infrastructure:deactivate', 'infrastructure:activate']);
    expect(p.steps[1]!.after).toEqual(['1']);
    expect(p.changes).toEqual([{ action: 'upgrade', layer: 'infrastructure', name: '/etc/hello/motd', machine: 'm1', reasons: ['artifact changed'] }]);

    // the file disappears and a service is added: the service first, the file in cleanup
    const gone = manifest({ distribution: DIST.replace('extra: m2', 'extra: [m1, m2]') });
    const q = planTransition(recorded(before), gone);
    expect(q.steps.map((s) => `${s.phase}:${s.action} ${s.machine}/${s.item.name}`)).toEqual(['activate:activate m1/extra', 'cleanup:deactivate m1//etc/hello/motd']);
    expect(q.changes.map((c) => `${c.action} ${c.layer} ${c.name}`)).toEqual(['remove infrastructure /etc/hello/motd', 'add service extra']);
  });

  it('does not upload an artifact the machine already has, even for a newly placed service', () => {
    const before = manifest();
    // the server also runs on m3 now; m3 never had the server artifact, m2 keeps it
    const after = manifest({ distribution: DIST.replace('hello-world-server: m2', 'hello-world-server: [m2, m3]') });
    const p = planTransition(recorded(before), after);
    expect(Object.keys(p.uploads)).toEqual(['m3']);
    // and a second client on m2, whose artifact m2 has never had, needs an upload on m2
    const again = manifest({ distribution: DIST.replace('hello-world-client: [m1, m3]', 'hello-world-client: [m1, m2, m3]') });
    const q = planTransition(recorded(before), again);
    expect(q.uploads).toEqual({ m2: [{ hash: 'hash(/repo/client)', size: '/repo/client'.length }] });
  });
});

// ---------------------------------------------------------------------------- stateful services
