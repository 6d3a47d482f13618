import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { FileStateStore } from '../state/fileState.ts';
import type { Context } from './context.ts';

/**
 * The default state directory of a deployment: `.strata` beside its root file, so the CLI finds
 * the same state from any working directory (`cd examples/hello-world && strata apply`, then
 * `strata destroy examples/hello-world/strata.yaml` from the top). `--state` and
 * $STRATA_STATE_DIR take precedence (src/cli/io.ts).
 */
export function defaultStateDir(rootFile: string): string {
  return join(dirname(resolve(rootFile)), '.strata');
}

export interface StateCandidate {
  dir: string;
  /** What it holds for the deployment, in words. */
  holds: string;
  generation?: number;
}

/**
 * Where else a deployment's state may be: `.strata` beside the root file, `.strata` in the
 * working directory (where earlier versions kept it by default), and $STRATA_STATE_DIR, each
 * with what it holds for the deployment. The state directory in use is left out.
 */
export function stateCandidates(deployment: string, ctx: Context): StateCandidate[] {
  const inUse = resolve(ctx.stateDir);
  const dirs = [ctx.rootFile ? defaultStateDir(ctx.rootFile) : undefined, resolve('.strata'), process.env.STRATA_STATE_DIR ? resolve(process.env.STRATA_STATE_DIR) : undefined];
  const out: StateCandidate[] = [];
  for (const dir of new Set(dirs)) {
    if (!dir || dir === inUse || !existsSync(join(dir, 'deployments', deployment))) continue;
    try {
      const n = new FileStateStore(dir).currentGeneration(deployment);
      out.push(n === undefined ? { dir, holds: 'nothing deployed' } : { dir, holds: `generation ${n}`, generation: n });
    } catch (e) {
      out.push({ dir, holds: `damaged state (${(e as Error).message.split(';')[0]})` });
    }
  }
  return out;
}

/** Where the state of a deployment probably is and how to take it back, for STATE_UNKNOWN_GENERATION. */
export function lostStateHint(deployment: string, ctx: Context): string {
  const found = stateCandidates(deployment, ctx).filter((c) => c.generation !== undefined);
  const root = ctx.rootFile ?? 'ROOT';
  const lines: string[] = [];
  if (found.length) {
    lines.push(`The state of ${deployment} is probably in ${found.map((c) => `${c.dir} (${c.holds})`).join(' or ')}: use it with --state ${found[0]!.dir}.`);
  } else {
    lines.push(`No other state directory of ${deployment} was found (looked beside the root file, in the working directory and in $STRATA_STATE_DIR).`);
  }
  lines.push(
    ctx.controller
      ? `Or rebuild the state from what the machines record: POST /api/deployments/${deployment}/adopt (the controller's API).`
      : `Or rebuild the state from what the machines record: strata adopt ${root} --state ${ctx.stateDir}`,
  );
  return lines.join('\n');
}
