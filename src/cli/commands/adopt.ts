import { adoptDeployment, type AdoptResult } from '../../api/adopt.ts';
import { loadDeployment } from '../../api/load.ts';
import { UsageError } from '../../errors.ts';
import { parse, rootFileOf, stateDirOf, type Io } from '../io.ts';
import { contextFor } from '../../api/services.ts';

export const help = `strata adopt [ROOT] [--generation N] [--manifest-hash H] [--force] [--partial] [--json]
  Rebuilds the recorded state of the deployment under ROOT (default strata.yaml) from what its
  machines record: each machine the models name holds its part of the generations it ran, and
  adopt puts the newest generation back together in --state DIR (default .strata beside ROOT).
  Use it when the state directory was lost, deleted or is an old copy: strata plan and apply
  refuse while the machines run a generation the state does not know. Changes no machine.
  Refuses (exit 2, nothing written) when the machines disagree on the generation's manifest,
  when their parts do not add up to the manifest they recorded (a machine of it is missing
  from the models), or when the state directory records the deployment already.
  --generation N      adopt generation N rather than the newest the machines record
  --manifest-hash H   when machines record generation N with different manifests, take H
  --force             replace the deployment's recorded (or damaged) state: damaged files
                      are moved aside (FILE.damaged-TIME), other generation files are
                      kept, numbers are never reused
  --partial           record what the machines found hold even when it does not add up`;

export async function run(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(argv, {
    generation: { type: 'string' },
    'manifest-hash': { type: 'string' },
    force: { type: 'boolean' },
    partial: { type: 'boolean' },
  });
  const generation = values.generation === undefined ? undefined : Number(values.generation);
  if (generation !== undefined && (!Number.isSafeInteger(generation) || generation < 1)) throw new UsageError(`--generation takes a generation number, not "${values.generation}"`);
  const hash = values['manifest-hash'];
  if (hash !== undefined && !/^[0-9a-f]{4,64}$/.test(hash)) throw new UsageError(`--manifest-hash takes a hex manifest hash (or a prefix of one), not "${hash}"`);
  const root = rootFileOf(positionals);
  const { manifest } = await loadDeployment(root);
  const ctx = contextFor({ stateDir: stateDirOf(values, root), rootFile: root });
  const r = await adoptDeployment(manifest, ctx, {
    ...(generation !== undefined ? { generation } : {}),
    ...(hash !== undefined ? { manifestHash: hash } : {}),
    force: Boolean(values.force),
    partial: Boolean(values.partial),
  });
  io.out(values.json ? `${JSON.stringify(r, null, 2)}\n` : renderAdopt(r, ctx.stateDir));
  return 0;
}

function renderAdopt(r: AdoptResult, stateDir: string): string {
  const lines = [
    `${r.deployment}: adopted generation ${r.generation} (manifest ${r.manifestHash.slice(0, 12)}${r.partial ? ', partial' : ''}, ${r.services} service instance${r.services === 1 ? '' : 's'}) into ${stateDir}${r.replaced !== undefined ? `, replacing ${r.replaced === 'damaged' ? 'damaged state' : `generation ${r.replaced}`}` : ''}`,
  ];
  for (const f of r.setAside ?? []) lines.push(`  set aside the damaged ${f} (kept as ${f}.damaged-…)`);
  for (const m of r.machines) lines.push(`  ${m.machine}: ${m.used ? `part of generation ${m.generation}` : `left out: ${m.why}`}`);
  return `${lines.join('\n')}\n`;
}
