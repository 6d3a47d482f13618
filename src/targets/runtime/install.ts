import { readFileSync } from 'node:fs';
import { TargetError } from '../../errors.ts';
import type { RunResult } from '../target.ts';
import { EXIT } from './protocol.ts';

/**
 * The commands that put the runtime on a machine (docs/runtime.md, "Platforms"). Installing is
 * the first contact with a machine for a runtime version, so it is also where the machine is
 * asked what it offers (lib/detect.sh): a machine that lacks a command the runtime needs is refused
 * before anything is written, and the choices made for one that has what it needs are kept
 * beside the runtime (HASH.env, sourced by the runtime) so no later command asks again.
 */

const { INSTALL_FAILED, UNSUPPORTED } = EXIT;

let detectScript: string | undefined;
function detect(): string {
  detectScript ??= readFileSync(new URL('./lib/detect.sh', import.meta.url), 'utf8');
  return detectScript;
}

/**
 * `sh -c` script, run as `sh -c SCRIPT strata RUNTIME_PATH [ROOT VERB ARG...]`, whose stdin
 * starts with the runtime's `size` bytes. It reads exactly those bytes (with dd: `head -c`
 * reads ahead on a pipe on BusyBox and BSD, which would eat the verb's input), installs them
 * unless the runtime is there already, and then, with `thenRun`, runs the verb on the rest.
 */
export function installScript(size: number, thenRun: boolean): string {
  return [
    detect(),
    'r=$1',
    [
      `if test -f "$r"; then read_exact ${size} /dev/null || exit ${INSTALL_FAILED};`,
      `else p=$(detect_platform) || { printf '%s\\n' "$p"; exit ${UNSUPPORTED}; };`,
      // umask 022: whatever the session's umask, the runtime root runs is writable by root only.
      [
        'umask 022 && mkdir -p "${r%/*}" && : >"$r.tmp.$$"',
        // head -c where first contact found it exact (one process), else dd reads (lib/detect.sh).
        `{ case $p in *STRATA_READ=head*) head -c ${size} >"$r.tmp.$$" ;; *) read_exact ${size} "$r.tmp.$$" ;; esac && test "$(wc -c <"$r.tmp.$$")" -eq ${size} || { echo "the runtime arrived cut short" >&2; false; }; }`,
        'printf \'%s\\n\' "$p" >"${r%.sh}.env.tmp.$$" && mv "${r%.sh}.env.tmp.$$" "${r%.sh}.env" && mv "$r.tmp.$$" "$r"',
      ].join(' && '),
      `|| { rm -f "$r.tmp.$$" "\${r%.sh}.env.tmp.$$"; exit ${INSTALL_FAILED}; }; fi`,
    ].join(' '),
    thenRun ? 'exec sh "$@"' : 'exit 0',
  ].join('\n');
}

/** The commands an UNSUPPORTED answer names. */
export function parseMissing(stdout: string): string[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('missing '))
    .map((l) => l.slice('missing '.length).trim())
    .filter((n) => n.length > 0);
}

/**
 * Why the install command refused (undefined when it did not): TARGET_UNSUPPORTED for a machine
 * that cannot run the runtime, naming the machine and what it lacks; RUNTIME_INSTALL_FAILED
 * (on any failure when the command only installed: `onlyInstall`).
 */
export function installRefusal(machine: string, root: string, r: RunResult, onlyInstall = false): TargetError | undefined {
  if (r.code === UNSUPPORTED) {
    const missing = parseMissing(r.stdout);
    const names = missing.map((m) => m.split('|').join(' or ')).join(', ');
    return new TargetError('TARGET_UNSUPPORTED', `${machine} cannot run the strata runtime: it lacks ${names || 'a command the runtime needs'} (docs/runtime.md, "Platforms")`, { machine, missing });
  }
  if (r.code === INSTALL_FAILED || (onlyInstall && r.code !== 0)) return new TargetError('RUNTIME_INSTALL_FAILED', `cannot install the strata runtime on ${machine} under ${root}: ${r.stderr.trim()}`, { machine });
  return undefined;
}
