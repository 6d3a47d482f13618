import { posix } from 'node:path';
import type { ModelIssue } from '../errors.ts';
import type { ArtifactSource } from './types.ts';
import type { Models } from '../model/types.ts';
import { fieldName } from '../model/fieldPath.ts';

type Field = { kind: 'network' | 'services'; path: (string | number)[] };

/**
 * The model fields that name an artifact source (a service's or daemon's `artifact`, a
 * machine file's `source`, or its `path` for inline content), so that an artifact that
 * cannot be read is reported where it was written: `services.yaml:7:5: services.api.artifact: …`.
 * Falls back to the root file when no field names it (it cannot happen with resolved models).
 */
export function artifactIssues(models: Models, source: ArtifactSource, message: string): ModelIssue[] {
  const fields: Field[] = [];
  for (const [m, machine] of Object.entries(models.machines)) {
    machine.files.forEach((f, i) => {
      if (source.kind === 'file' && f.sourceFile === source.path) fields.push({ kind: 'network', path: ['machines', m, 'files', i, 'source'] });
      if (source.kind === 'inline' && f.sourceFile === undefined && posix.basename(f.path) === source.name) fields.push({ kind: 'network', path: ['machines', m, 'files', i, 'path'] });
    });
    if (source.kind === 'dir') {
      for (const [d, daemon] of Object.entries(machine.daemons)) {
        if (daemon.artifactDir === source.path) fields.push({ kind: 'network', path: ['machines', m, 'daemons', d, 'artifact'] });
      }
    }
  }
  if (source.kind === 'dir') {
    for (const name of Object.keys(models.distribution)) {
      if (models.services[name]?.artifactDir === source.path) fields.push({ kind: 'services', path: ['services', name, 'artifact'] });
    }
  }
  if (fields.length === 0) return [{ file: models.rootFile, line: 1, column: 1, field: '', message }];
  return fields.map((f) => ({ ...models.locate(f.kind, f.path), field: fieldName(f.path), message }));
}
