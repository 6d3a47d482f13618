/**
 * A seeded fuzz of the model loader on mutations of the example models: whatever the bytes,
 * loading ends in models or in a ModelError whose every issue has a file of the deployment,
 * a line and a column; never in another exception (the CLI's `internal error`). Models that
 * load are resolved and planned too, so a name such as `constructor` is followed to the plan.
 * Both YAML parsers (js-yaml's fast path and `yaml`) must agree on every mutated file.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ModelError } from '../errors.ts';
import { resolveManifest } from '../manifest/resolve.ts';
import { planTransition } from '../plan/diff.ts';
import { loadModels } from './load.ts';
import { parseYaml } from './yamlSource.ts';

const REPO = join(import.meta.dirname, '..', '..');

/** The example deployments, each as root file → its model files' bytes. */
const DEPLOYMENTS: { root: string; files: string[] }[] = [
  { root: 'examples/hello-world/strata.yaml', files: ['network.yaml', 'network.local.yaml', 'services.yaml', 'distribution.yaml'] },
  { root: 'examples/hello-world/strata.proxy.yaml', files: ['network.yaml', 'network.local.yaml', 'services.proxy.yaml', 'distribution.proxy.yaml'] },
  { root: 'test/fixtures/infra/strata.yaml', files: ['network.yaml', 'services.yaml', 'distribution.yaml'] },
];

/** test/fixtures/infra names a physical network file that testnet writes; this stands in for it. */
const INFRA_PHYSICAL = 'machines:\n  db: { target: local, address: 127.0.47.21 }\n  app: { target: local, address: 127.0.47.22 }\n';

function filesOf(d: (typeof DEPLOYMENTS)[number]): Map<string, Uint8Array> {
  const dir = join(REPO, d.root, '..');
  const out = new Map<string, Uint8Array>([[join(REPO, d.root), readFileSync(join(REPO, d.root))]]);
  for (const f of d.files) out.set(join(dir, f), readFileSync(join(dir, f)));
  if (d.root.startsWith('test/fixtures/infra')) out.set(join(dir, 'network.physical.yaml'), Buffer.from(INFRA_PHYSICAL));
  return out;
}

const BUILTINS = ['toString', 'constructor', 'valueOf', 'hasOwnProperty', '__proto__', '__defineGetter__', 'isPrototypeOf', 'propertyIsEnumerable', 'toLocaleString', '__lookupSetter__'];
const SNIPPETS = [
  '&a ', '*a', '!!binary ', '!custom ', '!!js/function ', '!!str ', '!!int ', '!!set ', '? ', '<<: ', '%YAML 1.1\n---\n', '---\n', '"\\0"', '\u0000', '\u001b', '\ufeff', '\t', '{', '[', ']', '}', ':', '- ', '#', "'", '"', '|\n', '~: x\n',
  `${'['.repeat(70)}${']'.repeat(70)}`,
  'x: &l0 [a, a, a, a, a, a, a, a, a, a]\ny: &l1 [*l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0]\nz: &l2 [*l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1]\nw: &l3 [*l2, *l2, *l2, *l2, *l2, *l2, *l2, *l2, *l2, *l2]\nv: [*l3, *l3, *l3, *l3, *l3, *l3, *l3, *l3, *l3, *l3, *l3]\n',
];

type Mutation =
  | { kind: 'flip'; at: number; byte: number }
  | { kind: 'deleteLine'; at: number }
  | { kind: 'duplicateLine'; at: number }
  | { kind: 'renameKey'; at: number; name: number }
  | { kind: 'indent'; at: number; by: number }
  | { kind: 'insert'; at: number; snippet: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('deleteLine' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('duplicateLine' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('renameKey' as const), at: fc.nat(), name: fc.nat() }),
  fc.record({ kind: fc.constant('indent' as const), at: fc.nat(), by: fc.integer({ min: -4, max: 4 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), snippet: fc.nat() }),
);

function mutate(bytes: Uint8Array, m: Mutation): Uint8Array {
  if (m.kind === 'flip') {
    if (bytes.length === 0) return bytes;
    const out = Uint8Array.from(bytes);
    out[m.at % out.length] = m.byte;
    return out;
  }
  const text = Buffer.from(bytes).toString('latin1');
  const lines = text.split('\n');
  const i = m.at % lines.length;
  if (m.kind === 'deleteLine') lines.splice(i, 1);
  else if (m.kind === 'duplicateLine') lines.splice(i, 0, lines[i]!);
  else if (m.kind === 'indent') lines[i] = m.by >= 0 ? ' '.repeat(m.by) + lines[i] : lines[i]!.replace(new RegExp(`^ {0,${-m.by}}`), '');
  else if (m.kind === 'renameKey') {
    const keys = [...text.matchAll(/([A-Za-z_][\w-]*)(?=:)/g)];
    if (keys.length === 0) return bytes;
    const k = keys[m.at % keys.length]!;
    const name = BUILTINS[m.name % BUILTINS.length]!;
    // Renamed everywhere it stands as a whole word, so a reference (dependsOn, distribution) follows.
    return Buffer.from(text.replace(new RegExp(`\\b${k[1]!.replace(/[-]/g, '\\-')}\\b`, 'g'), name), 'latin1');
  } else {
    const snippet = Buffer.from(SNIPPETS[m.snippet % SNIPPETS.length]!, 'utf8').toString('latin1');
    const at = m.at % (text.length + 1);
    return Buffer.from(text.slice(0, at) + snippet + text.slice(at), 'latin1');
  }
  return Buffer.from(lines.join('\n'), 'latin1');
}

const hashOf = () => ({ hash: 'f'.repeat(64), size: 1, files: 1 });

describe('the model loader under fuzzing (seeded)', () => {
  it('ends in models or a ModelError with file:line:column for every issue, and both parsers agree', () => {
    // STRATA_FUZZ_SEED explores other inputs; the default keeps every run the same.
    const seed = Number(process.env.STRATA_FUZZ_SEED ?? 20261204);
    let valid = 0;
    let invalid = 0;
    fc.assert(
      fc.property(fc.nat(DEPLOYMENTS.length - 1), fc.nat(), fc.array(mutation, { minLength: 1, maxLength: 4 }), (d, which, mutations) => {
        const files = filesOf(DEPLOYMENTS[d]!);
        const paths = [...files.keys()];
        const target = paths[which % paths.length]!;
        files.set(target, mutations.reduce(mutate, files.get(target)!));

        // Agreement: with and without js-yaml's fast path, the same value or both refused.
        const fast = parseYaml(target, files.get(target)!);
        const precise = parseYaml(target, files.get(target)!, { fast: false });
        expect(fast.source === undefined, 'fast path and precise parser disagree on accepting').toBe(precise.source === undefined);
        if (fast.source && precise.source) expect(JSON.stringify(fast.source.value)).toBe(JSON.stringify(precise.source.value));

        const root = paths[0]!;
        try {
          const models = loadModels(root, { readText: (p) => files.get(p) });
          const manifest = resolveManifest(models, hashOf);
          planTransition(undefined, manifest);
          planTransition({ generation: 1, manifest }, manifest);
          valid++;
        } catch (e) {
          if (!(e instanceof ModelError)) throw new Error(`not a ModelError: ${(e as Error)?.stack ?? String(e)}`);
          invalid++;
          expect(e.issues.length).toBeGreaterThan(0);
          for (const i of e.issues) {
            expect(paths, JSON.stringify(i)).toContain(i.file);
            expect(Number.isInteger(i.line) && i.line >= 1, JSON.stringify(i)).toBe(true);
            expect(Number.isInteger(i.column) && i.column >= 1, JSON.stringify(i)).toBe(true);
            expect(i.message.length).toBeGreaterThan(0);
          }
        }
      }),
      { seed, numRuns: 3000, interruptAfterTimeLimit: 25_000, markInterruptAsFailure: false },
    );
    if (process.env.STRATA_FUZZ_SEED) console.log({ valid, invalid });
    // The fuzz reached both outcomes, so it tested something.
    expect(valid).toBeGreaterThan(20);
    expect(invalid).toBeGreaterThan(100);
  }, 60_000);
});
