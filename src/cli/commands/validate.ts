import { validateDeployment } from '../../api/load.ts';
import { parse, rootFileOf, type Io } from '../io.ts';

export const help = `strata validate [ROOT]
  Checks the models named by ROOT (default strata.yaml): syntax, types, references,
  dependency cycles, ports and paths. Touches no machine.
  --json    print {"ok": true, ...} or the list of issues as JSON`;

export async function run(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(argv, {});
  const models = await validateDeployment(rootFileOf(positionals));
  const instances = Object.values(models.distribution).reduce((n, p) => n + p.length, 0);
  const summary = { ok: true, deployment: models.name, machines: Object.keys(models.machines).length, services: Object.keys(models.services).length, instances };
  io.out(values.json ? `${JSON.stringify(summary)}\n` : `${models.name}: valid (${summary.machines} machines, ${summary.services} services, ${instances} instances)\n`);
  return 0;
}
