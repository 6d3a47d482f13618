// The test layout of docs/testing.md, checked: test helpers do not ship in src/, and a file
// is in the end-to-end project exactly when it needs what only that project provides.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const REPO = join(import.meta.dirname, '..');

/** Every .ts file under dir, relative to the repository, skipping node_modules. */
function tsFiles(dir: string): string[] {
  return readdirSync(join(REPO, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !join(e.parentPath, e.name).includes('node_modules'))
    .map((e) => relative(REPO, join(e.parentPath, e.name)))
    .sort();
}

/** The module specifiers a file imports, statically or with import(). */
function importsOf(file: string): string[] {
  const text = readFileSync(join(REPO, file), 'utf8');
  return [...text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^import\s+)'([^']+)'/gm)].map((m) => m[1]!);
}

const isTest = (f: string) => f.endsWith('.test.ts');
const isE2e = (f: string) => f.endsWith('.e2e.test.ts');
const TEST_ONLY_PACKAGES = new Set(['vitest', 'fast-check']);
/** What starts sshd hosts, a Git server or the controller: only end-to-end files call these. */
const E2E_ONLY = /\b(testnetUp|helloWorldFixture|startGitServer|startControllerProcess|startHostSshd)\s*\(/;

describe('the test layout (docs/testing.md)', () => {
  it('finds the files it checks', () => {
    expect(tsFiles('src').filter((f) => !isTest(f)).length).toBeGreaterThan(50);
    expect(tsFiles('test').filter(isE2e).length).toBeGreaterThan(10);
  });

  it('ships no test helper in src/: only *.test.ts there imports vitest, fast-check or test/', () => {
    const offenders = tsFiles('src')
      .filter((f) => !isTest(f))
      .flatMap((f) => importsOf(f).filter((s) => TEST_ONLY_PACKAGES.has(s) || s.includes('/test/')).map((s) => `${f} imports ${s}`));
    expect(offenders).toEqual([]);
  });

  it('names every test file in test/e2e/ *.e2e.test.ts, so it runs in the e2e project', () => {
    expect(tsFiles('test/e2e').filter((f) => isTest(f) && !isE2e(f))).toEqual([]);
  });

  it('starts no sshd host, Git server or controller from a unit-project file', () => {
    const offenders = [...tsFiles('src'), ...tsFiles('test'), ...tsFiles('bench')]
      .filter((f) => isTest(f) && !isE2e(f))
      .filter((f) => E2E_ONLY.test(readFileSync(join(REPO, f), 'utf8')));
    expect(offenders).toEqual([]);
  });

  it('sees the rule fail where it should', () => {
    const name = 'testnetUp'; // not written out as a call, or this file would be its own offender
    expect(E2E_ONLY.test(`const net = await ${name}({ dir, machines, subnet });`)).toBe(true);
    expect(E2E_ONLY.test('// testnetUp is not called here')).toBe(false);
    expect(importsOf('test/support/loadFixtures.ts')).toContain('vitest');
  });
});
