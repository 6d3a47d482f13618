import { mapLimit } from '../apply/mapLimit.ts';
import type { MachineManifest } from '../manifest/types.ts';
import { openRuntime } from '../targets/connect.ts';
import type { MachineRecord } from '../targets/machineRuntime.ts';
import { runtimePath } from '../targets/runtime/script.ts';
import { connectOptions, type Context } from './context.ts';

/** Exit status of the probe when the machine has strata's files but not this runtime version. */
const OLDER_RUNTIME = 113;

export interface RecordAnswer {
  machine: string;
  /** The machine's current record (of whichever deployment it records); undefined: none. */
  record?: MachineRecord;
  /** Set when the machine could not be asked. */
  error?: string;
}

/**
 * Asks each machine what generation it records, one command each. A machine that never ran
 * strata is left as it is (nothing is installed on it); one with another version of the
 * runtime gets this one, which every transition would install too.
 */
export async function askMachines(machines: readonly MachineManifest[], ctx: Context, generation?: number): Promise<RecordAnswer[]> {
  const conn = connectOptions(ctx);
  return mapLimit([...machines], ctx.parallel ?? 32, async (m): Promise<RecordAnswer> => {
    const rt = openRuntime(m, conn);
    try {
      const verb = generation === undefined ? ['manifest'] : ['manifest', String(generation)];
      const probe = ['sh', '-c', `test -f "$1" && exec sh "$@"; test -e "$2/generations" && exit ${OLDER_RUNTIME}; exit 0`, 'strata', runtimePath(rt.root), rt.root, ...verb];
      const r = await rt.target.run(probe);
      if (r.code === OLDER_RUNTIME) {
        const record = await rt.recorded(generation);
        return record ? { machine: m.name, record } : { machine: m.name };
      }
      if (r.code !== 0) return { machine: m.name, error: r.stderr.trim() || `exit ${r.code}` };
      if (!r.stdout.trim()) return { machine: m.name };
      try {
        return { machine: m.name, record: JSON.parse(r.stdout) as MachineRecord };
      } catch {
        return { machine: m.name, error: 'its generation record does not parse (cut short?)' };
      }
    } catch (e) {
      return { machine: m.name, error: (e as Error).message };
    } finally {
      await rt.target.close();
    }
  });
}
