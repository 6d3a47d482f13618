import { IDENTIFIER } from './schema.ts';

/** The name a service's address is given under in its dependents' environment: `hello-world-server` → `HELLO_WORLD_SERVER`. */
export function envPrefix(name: string): string {
  return name.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}

/** A postgresql-database service's database: its name with "-" as "_" (a safe name stays a safe SQL identifier). */
export function databaseName(service: string): string {
  return service.replace(/-/g, '_');
}

/**
 * Why `s` is not a name the models accept (machine, service, deployment, …), in words a person
 * can act on; undefined when it is one. The same rule as the schema's `identifier`, so a name
 * typed on the command line or sent to the API can name a file under the state directory only
 * when a model could have named it.
 */
export function nameProblem(s: string): string | undefined {
  if (IDENTIFIER.test(s)) return undefined;
  const why =
    s === ''
      ? 'it is empty'
      : s.includes('\u0000')
        ? 'it contains a NUL byte'
        : /[\u0000-\u001f\u007f-\u009f]/.test(s)
          ? 'it contains control characters'
          : s.includes('/') || s.includes('\\')
            ? 'it contains a path separator'
            : s === '.' || s === '..' || s.startsWith('.')
              ? 'it starts with "."'
              : s.length > 63
                ? `it is ${s.length} characters long`
                : !/^[A-Za-z]/.test(s)
                  ? 'it does not start with a letter'
                  : 'it contains characters other than letters, digits, "-" and "_"';
  return `${why}; a name is a letter, then letters, digits, "-" or "_" (at most 63 characters)`;
}

export function isName(s: unknown): s is string {
  return typeof s === 'string' && IDENTIFIER.test(s);
}

/** A name as it may be shown in a message: quoted, control characters escaped, cut at 80 characters. */
export function quoteName(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s).replace(/[\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
