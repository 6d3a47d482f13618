import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { fastParse } from './fastYaml.ts';

/** What the precise parser makes of a text (as src/model/yamlSource.ts calls it), or undefined on errors. */
function precise(text: string): unknown {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false, strict: true });
  return doc.errors.length ? undefined : (doc.toJS({ maxAliasCount: 100 }) ?? {});
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return name === 'node_modules' ? [] : yamlFiles(p);
    return /\.ya?ml$/.test(name) ? [p] : [];
  });
}

/** Each text is one fastParse does not take, so the precise parser reads it. */
function leftToPrecise(texts: string[]): void {
  for (const text of texts) expect(fastParse(text), text).toBeUndefined();
}

describe('fastParse (js-yaml, YAML 1.2 core as `yaml` resolves it)', () => {
  it('resolves every plain scalar form as `yaml` does', () => {
    const scalars = [
      '0', '007', '-5', '+5', '12345678901234567890', '0o17', '0o8', '0x1F', '0xg', '0b101', '1_000', '1.', '.5', '-.5', '1.50', '1e3', '1.5E-3', '+1e+3', '1e', '.inf', '-.Inf', '+.INF', '.nan', '.NaN', 'nan', 'inf',
      'true', 'True', 'TRUE', 'tRue', 'yes', 'no', 'on', 'off', 'y', 'false', 'null', 'Null', 'NULL', 'nULL', '~', '', '2024-01-01', '12:30', '0.1.2', '1,000', '"5"', "'true'", '!!str 5', '!!int "7"',
    ];
    for (const s of scalars) {
      const text = `v: ${s}\n`;
      const fast = fastParse(text);
      const slow = precise(text);
      if (slow === undefined) expect(fast, s).toBeUndefined();
      else expect(fast?.value, s).toEqual(slow);
    }
  });

  it('leaves aliases, duplicate keys, unknown tags and syntax errors to the precise parser', () => {
    leftToPrecise(['a: &x 1\nb: *x\n', 'a: 1\na: 2\n', 'a: !!binary aGk=\n', 'a: !custom 1\n', 'a: [1, 2\n', 'a:\n\t- 1\n']);
  });

  it('leaves to the precise parser what js-yaml reads differently or less safely', () => {
    leftToPrecise([
      // js-yaml: key "a" / "a,b" / "null"; yaml: "[ a ]" / "[ a, b ]" / "" (both refused there)
      '[a]: x\n',
      '? [a, b]\n: x\n',
      '~: x\n',
      // js-yaml ignores the directive; yaml would read `yes` as true
      '%YAML 1.1\n---\na: yes\n',
      // js-yaml accepts a flow collection's later lines at any indentation
      'a:\n  b: {\nc: 1 }\n',
      // a comment right after a flow collection: js-yaml takes it, `yaml` refuses it
      'a: { b: 1 }#c\n',
      // refused by the precise parser, with a position
      // js-yaml makes `__proto__` a real key (never the prototype), so the check below sees it
      '__proto__: 1\n',
      'a:\n  __proto__:\n    b: 1\n',
      'a: { __proto__: { b: 1 } }\n',
      'a: "x\\0y"\n',
    ]);
    const block = (n: number) => Array.from({ length: n }, (_, i) => `${' '.repeat(i)}k:`).join('\n') + ' v\n';
    expect(fastParse(block(65))).toBeUndefined();
    expect(fastParse(block(64))).toBeDefined();
  });

  it('gives every YAML file in the repository the value `yaml` gives it, and accepts none that `yaml` refuses', () => {
    const root = join(import.meta.dirname, '..', '..');
    const files = [...yamlFiles(join(root, 'examples')), ...yamlFiles(join(root, 'test')), ...yamlFiles(join(root, 'docs')), ...yamlFiles(join(root, 'bench'))];
    expect(files.length).toBeGreaterThan(100);
    let refused = 0;
    for (const f of files) {
      const text = readFileSync(f, 'utf8');
      const slow = precise(text);
      const fast = fastParse(text);
      if (slow === undefined) {
        refused++;
        expect(fast, f).toBeUndefined();
      } else if (fast !== undefined) expect(fast.value ?? {}, f).toEqual(slow);
    }
    expect(refused).toBeGreaterThan(3);
  });
});
