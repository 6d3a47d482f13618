import { EXIT, LAYOUT } from './runtime/protocol.ts';
import { runtimePath } from './runtime/script.ts';

/**
 * The command `peekRecord` runs (src/targets/machineRuntime.ts): this runtime's `manifest` verb
 * when it is installed; else exit NOT_INSTALLED when the machine has records of this deployment
 * anyway — in its own directory, in the machine root's single layout of an earlier strata, or in
 * a migration into its directory cut short: an older runtime, to be replaced by this one as a
 * transition would replace it (it reads the old layouts in place); else exit 0 with nothing,
 * installing nothing on a machine that never ran strata. The paths travel as arguments ($1 the
 * runtime, $2 the deployment's directory), never inside the script.
 */
export function peekCommand(root: string, deploymentRoot: string, verb: readonly string[]): string[] {
  const { deployments, generations } = LAYOUT;
  const script =
    `test -f "$1" && exec sh "$@"; ` +
    `{ test -e "$2/${generations}" || test -e "\${2%/${deployments}/*}/${generations}" || test -e "\${2%/*}/.migrate.\${2##*/}"; } && exit ${EXIT.NOT_INSTALLED}; exit 0`;
  return ['sh', '-c', script, 'strata', runtimePath(root), deploymentRoot, ...verb];
}
