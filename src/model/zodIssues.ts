import type { z } from 'zod';
import type { ModelIssue } from '../errors.ts';
import { fieldName, type FieldPath } from './fieldPath.ts';
import type { YamlSource } from './yamlSource.ts';

/** Turns zod's issues into model issues that point at the offending field in the file. */
export function toModelIssues(source: YamlSource, error: z.ZodError, prefix: FieldPath = []): ModelIssue[] {
  const out: ModelIssue[] = [];
  for (const issue of error.issues) {
    const path = [...prefix, ...(issue.path as (string | number)[])];
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const at = [...path, key];
        out.push({ ...source.locate(at), field: fieldName(at), message: `unknown field "${key}"` });
      }
      continue;
    }
    const absent = issue.code !== 'invalid_key' && path.length > 0 && !source.has(path) && source.has(path.slice(0, -1));
    out.push({ ...source.locate(path), field: fieldName(path), message: absent ? `is required (${describe(issue)})` : describe(issue) });
  }
  return out;
}

function describe(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_key') {
    const name = String(issue.path[issue.path.length - 1] ?? '');
    return `${JSON.stringify(name)} is not a valid name: ${issue.issues.map((i) => i.message).join('; ')}`;
  }
  if (issue.code === 'invalid_type' && issue.message.includes('received undefined')) return `expected ${issue.expected}`;
  if (issue.code === 'invalid_type') return issue.message.replace(/^Invalid input: /, '');
  if (issue.code === 'too_big' && issue.origin === 'string') return `is too long (at most ${issue.maximum} characters)`;
  return issue.message.replace(/^Invalid (option|input): /, '');
}
