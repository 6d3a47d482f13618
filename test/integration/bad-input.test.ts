/**
 * The bad-input corpus: every directory under test/fixtures/bad is a broken deployment. Each
 * must be refused by validate, plan and apply alike, with exit code 2, an error that names a
 * file of that deployment with line and column, and no state written anywhere.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import type { Io } from '../../src/cli/io.ts';

const CORPUS = join(import.meta.dirname, '../fixtures/bad');

interface Expected {
  /** Basename of the file the error must name, inside the case directory. */
  file: string;
  line: number;
  column: number;
  /** Part of the message that must follow the position; `{dir}` is the case directory. */
  message: string;
}

const SAFE_NAME = 'expected a safe name';

/** Case → the error it must produce. Lines count the `# bad: ...` comment most files start with. */
const EXPECTED: Record<string, Expected> = {
  // YAML syntax
  'yaml-unclosed-flow-map': { file: 'network.yaml', line: 4, column: 3, message: 'YAML: Flow map in block collection must be sufficiently indented and end with a }' },
  // the parser notices the missing quote where the file ends (line 12), not where the string starts (line 6)
  'yaml-unterminated-string': { file: 'services.yaml', line: 12, column: 1, message: 'YAML: Missing closing "quote' },
  'yaml-tab-indentation': { file: 'network.yaml', line: 3, column: 1, message: 'Tabs are not allowed as indentation' },
  'yaml-bad-indentation': { file: 'services.yaml', line: 6, column: 1, message: 'All mapping items must start at the same column' },
  'yaml-duplicate-key': { file: 'services.yaml', line: 7, column: 5, message: 'Map keys must be unique' },
  'yaml-top-level-list': { file: 'services.yaml', line: 2, column: 1, message: 'expected object, received array' },
  'binary-nul-byte': { file: 'services.yaml', line: 6, column: 19, message: 'NUL byte' },
  // types and ranges
  'type-port-string': { file: 'services.yaml', line: 7, column: 14, message: 'services.server.ports.main: expected number, received string' },
  'type-env-list': { file: 'services.yaml', line: 8, column: 5, message: 'services.server.env: expected record, received array' },
  'type-dependson-string': { file: 'services.yaml', line: 11, column: 5, message: 'services.client.dependsOn: expected array, received string' },
  'type-unknown-service-type': { file: 'services.yaml', line: 4, column: 5, message: 'services.server.type: expected one of "process"|"file"|"script"' },
  'port-out-of-range': { file: 'services.yaml', line: 7, column: 14, message: '<=65535' },
  'port-zero': { file: 'services.yaml', line: 7, column: 14, message: '>=1' },
  // unknown fields
  'unknown-field-service': { file: 'services.yaml', line: 8, column: 5, message: 'services.server.restart: unknown field "restart"' },
  'unknown-field-machine': { file: 'network.yaml', line: 6, column: 5, message: 'machines.m2.adress: unknown field "adress"' },
  'unknown-field-root': { file: 'strata.yaml', line: 5, column: 1, message: 'servces: unknown field "servces"' },
  // missing required fields
  'missing-start': { file: 'services.yaml', line: 3, column: 3, message: 'services.server.start: is required for a service of type "process"' },
  'missing-path-file-service': { file: 'services.yaml', line: 3, column: 3, message: 'services.server.path: is required for a service of type "file"' },
  'missing-type': { file: 'services.yaml', line: 3, column: 3, message: 'services.server.type: is required (expected one of "process"|"file"|"script"|"postgresql-database")' },
  'missing-address': { file: 'network.yaml', line: 5, column: 3, message: 'machines.m2.address: is required' },
  'missing-root-distribution': { file: 'strata.yaml', line: 2, column: 1, message: 'distribution: is required (expected a file path' },
  // references
  'unknown-machine': { file: 'distribution.yaml', line: 4, column: 3, message: 'unknown machine "m9"' },
  'unknown-service-in-distribution': { file: 'distribution.yaml', line: 5, column: 3, message: 'distribution.ghost: unknown service "ghost"' },
  'unknown-container': { file: 'distribution.yaml', line: 4, column: 3, message: 'unknown container "postgresql" on machine "m2"' },
  'unknown-dependency': { file: 'services.yaml', line: 11, column: 25, message: 'services.client.dependsOn[1]: unknown service "database"' },
  'unknown-container-daemon': { file: 'network.yaml', line: 6, column: 21, message: 'unknown daemon "postgres" on machine "m1"' },
  'dependency-not-distributed': { file: 'services.yaml', line: 10, column: 17, message: '"server" is not distributed to any machine' },
  'database-without-container': { file: 'distribution.yaml', line: 5, column: 3, message: '"app-db" is a postgresql-database and must be placed into a container' },
  'placed-twice': { file: 'distribution.yaml', line: 4, column: 16, message: '"client" is placed on machine "m2" twice' },
  // cycles
  'cycle-self': { file: 'services.yaml', line: 8, column: 17, message: 'a service cannot name itself in dependsOn' },
  'cycle-two': { file: 'services.yaml', line: 12, column: 17, message: 'dependency cycle: client -> server -> client' },
  'cycle-three': { file: 'services.yaml', line: 6, column: 17, message: 'dependency cycle: a -> b -> c -> a' },
  // ports
  'duplicate-port': { file: 'distribution.yaml', line: 3, column: 3, message: 'port 5000 on machine "m1" is already used by service "server"' },
  // unsafe names and values
  'unsafe-name-command-substitution': { file: 'services.yaml', line: 8, column: 3, message: SAFE_NAME },
  'unsafe-name-quote': { file: 'network.yaml', line: 5, column: 3, message: SAFE_NAME },
  'unsafe-name-newline': { file: 'services.yaml', line: 8, column: 3, message: SAFE_NAME },
  'unsafe-name-unicode': { file: 'network.yaml', line: 5, column: 3, message: SAFE_NAME },
  'unsafe-name-in-reference': { file: 'services.yaml', line: 11, column: 17, message: `services.client.dependsOn[0]: ${SAFE_NAME}` },
  'unsafe-env-name': { file: 'services.yaml', line: 9, column: 7, message: 'expected an environment variable name' },
  'unsafe-address': { file: 'network.yaml', line: 4, column: 5, message: 'machines.m1.address: expected a host name or IP address' },
  'unsafe-ssh-user': { file: 'network.yaml', line: 5, column: 12, message: 'machines.m1.ssh.user: expected a POSIX user name' },
  'root-unsafe-name': { file: 'strata.yaml', line: 2, column: 1, message: `name: ${SAFE_NAME}` },
  // paths
  'artifact-parent-escape': { file: 'services.yaml', line: 5, column: 5, message: '"../../etc/passwd" leaves the deployment directory {dir}' },
  'artifact-absolute': { file: 'services.yaml', line: 5, column: 5, message: 'expected a path relative to this file' },
  'file-service-outside-allowed-paths': { file: 'distribution.yaml', line: 2, column: 3, message: 'writes to /etc/cron.d, outside the allowedPaths of machine "m1"' },
  'machine-file-outside-allowed-paths': { file: 'network.yaml', line: 6, column: 9, message: `"/etc/passwd" is outside this machine's allowedPaths` },
  'machine-directory-inside-runtime-root': { file: 'network.yaml', line: 7, column: 9, message: `"/var/lib/strata/items" is inside this machine's runtime root /var/lib/strata` },
  'path-dotdot-segments': { file: 'services.yaml', line: 6, column: 5, message: 'must not contain "." or ".." segments' },
  'path-relative-machine-file': { file: 'network.yaml', line: 7, column: 11, message: 'expected an absolute path' },
  // huge values
  'huge-env-value': { file: 'services.yaml', line: 9, column: 7, message: 'services.server.env.BLOB: is too long (at most 65536 characters)' },
  // the root file
  'root-missing-network-file': { file: 'strata.yaml', line: 3, column: 25, message: 'network[1]: network file "{dir}/network.physical.yaml" cannot be read' },
  'root-file-outside-directory': { file: 'strata.yaml', line: 3, column: 1, message: 'is outside the deployment directory {dir}' },
  // merging and targets
  'network-conflict': { file: 'network.physical.yaml', line: 4, column: 5, message: 'conflicts with {dir}/network.logical.yaml:5:5 ("10.0.0.1" there, "10.9.9.9" here)' },
  'local-non-loopback': { file: 'network.yaml', line: 5, column: 5, message: 'a local machine needs a loopback address' },
};

function capture(): Io & { stdout: () => string; stderr: () => string } {
  let out = '';
  let err = '';
  return { out: (s) => void (out += s), err: (s) => void (err += s), tty: false, stdout: () => out, stderr: () => err };
}

/** Every file under dir with its size and mtime, to prove nothing was written. */
function snapshot(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .sort()
    .map((p) => {
      const st = statSync(join(dir, p));
      return `${p} ${st.size} ${st.mtimeMs}`;
    });
}

const cases = readdirSync(CORPUS, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();

const tmpDirs: string[] = [];
afterAll(() => {
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

describe('the bad-input corpus', () => {
  it('has an expectation for every case and a case for every expectation', () => {
    expect(cases).toEqual(Object.keys(EXPECTED).sort());
    expect(cases.length).toBeGreaterThanOrEqual(30);
  });

  it('is listed in the README', () => {
    const readme = readFileSync(join(CORPUS, 'README.md'), 'utf8');
    for (const c of cases) expect(readme, c).toContain(`\`${c}\``);
  });

  it('holds a real NUL byte in the binary case', () => {
    expect(readFileSync(join(CORPUS, 'binary-nul-byte/services.yaml')).includes(0)).toBe(true);
  });

  it('breaks a deployment that is otherwise valid (control: the same shape validates)', async () => {
    // The corpus cases start from this deployment; it must pass, so the errors come from the breakage.
    const dir = mkdtempSync(join(tmpdir(), 'strata-good-'));
    tmpDirs.push(dir);
    mkdirSync(join(dir, 'server'));
    writeFileSync(join(dir, 'server/server.js'), 'console.log("hi");\n');
    writeFileSync(join(dir, 'strata.yaml'), 'name: bad-case\nnetwork: network.yaml\nservices: services.yaml\ndistribution: distribution.yaml\n');
    writeFileSync(join(dir, 'network.yaml'), readFileSync(join(CORPUS, 'missing-start/network.yaml')));
    writeFileSync(join(dir, 'distribution.yaml'), readFileSync(join(CORPUS, 'missing-start/distribution.yaml')));
    // missing-start's services with the start command put back
    const services = readFileSync(join(CORPUS, 'missing-start/services.yaml'), 'utf8').replace('    artifact: server\n', '    artifact: server\n    start: node server.js\n');
    writeFileSync(join(dir, 'services.yaml'), services);
    const io = capture();
    expect(await main(['validate', join(dir, 'strata.yaml')], io), io.stderr()).toBe(0);
    expect(io.stdout()).toContain('bad-case: valid (2 machines, 2 services, 2 instances)');
  });
});

describe.each(cases)('bad input %s', (name) => {
  const dir = join(CORPUS, name);
  const root = join(dir, 'strata.yaml');
  const commands: [string, (state: string) => string[]][] = [
    ['validate', () => ['validate', root]],
    ['plan', (state) => ['plan', root, '--state', state]],
    ['apply', (state) => ['apply', root, '--state', state]],
  ];

  it.each(commands)('%s refuses it with exit code 2, file:line:column and no state written', async (_, argv) => {
    const exp = EXPECTED[name];
    expect(exp, `no expectation for ${name}`).toBeDefined();
    const state = mkdtempSync(join(tmpdir(), 'strata-bad-state-'));
    tmpDirs.push(state);
    const before = snapshot(dir);
    const io = capture();

    const code = await main(argv(state), io);
    const err = io.stderr();

    expect(code, err).toBe(2);
    expect(io.stdout()).toBe('');
    expect(err).toContain('the models are invalid');
    expect(err).toContain('no machine was touched');

    // the expected position, followed (within the same issue) by the expected message
    const at = `${join(dir, exp!.file)}:${exp!.line}:${exp!.column}: `;
    const start = err.indexOf(at);
    expect(start, `stderr lacks ${at}\n${err}`).toBeGreaterThanOrEqual(0);
    const next = err.indexOf('\n  /', start + at.length);
    const issue = err.slice(start, next < 0 ? undefined : next);
    expect(issue).toContain(exp!.message.replaceAll('{dir}', dir));

    // every position printed names a file of this deployment
    const positions = [...err.matchAll(/^ {2}(\/[^\n]*?):(\d+):(\d+): /gm)].map((m) => m[1]!);
    expect(positions.length).toBeGreaterThan(0);
    for (const p of positions) expect(p.startsWith(`${dir}/`), p).toBe(true);

    // nothing was recorded, nothing in the case directory changed
    expect(readdirSync(state)).toEqual([]);
    expect(snapshot(dir)).toEqual(before);
  });
});
