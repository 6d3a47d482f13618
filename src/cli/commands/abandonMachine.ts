import { hostname, userInfo } from 'node:os';
import { abandonMachine, previewAbandon, type AbandonPreview } from '../../api/abandon.ts';
import { validateDeployment } from '../../api/load.ts';
import { StrataError, UsageError } from '../../errors.ts';
import { parse, stateDirOf, type Io } from '../io.ts';
import { progressPrinter } from '../progress.ts';
import { seconds } from './apply.ts';
import { contextFor } from '../../api/services.ts';
import { apiToken } from '../apiToken.ts';
import { postToController } from '../controllerClient.ts';

export const help = `strata abandon-machine MACHINE [ROOT] --reason TEXT --yes [--deployment NAME]
strata abandon-machine MACHINE --controller URL --deployment NAME --reason TEXT --yes [--token-file FILE]
  Gives up on a machine that is gone for good. A pending transition's recovery finishes
  treating its steps there as lost (the other machines are rolled back or completed as usual);
  the machine and its items leave the recorded state in a new generation whose audit record
  says who, when and why (\`strata history\`); stateful services it held are restored from
  their newest snapshot once the models place them on another machine. The machine itself is
  never contacted. Remove it from the models too: then plan and apply no longer touch it.
  Without --yes it says what it would do and exits 2.
  --reason TEXT       why (required; kept in the audit record)
  --deployment NAME   name the deployment instead of reading ROOT (default strata.yaml)
  --controller URL    ask a running controller to do it (bearer token from --token-file or $STRATA_API_TOKEN)
  --connect-timeout S, --command-timeout S   as for apply, for the recovery's other machines
  --yes               confirm`;

export async function run(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(argv, {
    reason: { type: 'string' },
    deployment: { type: 'string' },
    controller: { type: 'string' },
    'token-file': { type: 'string' },
    'connect-timeout': { type: 'string' },
    'command-timeout': { type: 'string' },
    yes: { type: 'boolean', short: 'y' },
  });
  const [machine, rootFile] = positionals;
  if (!machine) throw new UsageError('strata abandon-machine needs the MACHINE to abandon');
  if (positionals.length > 2) throw new UsageError(`unexpected argument ${positionals[2]}`);
  if (!values.reason?.trim()) throw new UsageError('strata abandon-machine needs --reason TEXT (kept in the audit record)');
  if (values.controller) {
    if (!values.deployment) throw new UsageError('--controller needs --deployment NAME');
    if (!values.yes) throw confirmation(`abandoning ${machine} of ${values.deployment} through ${values.controller}`);
    const r = await postToController(
      values.controller,
      `/api/deployments/${encodeURIComponent(values.deployment)}/machines/${encodeURIComponent(machine)}/abandon`,
      apiToken(values['token-file']),
      { reason: values.reason, by: `${userInfo().username}@${hostname()}` },
      `the controller refused to abandon ${machine}`,
    );
    io.out(values.json ? `${JSON.stringify(r)}\n` : `${r.message ?? `abandoned ${machine}`}\n`);
    return 0;
  }
  const deployment = values.deployment ?? (await validateDeployment(rootFile ?? 'strata.yaml')).name;
  const ctx = contextFor({
    // The default state directory is the one beside the root file, as for every other command.
    stateDir: stateDirOf(values, rootFile ?? 'strata.yaml'),
    connectTimeoutMs: seconds(values['connect-timeout'], '--connect-timeout'),
    commandTimeoutMs: seconds(values['command-timeout'], '--command-timeout'),
    onEvent: progressPrinter(io, Boolean(values.quiet || values.json)),
  });
  const req = { deployment, machine, reason: values.reason, by: `${userInfo().username}@${hostname()}` };
  if (!values.yes) throw confirmation(describe(previewAbandon(req, ctx)));
  const r = await abandonMachine(req, ctx);
  io.out(values.json ? `${JSON.stringify(r)}\n` : `${r.message.split('; ').join('\n  ')}\n`);
  return 0;
}

function confirmation(what: string): StrataError {
  return new StrataError('CONFIRMATION_REQUIRED', `${what}; nothing was changed: run again with --yes to do it`);
}

function describe(p: AbandonPreview): string {
  const parts = [`abandoning ${p.machine} of ${p.deployment}`];
  if (p.pendingTransition) parts.push(`the pending transition to generation ${p.pendingTransition.generation} loses its ${p.pendingTransition.stepsOnMachine} step(s) there`);
  if (p.generation !== undefined) parts.push(`its ${p.items.length} item(s) leave the recorded state (${p.items.join(', ') || 'none'})`);
  for (const s of p.stateful) parts.push(s.snapshot ? `${s.service} would be restored from ${s.snapshot.file} (taken ${s.snapshot.createdAt})` : `${s.service} has no snapshot: its data is lost`);
  return parts.join('; ');
}

