import { StrataError } from '../errors.ts';
import { classOf, EXIT } from '../errors/codes.ts';

export { EXIT };

/** The only place an error becomes a process exit status (the table: src/errors/codes.ts). */
export function exitCodeFor(e: unknown): number {
  if (!(e instanceof StrataError)) return EXIT.failed;
  return classOf(e.code).exit;
}
