import { validateDeployment } from '../../api/load.ts';
import { snapshotService } from '../../api/snapshot.ts';
import { UsageError } from '../../errors.ts';
import { formatBytes } from '../../plan/render.ts';
import { nameOption, parse, rootFileOf, stateDirOf, type Io } from '../io.ts';
import { contextFor } from '../../api/services.ts';

export const help = `strata snapshot [ROOT] --service NAME [--deployment NAME] [--machine NAME] [--json]
  Takes a snapshot of a running stateful service now, from the machine(s) the recorded
  generation runs it on, and prints where it was stored: STATE/snapshots/DEPLOYMENT/SERVICE/
  TIME-genN-MACHINE.snap with a JSON sidecar (machine, item, sha256, size). The service keeps
  running. A postgresql-database is dumped with pg_dump --format=custom; a stateful process or
  script service's STATE_DIR is copied. The newest snapshotsKept (root file, default 5) per
  service are kept. Restore one with \`strata restore\`.
  --service NAME      the service (required)
  --machine NAME      only its instance on this machine (default: every instance)
  --deployment NAME   name the deployment instead of reading ROOT (default strata.yaml)`;

export async function run(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(argv, { service: { type: 'string' }, deployment: { type: 'string' }, machine: { type: 'string' } });
  const service = nameOption(values.service, '--service');
  const machine = nameOption(values.machine, '--machine');
  if (!service) throw new UsageError('strata snapshot needs --service NAME');
  const deployment = nameOption(values.deployment, '--deployment') ?? (await validateDeployment(rootFileOf(positionals))).name;
  const taken = await snapshotService({ deployment, service, ...(machine ? { machine } : {}) }, contextFor({ stateDir: stateDirOf(values, rootFileOf(positionals)) }));
  if (values.json) io.out(`${JSON.stringify({ deployment, service, snapshots: taken }, null, 2)}\n`);
  else for (const t of taken) io.out(`${service} on ${t.machine}: snapshot stored in ${t.file} (${formatBytes(t.meta.size)}, sha256 ${t.meta.sha256.slice(0, 12)})\n`);
  return 0;
}
