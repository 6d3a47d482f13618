import { validateDeployment } from '../../api/load.ts';
import { chooseRestore, restoreService } from '../../api/snapshot.ts';
import { StrataError, UsageError } from '../../errors.ts';
import { formatBytes } from '../../plan/render.ts';
import { shownPath } from '../../lib/regularFile.ts';
import { nameOption, parse, rootFileOf, stateDirOf, type Io } from '../io.ts';
import { contextFor } from '../../api/services.ts';

export const help = `strata restore [ROOT] --service NAME [--from FILE | --latest] [--machine NAME] [--deployment NAME] --yes
  Restores a snapshot into the running service, on the machine the recorded generation runs it
  on, holding that machine's lock: a postgresql-database is restored with pg_restore --clean in
  one transaction; a process or script service's STATE_DIR is replaced (a process is stopped
  and started again on it). This overwrites the service's current data, so it only runs with
  --yes; without, it says what it would do and exits 2.
  --service NAME      the service (required)
  --from FILE         the snapshot file: a regular .snap file whose size and sha256 match its
                      .json sidecar (as strata snapshot writes them); anything else is refused
  --latest            the newest snapshot of the service in the state directory (the default)
  --machine NAME      the instance to restore, when the service runs on several machines
  --deployment NAME   name the deployment instead of reading ROOT (default strata.yaml)
  --yes               confirm that the service's current data is overwritten`;

export async function run(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(argv, {
    service: { type: 'string' },
    from: { type: 'string' },
    latest: { type: 'boolean' },
    machine: { type: 'string' },
    deployment: { type: 'string' },
    yes: { type: 'boolean', short: 'y' },
  });
  const service = nameOption(values.service, '--service');
  const machine = nameOption(values.machine, '--machine');
  if (!service) throw new UsageError('strata restore needs --service NAME');
  if (values.from !== undefined && values.latest) throw new UsageError('--from and --latest exclude each other');
  if (values.from === '') throw new UsageError('--from needs a snapshot file');
  const deployment = nameOption(values.deployment, '--deployment') ?? (await validateDeployment(rootFileOf(positionals))).name;
  const ctx = contextFor({ stateDir: stateDirOf(values, rootFileOf(positionals)) });
  const plan = chooseRestore({ deployment, service, ...(machine ? { machine } : {}), ...(values.from !== undefined ? { from: values.from } : {}) }, ctx);
  const taken = ` (taken ${plan.meta.createdAt} on ${plan.meta.machine}, ${formatBytes(plan.meta.size)}, sha256 ${plan.meta.sha256.slice(0, 12)})`;
  if (!values.yes) {
    throw new StrataError('CONFIRMATION_REQUIRED', `restoring ${shownPath(plan.file)}${taken} overwrites the data of ${plan.service} on ${plan.machine}; run again with --yes to do it`, {
      file: plan.file,
      machine: plan.machine,
    });
  }
  const r = await restoreService(plan, ctx);
  if (values.json) io.out(`${JSON.stringify({ deployment, service: plan.service, machine: plan.machine, file: plan.file, bytes: r.bytes })}\n`);
  else io.out(`${plan.service} on ${plan.machine}: restored from ${shownPath(plan.file)}${taken}\n`);
  return 0;
}
