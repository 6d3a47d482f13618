import { validateDeployment } from '../../api/load.ts';
import { applyRollback, planRollback } from '../../api/rollback.ts';
import { UsageError } from '../../errors.ts';
import { renderPlan } from '../../plan/render.ts';
import { nameOption, parse, rootFileOf, stateDirOf, type Io } from '../io.ts';
import { unlessStateLost } from '../lostState.ts';
import { progressPrinter } from '../progress.ts';
import { contextFor } from '../../api/services.ts';
import { apiToken } from '../apiToken.ts';
import { postToController } from '../controllerClient.ts';

export const help = `strata rollback [ROOT] [--to N] [--deployment NAME]
strata rollback --controller URL --deployment NAME [--to N] [--token-file FILE]
  Returns the machines to the previous recorded generation (or generation N) at once,
  without reading Git or the models' artifacts; records it as a new generation. With nothing
  recorded, it asks the machines of ROOT's models whether they run the deployment (lost state).
  With --controller, asks a running controller to do it (bearer token from --token-file or
  $STRATA_API_TOKEN); the controller then suspends the deployment until it is resumed.`;

export async function run(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(argv, { to: { type: 'string' }, deployment: { type: 'string' }, controller: { type: 'string' }, 'token-file': { type: 'string' } });
  const to = values.to === undefined ? undefined : Number(values.to);
  if (to !== undefined && (!Number.isInteger(to) || to < 1)) throw new UsageError(`--to takes a generation number, not "${values.to}"`);
  if (values.controller) {
    const named = nameOption(values.deployment, '--deployment');
    if (!named) throw new UsageError('--controller needs --deployment NAME');
    const r = await postToController(values.controller, `/api/deployments/${encodeURIComponent(named)}/rollback`, apiToken(values['token-file']), to === undefined ? {} : { to }, 'the controller refused the rollback');
    io.out(values.json ? `${JSON.stringify(r)}\n` : `${values.deployment}: ${r.message ?? "rolled back"}\n`);
    return 0;
  }
  const deployment = nameOption(values.deployment, '--deployment') ?? (await validateDeployment(rootFileOf(positionals))).name;
  const ctx = contextFor({ stateDir: stateDirOf(values, rootFileOf(positionals)), rootFile: rootFileOf(positionals), onEvent: progressPrinter(io, Boolean(values.quiet || values.json)) });
  const planned = await unlessStateLost(() => planRollback(deployment, ctx, to), values.deployment ? undefined : rootFileOf(positionals), ctx, io, Boolean(values.quiet || values.json));
  if (!values.quiet && !values.json) io.err(renderPlan(planned.plan, 'text'));
  const result = await applyRollback(planned, ctx);
  io.out(values.json ? `${JSON.stringify(result)}\n` : `${deployment}: rolled back to generation ${result.rolledBackTo} (recorded as generation ${result.generation})\n`);
  return 0;
}

