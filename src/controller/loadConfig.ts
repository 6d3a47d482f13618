import { readFileSync } from 'node:fs';
import { ModelError, type ModelIssue } from '../errors.ts';
import { parseYamlFile } from '../model/yamlSource.ts';
import { toModelIssues } from '../model/zodIssues.ts';
import { controllerConfig, type ControllerConfig } from './config.ts';

/** Parses a controller configuration text; errors name file:line:column like model errors. */
export function parseControllerConfig(file: string, text: string): ControllerConfig {
  const source = parseYamlFile(file, text);
  const result = controllerConfig.safeParse(withEnvDefaults(source.value));
  if (!result.success) throw new ModelError(toModelIssues(source, result.error));
  const dupes: ModelIssue[] = [];
  const seen = new Set<string>();
  result.data.deployments.forEach((d, i) => {
    if (seen.has(d.name)) dupes.push({ ...source.locate(['deployments', i, 'name']), field: `deployments[${i}].name`, message: `deployment "${d.name}" is configured twice` });
    seen.add(d.name);
  });
  if (dupes.length) throw new ModelError(dupes);
  return result.data;
}

/** STRATA_LISTEN and STRATA_STATE_DIR stand in for listen and stateDir when the file leaves them out (containers). */
function withEnvDefaults(value: unknown): unknown {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return value;
  const v = value as Record<string, unknown>;
  return {
    ...(process.env.STRATA_LISTEN && v.listen === undefined ? { listen: process.env.STRATA_LISTEN } : {}),
    ...(process.env.STRATA_STATE_DIR && v.stateDir === undefined ? { stateDir: process.env.STRATA_STATE_DIR } : {}),
    ...v,
  };
}

export function loadControllerConfig(file: string): ControllerConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ModelError([{ file, line: 1, column: 1, field: '', message: `cannot read the controller configuration: ${(e as NodeJS.ErrnoException).code ?? 'error'}` }]);
  }
  return parseControllerConfig(file, text);
}
