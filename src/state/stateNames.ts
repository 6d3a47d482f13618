import { StateError } from '../errors.ts';
import { nameProblem, quoteName } from '../model/names.ts';

export type NameKind = 'deployment' | 'service' | 'machine';

/**
 * A deployment, service or machine name about to become a path component under the state
 * directory. Every path builder calls this, whoever its caller is (CLI, controller, recorded
 * state read back), so nothing but a model-valid name ever names a file there: no "/", no
 * "..", no control characters, never empty.
 */
export function pathName(kind: NameKind, name: string): string {
  const problem = typeof name === 'string' ? nameProblem(name) : 'it is not a string';
  if (problem === undefined) return name;
  throw new StateError('NAME_INVALID', `${quoteName(String(name))} is not a valid ${kind} name (${problem}); refusing to use it as a path in the state directory`, { kind });
}
