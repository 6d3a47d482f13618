import { applyDeployment } from '../../api/apply.ts';
import { planDeployment } from '../../api/plan.ts';
import { StrataError, UsageError } from '../../errors.ts';
import { isEmptyPlan } from '../../plan/diff.ts';
import { formatBytes, renderPlan } from '../../plan/render.ts';
import { planFromDocument } from '../../plan/format.ts';
import type { Plan } from '../../plan/types.ts';
import { readRegularFile, shownPath } from '../../lib/regularFile.ts';
import { parse, rootFileOf, stateDirOf, type Io } from '../io.ts';
import { progressPrinter } from '../progress.ts';
import { contextFor } from '../../api/services.ts';

export const help = `strata apply [ROOT | PLAN.json]
  Plans and applies the models under ROOT (default strata.yaml), or applies a plan saved by
  \`strata plan --out\`; a saved plan whose recorded state has changed since is refused.
  The state directory is --state DIR, else $STRATA_STATE_DIR, else .strata beside ROOT (for a
  saved plan: beside the root file it was made from). Refuses with exit 2, changing nothing,
  when the machines run a generation of the deployment that the state does not know (lost
  or old state; see \`strata adopt\`).
  On failure every completed step is undone and the previous generation runs again.
  --json                print the result as JSON
  --connect-timeout S   seconds to wait for a machine's SSH connection (default 10)
  --command-timeout S   seconds a single step may take (default 120)
  --parallel N          machines handled at once (default 32)
  --lock-lease S        seconds a machine lock holds without renewal (default 60; renewed every S/3)
  A transition that a crash interrupted is recovered first (completed or rolled back).`;

export async function run(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(argv, { 'connect-timeout': { type: 'string' }, 'command-timeout': { type: 'string' }, parallel: { type: 'string' }, 'lock-lease': { type: 'string' } });
  const input = rootFileOf(positionals);
  const saved = input.endsWith('.json') ? readPlan(input) : undefined;
  // A saved plan's state is beside the root file it was made from (or, without one, the working directory's).
  const rootFile = saved ? saved.root : input;
  const ctx = contextFor({
    stateDir: stateDirOf(values, rootFile),
    ...(rootFile ? { rootFile } : {}),
    connectTimeoutMs: seconds(values['connect-timeout'], '--connect-timeout'),
    commandTimeoutMs: seconds(values['command-timeout'], '--command-timeout'),
    parallel: positiveInteger(values.parallel, '--parallel'),
    lockLeaseMs: seconds(values['lock-lease'], '--lock-lease'),
    onEvent: progressPrinter(io, Boolean(values.quiet || values.json)),
  });
  const plan = saved ?? (await planDeployment(input, ctx));
  const empty = isEmptyPlan(plan);
  if (!empty && !values.json && !values.quiet) io.err(renderPlan(plan, 'text'));
  // Even an empty plan goes through apply, which refuses it if it is stale.
  const result = await applyDeployment(plan, ctx, { source: input, rebaseAfterRecovery: !input.endsWith('.json') });
  // (Recovery of an interrupted transition may have moved the recorded state and made the plan non-empty.)
  if (empty && result.generation === (plan.basis.generation ?? 0)) {
    io.out(values.json ? `${JSON.stringify({ changed: false, generation: plan.basis.generation })}\n` : `${plan.deployment}: no changes; generation ${plan.basis.generation} is deployed\n`);
  } else if (values.json) io.out(`${JSON.stringify({ changed: true, ...result })}\n`);
  else {
    const uploads = Object.values(result.uploaded).reduce((n, l) => n + l.length, 0);
    io.out(`${plan.deployment}: generation ${result.generation} deployed (${result.steps} steps, ${uploads} uploads, ${formatBytes(result.bytesSent)} sent, ${(result.durationMs / 1000).toFixed(1)}s)\n`);
  }
  return 0;
}

/** A saved plan holds the whole desired manifest; anything larger than this is not one. */
const MAX_PLAN_BYTES = 256 * 1024 * 1024;

function readPlan(path: string): Plan {
  // Only a regular file, bounded: a FIFO or /dev/zero named as the plan must not hang apply.
  const read = readRegularFile(path, MAX_PLAN_BYTES);
  if ('refused' in read) throw new StrataError('PLAN_INVALID', `cannot read the plan ${shownPath(path)}: it ${read.why}`, { path });
  let doc: unknown;
  try {
    doc = JSON.parse(read.bytes.toString('utf8'));
  } catch (e) {
    throw new StrataError('PLAN_INVALID', `cannot read the plan ${path}: ${(e as Error).message}`, { path });
  }
  const plan = planFromDocument(doc, path);
  if (plan.root !== undefined && (typeof plan.root !== 'string' || !plan.root.startsWith('/'))) throw new StrataError('PLAN_INVALID', `${path}: root must be an absolute path`, { path });
  return plan;
}

export function seconds(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} takes a number of seconds, not "${v}"`);
  return n * 1000;
}

function positiveInteger(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} takes a whole number above 0, not "${v}"`);
  return n;
}
