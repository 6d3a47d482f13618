import { mapLimit } from '../lib/mapLimit.ts';
import type { MachineManifest } from '../manifest/types.ts';
import { openRuntime } from '../targets/connect.ts';
import type { ShellMachineRuntime } from '../targets/machineRuntime.ts';
import type { MachineRecord } from '../targets/runtimeApi.ts';
import { answerBounds } from '../targets/answerBounds.ts';
import { parseRecord } from '../targets/recordAnswers.ts';
import { machineText } from '../targets/machineText.ts';
import { runtimePath } from '../targets/runtime/script.ts';
import { connectOptions, type Context } from './context.ts';

/** Exit status of the probe when the machine has strata's files but not this runtime version. */
const OLDER_RUNTIME = 113;

export interface RecordAnswer {
  machine: string;
  /** The machine's current record of the deployment (of n, when asked for one); undefined: none. */
  record?: MachineRecord;
  /** Set when the machine could not be asked. */
  error?: string;
}

/**
 * Asks each machine what generation of `deployment` it records, one command each, read in the
 * deployment's own directory (ROOT/deployments/NAME, as MachineRuntime does; the runtime reads
 * an earlier strata's single layout in place when its record is this deployment's). A machine
 * that never ran strata is left as it is (nothing is installed on it); one with another
 * version of the runtime gets this one, which every transition would install too.
 */
export async function askMachines(deployment: string, machines: readonly MachineManifest[], ctx: Context, generation?: number): Promise<RecordAnswer[]> {
  const conn = connectOptions(ctx);
  return mapLimit([...machines], ctx.parallel ?? 32, async (m): Promise<RecordAnswer> => {
    let rt: ShellMachineRuntime | undefined;
    try {
      rt = openRuntime(m, deployment, conn);
      const verb = generation === undefined ? ['manifest'] : ['manifest', String(generation)];
      // $1 the runtime (shared by the machine's deployments), $2 the deployment's directory.
      // Records there, in the machine root's single layout of an earlier strata, or in a
      // migration into $2 cut short, but not this runtime version: an older runtime, replaced
      // by this one as a transition would replace it (it reads the old layouts in place).
      const probe = [
        'sh',
        '-c',
        `test -f "$1" && exec sh "$@"; { test -e "$2/generations" || test -e "\${2%/deployments/*}/generations" || test -e "\${2%/*}/.migrate.\${2##*/}"; } && exit ${OLDER_RUNTIME}; exit 0`,
        'strata',
        runtimePath(rt.root),
        rt.deploymentRoot,
        ...verb,
      ];
      // Bounded like every answer to `manifest`, and parsed by the same strict reader (recordAnswers.ts).
      const r = await rt.target.run(probe, answerBounds('manifest'));
      if (r.code === OLDER_RUNTIME) {
        const record = await rt.recorded(generation);
        return record ? { machine: m.name, record } : { machine: m.name };
      }
      if (r.code !== 0) return { machine: m.name, error: machineText(r.stderr.trim(), 500, true) || `exit ${r.code}` };
      const record = parseRecord(m.name, r.stdout, generation);
      return record ? { machine: m.name, record } : { machine: m.name };
    } catch (e) {
      return { machine: m.name, error: (e as Error).message };
    } finally {
      await rt?.target.close();
    }
  });
}
