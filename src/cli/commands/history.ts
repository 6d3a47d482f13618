import { deploymentHistory, type HistoryEntry } from '../../api/history.ts';
import { validateDeployment } from '../../api/load.ts';
import { nameOption, parse, rootFileOf, stateDirOf, type Io } from '../io.ts';
import { contextFor } from '../../api/services.ts';

export const help = `strata history [ROOT] [--deployment NAME] [--json]
  Lists the recorded generations of a deployment, newest first: when, which commit (sha,
  author, message) or file it came from, rollbacks, and which one is current.`;

export async function run(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(argv, { deployment: { type: 'string' } });
  const deployment = nameOption(values.deployment, '--deployment') ?? (await validateDeployment(rootFileOf(positionals))).name;
  const history = deploymentHistory(deployment, contextFor({ stateDir: stateDirOf(values, rootFileOf(positionals)) }));
  io.out(values.json ? `${JSON.stringify({ deployment, generations: history }, null, 2)}\n` : renderHistory(deployment, history));
  return 0;
}

function renderHistory(deployment: string, h: HistoryEntry[]): string {
  if (h.length === 0) return `${deployment}: nothing deployed yet\n`;
  const lines = [`${deployment}: ${h.length} generation${h.length === 1 ? '' : 's'}`];
  for (const g of h) {
    const commit = g.commit ? `${g.commit.sha.slice(0, 12)} ${g.commit.author.name}: ${g.commit.message.split('\n')[0]}` : undefined;
    const abandoned = g.abandoned ? `abandoned ${g.abandoned.machine} by ${g.abandoned.by} at ${g.abandoned.at}: ${g.abandoned.reason}` : undefined;
    const origin = abandoned ?? (g.rolledBackTo !== undefined ? `rollback to generation ${g.rolledBackTo}${commit ? ` (${commit})` : ''}` : (commit ?? g.source ?? ''));
    lines.push(`${g.current ? '*' : ' '} ${String(g.generation).padStart(4)}  ${g.createdAt}  ${g.services} services on ${g.machines} machines  ${origin}`);
  }
  return `${lines.join('\n')}\n`;
}
