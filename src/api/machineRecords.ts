import { mapLimit } from '../lib/mapLimit.ts';
import type { MachineManifest } from '../manifest/types.ts';
import type { MachineRecord, MachineRuntime } from '../targets/runtimeApi.ts';
import { connectOptions, type Context } from './context.ts';

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
    let rt: MachineRuntime | undefined;
    try {
      rt = ctx.services.openRuntime(m, deployment, conn);
      const record = await rt.peekRecord(generation);
      return record ? { machine: m.name, record } : { machine: m.name };
    } catch (e) {
      return { machine: m.name, error: (e as Error).message };
    } finally {
      await rt?.close();
    }
  });
}
