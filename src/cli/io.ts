import { parseArgs, type ParseArgsConfig } from 'node:util';
import { defaultStateDir } from '../api/stateLocation.ts';
import { UsageError } from '../errors.ts';
import { nameProblem, quoteName } from '../model/names.ts';

/** Where a command writes: results to stdout, progress and errors to stderr. */
export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  /** Whether stderr is a terminal (progress may then be terser). */
  tty: boolean;
}

export const processIo: Io = {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
  tty: Boolean(process.stderr.isTTY),
};

export const GLOBAL_OPTIONS = {
  state: { type: 'string' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

/** parseArgs with strata's global options; unknown options are usage errors. */
export function parse<O extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, options: { ...GLOBAL_OPTIONS, ...options }, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/**
 * The state directory: --state DIR, else $STRATA_STATE_DIR, else `.strata` beside the root file
 * (ROOT, default strata.yaml in the working directory), so every command finds the same state
 * whatever directory it is run from.
 */
export function stateDirOf(values: { state?: unknown }, rootFile = 'strata.yaml'): string {
  const given = (values.state as string | undefined) ?? process.env.STRATA_STATE_DIR;
  if (given !== undefined && given === '') throw new UsageError('the state directory (--state or $STRATA_STATE_DIR) is empty');
  return given ?? defaultStateDir(rootFile);
}

export function rootFileOf(positionals: string[]): string {
  return positionals[0] ?? 'strata.yaml';
}

/**
 * The value of a name option (`--deployment`, `--service`, `--machine`), checked with the rule
 * the models use for names before anything uses it, for a lookup or as part of a path in the
 * state directory: `snp/../snp`, `/etc`, `..`, "", control characters are usage errors (exit 2).
 */
export function nameOption(value: string | undefined, flag: string): string | undefined {
  if (value === undefined) return undefined;
  const problem = nameProblem(value);
  if (problem) throw new UsageError(`${flag} ${quoteName(value)} is not a valid name: ${problem}`);
  return value;
}
