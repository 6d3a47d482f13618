import type { SourcePos } from '../errors.ts';
import type { Models } from '../model/types.ts';
import { claimId, type Claim } from './claims.ts';

/**
 * Where the models make each of `claims` (claimId → model field position), so a refusal names
 * the line to change. Pure; positions are computed here, when they are asked for.
 */
export function claimSources(models: Models, claims: Iterable<Claim>): Record<string, SourcePos & { field: string }> {
  const out: Record<string, SourcePos & { field: string }> = Object.create(null);
  for (const c of claims) {
    const path = fieldOf(models, c);
    if (path) out[claimId(c)] = { ...models.locate(path.kind, path.at), field: path.at.join('.') };
  }
  return out;
}

function fieldOf(models: Models, c: Claim): { kind: 'network' | 'services'; at: (string | number)[] } | undefined {
  const { item } = c;
  const machine = models.machines[c.machine];
  if (item.key.startsWith('s.')) {
    const service = models.services[item.name];
    if (!service) return undefined;
    if (c.kind === 'path') return { kind: 'services', at: ['services', item.name, 'path'] };
    const named = Object.entries(service.ports ?? {}).find(([, p]) => p === c.port);
    return { kind: 'services', at: named ? ['services', item.name, 'ports', named[0]] : ['services', item.name, 'ports'] };
  }
  if (!machine) return undefined;
  if (item.key.startsWith('d.')) {
    const named = Object.entries(machine.daemons[item.name]?.ports ?? {}).find(([, p]) => p === (c.kind === 'port' ? c.port : -1));
    return { kind: 'network', at: named ? ['machines', c.machine, 'daemons', item.name, 'ports', named[0]] : ['machines', c.machine, 'daemons', item.name] };
  }
  if (c.kind !== 'path') return undefined;
  if (item.module === 'directory') {
    const i = (machine.directories ?? []).findIndex((d) => d.path === c.path);
    return i < 0 ? undefined : { kind: 'network', at: ['machines', c.machine, 'directories', i, 'path'] };
  }
  const i = machine.files.findIndex((f) => f.path === c.path);
  return i < 0 ? undefined : { kind: 'network', at: ['machines', c.machine, 'files', i, 'path'] };
}
