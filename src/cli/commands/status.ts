import { deploymentStatus, driftOf, type StatusReport } from '../../api/status.ts';
import { validateDeployment } from '../../api/load.ts';
import { checkNothingRuns } from '../../api/plan.ts';
import { nameOption, parse, rootFileOf, stateDirOf, type Io } from '../io.ts';
import { noteTo } from '../lostState.ts';
import { contextFor } from '../../api/services.ts';

export const help = `strata status [ROOT] [--deployment NAME] [--json]
  Asks every machine of the deployed generation what it runs (one round trip each):
  its recorded generation, lock, and every item with running / stopped / present /
  missing, and DRIFT where it differs from what was deployed (a process that died or
  stopped listening, a placed file that was changed or removed). Exits 1 on drift or an
  unreachable machine. With nothing recorded, it asks the machines of ROOT's models whether
  they run the deployment anyway (lost state): exit 2 with where the state probably is.
  --deployment NAME   name the deployment instead of reading ROOT (default strata.yaml)`;

export async function run(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(argv, { deployment: { type: 'string' } });
  const deployment = nameOption(values.deployment, '--deployment') ?? (await validateDeployment(rootFileOf(positionals))).name;
  const ctx = contextFor({ stateDir: stateDirOf(values, rootFileOf(positionals)), rootFile: rootFileOf(positionals) });
  const report = await deploymentStatus(deployment, ctx);
  // Nothing recorded: unless the machines run the deployment anyway (lost state: refused with the hint).
  if (report.generation === null && !values.deployment) await checkNothingRuns(ctx.rootFile, ctx, noteTo(io, Boolean(values.quiet || values.json)));
  io.out(values.json ? `${JSON.stringify(report, null, 2)}\n` : renderStatus(report));
  return report.machines.every((m) => m.reachable) && driftOf(report).length === 0 ? 0 : 1;
}

export function renderStatus(r: StatusReport): string {
  if (r.generation === null) return `${r.deployment}: nothing deployed\n`;
  const drift = driftOf(r).length;
  const lines = [`${r.deployment}: generation ${r.generation}${drift ? `, ${drift} item${drift === 1 ? '' : 's'} drifted` : ''}`];
  for (const m of r.machines) {
    if (!m.reachable) {
      lines.push(`  ${m.machine} (${m.address}): unreachable: ${m.error}`);
      continue;
    }
    const gen = m.generation === null ? 'no generation' : `generation ${m.generation}`;
    lines.push(`  ${m.machine} (${m.address}): ${gen}${m.lock ? `, locked by ${m.lock}` : ''}`);
    for (const i of m.items) lines.push(`    ${i.layer === 'service' ? 'service' : i.module} ${i.name}: ${i.state}${i.pid ? ` (pid ${i.pid})` : ''}${i.drift ? `  DRIFT: ${i.drift}` : ''}`);
    if (m.items.length === 0) lines.push('    (nothing deployed here)');
  }
  return `${lines.join('\n')}\n`;
}
