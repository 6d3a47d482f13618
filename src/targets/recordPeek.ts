import { EXIT, LAYOUT } from './runtime/protocol.ts';

/**
 * The wrapper `peekRecord` runs (src/targets/machineRuntime.ts): this runtime's `manifest` verb
 * when it is installed; else exit NOT_INSTALLED when the machine has records of this deployment
 * anyway — in its own directory, in the machine root's single layout of an earlier strata, or in
 * a migration into its directory cut short: an older runtime, to be replaced by this one as a
 * transition would replace it (it reads the old layouts in place); else exit 0 with nothing,
 * installing nothing on a machine that never ran strata. Run like every runtime command
 * (machineRuntime.ts): $1 the runtime, $2 the deployment's directory, then the verb.
 */
export const PEEK_SCRIPT =
  `test -f "$1" && exec sh "$@"; ` +
  `{ test -e "$2/${LAYOUT.generations}" || test -e "\${2%/${LAYOUT.deployments}/*}/${LAYOUT.generations}" || test -e "\${2%/*}/.migrate.\${2##*/}"; } && exit ${EXIT.NOT_INSTALLED}; exit 0`;
