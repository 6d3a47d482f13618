// The Helm chart, the Dockerfile and the CI examples, checked without helm or docker: the
// chart's default config passes the controller's own validation, the templates' blocks
// balance, and the paths and ports the Dockerfile, the Deployment and the config name agree.
import { readdirSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse, parseDocument, stringify } from 'yaml';
import { parseControllerConfig } from '../../src/controller/loadConfig.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const read = (path: string): string => readFileSync(`${ROOT}/${path}`, 'utf8');
const TEMPLATES = 'charts/strata/templates';
const MARKER = '<!-- strata-plan -->';

type Values = {
  replicaCount: number;
  terminationGracePeriodSeconds: number;
  service: { port: number };
  config: Record<string, unknown>;
  podSecurityContext: { runAsUser: number; runAsNonRoot: boolean; fsGroup: number };
  securityContext: { readOnlyRootFilesystem: boolean; allowPrivilegeEscalation: boolean };
  persistence: { accessMode: string };
  secrets: Record<string, string>;
  serviceMonitor: { enabled: boolean; interval: string };
};

const values = parse(read('charts/strata/values.yaml')) as Values;
const deployment = read(`${TEMPLATES}/deployment.yaml`);

// ------------------------------------------------------------------ Go template actions

type Action = { line: number; body: string };

/** Every `{{ ... }}` action of a template, with its line and its body without the trim markers. */
function actions(src: string): Action[] {
  return [...src.matchAll(/\{\{(-\s)?([\s\S]*?)(\s-)?\}\}/g)].map((m) => ({
    line: src.slice(0, m.index).split('\n').length,
    body: m[2]!.trim(),
  }));
}

/** Problems with a template's structure: unbalanced blocks, parentheses, stray braces. */
function blockProblems(src: string): string[] {
  const problems: string[] = [];
  const open: { word: string; line: number }[] = [];
  for (const { line, body } of actions(src)) {
    if (body.startsWith('/*')) {
      if (!body.endsWith('*/')) problems.push(`line ${line}: unterminated comment`);
      continue;
    }
    const word = /^[a-z]+/.exec(body)?.[0];
    if (word === 'if' || word === 'with' || word === 'range' || word === 'define' || word === 'block') {
      open.push({ word, line });
    } else if (word === 'else') {
      const top = open.at(-1);
      if (!top || !['if', 'with', 'range'].includes(top.word)) problems.push(`line ${line}: {{ else }} outside if/with/range`);
    } else if (word === 'end') {
      if (!open.pop()) problems.push(`line ${line}: {{ end }} closes nothing`);
    }
    const code = body.replace(/"(\\.|[^"\\])*"|`[^`]*`/g, '""');
    const depth = [...code].reduce((d, c) => (d < 0 ? d : c === '(' ? d + 1 : c === ')' ? d - 1 : d), 0);
    if (depth !== 0) problems.push(`line ${line}: unbalanced parentheses in {{ ${body} }}`);
  }
  for (const o of open) problems.push(`line ${o.line}: {{ ${o.word} }} is never closed by {{ end }}`);
  const rest = src.replace(/\{\{(-\s)?([\s\S]*?)(\s-)?\}\}/g, '');
  if (rest.includes('{{') || rest.includes('}}')) problems.push('a stray "{{" or "}}" outside any action');
  return problems;
}

// ------------------------------------------------------------------ the Deployment template, by indentation

const indentOf = (l: string): number => l.length - l.trimStart().length;

/** The lines nested under the first `key:` line (at any depth) of a YAML-ish template. */
function block(lines: string[], key: string): string[] {
  const i = lines.findIndex((l) => new RegExp(`^\\s*(- )?${key}:\\s*$`).test(l));
  if (i < 0) throw new Error(`no "${key}:" block`);
  const indent = indentOf(lines[i]!) + (lines[i]!.trimStart().startsWith('- ') ? 2 : 0);
  const out: string[] = [];
  for (const l of lines.slice(i + 1)) {
    if (l.trim() !== '' && indentOf(l) <= indent) break;
    out.push(l);
  }
  return out;
}

/** The items of a block sequence, each as its lines. */
function itemLines(lines: string[]): string[][] {
  const first = lines.find((l) => l.trimStart().startsWith('- '));
  const out: string[][] = [];
  for (const l of lines) {
    if (first && indentOf(l) === indentOf(first) && l.trimStart().startsWith('- ')) out.push([]);
    out.at(-1)?.push(l);
  }
  return out;
}

/** The `key: scalar` fields of some lines, the first of each key (template-only lines ignored). */
function fields(lines: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of lines) {
    const m = /^\s*(?:- )?([A-Za-z][\w-]*):\s*(.*?)\s*$/.exec(l);
    if (m && !(m[1]! in out)) out[m[1]!] = m[2]!;
  }
  return out;
}

const items = (lines: string[]): Record<string, string>[] => itemLines(lines).map(fields);

/** A scalar of the template: `{{ .Values.a.b }}` looked up in values.yaml, else the literal. */
function resolve(scalar: string): unknown {
  const m = /^\{\{-?\s*\.Values\.([\w.]+)\s*-?\}\}$/.exec(scalar);
  if (!m) return /^\d+$/.test(scalar) ? Number(scalar) : scalar.replace(/^"(.*)"$/, '$1');
  return m[1]!.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], values);
}

const lines = deployment.split('\n');
const mounts = items(block(lines, 'volumeMounts'));
const env = Object.fromEntries(items(block(lines, 'env')).map((e) => [e.name, e.value]));
const mount = (path: string): Record<string, string | undefined> & { volume: string } => {
  const m = mounts.find((x) => x.mountPath === path);
  if (!m) throw new Error(`the Deployment mounts nothing at ${path}`);
  const volume = itemLines(block(lines, 'volumes')).find((v) => fields(v).name === m.name);
  if (!volume) throw new Error(`no volume ${m.name}`);
  return { ...m, volume: volume.join('\n') };
};

/** The port a probe's httpGet uses, a named container port followed to its number. */
function probe(kind: 'livenessProbe' | 'readinessProbe'): { path: string; port: unknown } {
  const { path, port } = fields(block(lines, kind));
  const named = items(block(lines, 'ports')).find((p) => p.name === port);
  return { path: path!, port: named ? resolve(named.containerPort!) : resolve(port!) };
}

/** Every `{ file: PATH }` secret reference in a config, with where it is. */
function fileRefs(v: unknown, at = 'config'): { at: string; file: string }[] {
  if (Array.isArray(v)) return v.flatMap((x, i) => fileRefs(x, `${at}[${i}]`));
  if (v === null || typeof v !== 'object') return [];
  return Object.entries(v).flatMap(([k, x]) => (k === 'file' && typeof x === 'string' ? [{ at, file: x }] : fileRefs(x, `${at}.${k}`)));
}

const secretKeys = [...read(`${TEMPLATES}/secret.yaml`).matchAll(/^\s+([\w.-]+): \{\{ \. \| b64enc/gm)].map((m) => m[1]!);
const deploymentArgs = JSON.parse(/^\s*args: (\[.*\])\s*$/m.exec(deployment)![1]!) as string[];
const configArg = (args: string[]): string | undefined => args[args.indexOf('--config') + 1];

// ------------------------------------------------------------------ the Dockerfile

type Instruction = { op: string; args: string };

function dockerStages(text: string): { from: string; body: Instruction[] }[] {
  const joined = text
    .split('\n')
    .filter((l) => !l.trimStart().startsWith('#'))
    .join('\n')
    .replace(/\\\n/g, ' ');
  const stages: { from: string; body: Instruction[] }[] = [];
  for (const l of joined.split('\n')) {
    const m = /^\s*([A-Z]+)\s+(.*?)\s*$/.exec(l);
    if (!m) continue;
    if (m[1] === 'FROM') stages.push({ from: m[2]!, body: [] });
    else stages.at(-1)?.body.push({ op: m[1]!, args: m[2]! });
  }
  return stages;
}

const stages = dockerStages(read('Dockerfile'));
const final = stages.at(-1)!;
const last = (op: string): string | undefined => final.body.filter((i) => i.op === op).at(-1)?.args;

// ------------------------------------------------------------------ tests

/** The chart's default config, through the controller's own parser (throws a ModelError with file:line:column). */
const defaultConfig = () => parseControllerConfig('values.yaml#config', stringify(values.config));

describe('values.yaml', () => {
  it("holds a controller configuration the controller's own schema accepts", () => {
    expect(defaultConfig).not.toThrow();
    const config = defaultConfig();
    expect(config.deployments.length).toBeGreaterThan(0);
    expect(config.listen).toMatch(/^(0\.0\.0\.0|\[::\]):\d+$/); // reachable from the Service, not loopback
  });

  it('listens on the service port, which the probes use', () => {
    const listenPort = Number(defaultConfig().listen.split(':').at(-1));
    expect(listenPort).toBe(values.service.port);
    expect(probe('livenessProbe')).toEqual({ path: '/healthz', port: listenPort });
    expect(probe('readinessProbe')).toEqual({ path: '/readyz', port: listenPort });
    expect(read(`${TEMPLATES}/service.yaml`)).toMatch(/port: \{\{ \.Values\.service\.port \}\}\s+targetPort: http\b/);
  });

  it('runs one replica, recreated, on a ReadWriteOnce volume', () => {
    expect(values.replicaCount).toBe(1);
    expect(block(lines, 'strategy').map((l) => l.trim())).toContain('type: Recreate');
    expect(values.persistence.accessMode).toBe('ReadWriteOnce');
    // SIGTERM lets a transition in flight finish: the grace period must leave it time.
    expect(deployment).toContain('terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}');
    expect(values.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(120);
  });

  it('runs as a non-root user, on a read-only root filesystem with a writable /tmp', () => {
    expect(values.podSecurityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001, fsGroup: 10001 });
    expect(values.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
    expect(mount('/tmp').volume).toMatch(/emptyDir: \{\}/);
  });

  it('has no secret values and no ServiceMonitor by default', () => {
    expect(Object.entries(values.secrets).filter(([, v]) => v !== '')).toEqual([]);
    expect(values.serviceMonitor).toMatchObject({ enabled: false, interval: '30s' });
  });

  it('refuses a config the schema rejects (the check above can fail)', () => {
    const bad = stringify({ ...values.config, apiToken: { file: '/x', env: 'Y' } });
    expect(() => parseControllerConfig('values.yaml#config', bad)).toThrow(/exactly one of "file" or "env"/);
  });
});

describe('templates', () => {
  const files = readdirSync(`${ROOT}/${TEMPLATES}`).sort();

  it('are all there', () => {
    expect(files).toEqual(
      ['NOTES.txt', '_helpers.tpl', 'configmap.yaml', 'deployment.yaml', 'pvc.yaml', 'secret.yaml', 'service.yaml', 'servicemonitor.yaml'].sort(),
    );
  });

  it.each(files)('%s has balanced {{ if/with/range/define }} … {{ end }} blocks', (file) => {
    expect(blockProblems(read(`${TEMPLATES}/${file}`))).toEqual([]);
  });

  it('the block checker finds what is wrong', () => {
    expect(blockProblems('{{- if .a }}x{{- else if .b }}y{{ else }}z{{ end }}{{/* c */}}')).toEqual([]);
    expect(blockProblems('{{- define "x" -}}{{ with .a }}{{ range . }}{{ end }}{{ end }}{{- end -}}')).toEqual([]);
    expect(blockProblems('{{ if .a }}\nx')).toEqual(['line 1: {{ if }} is never closed by {{ end }}']);
    expect(blockProblems('x\n{{- end }}')).toEqual(['line 2: {{ end }} closes nothing']);
    expect(blockProblems('{{ else }}')).toEqual(['line 1: {{ else }} outside if/with/range']);
    expect(blockProblems('{{ include "x" (dict "a" "(") }}')).toEqual([]);
    expect(blockProblems('{{ toYaml (.a }}')).toEqual(['line 1: unbalanced parentheses in {{ toYaml (.a }}']);
    expect(blockProblems('{{ .a }')).toEqual(['a stray "{{" or "}}" outside any action']);
  });

  it('make the optional resources optional', () => {
    expect(read(`${TEMPLATES}/secret.yaml`)).toMatch(/^\{\{- if not \.Values\.secrets\.existingSecret \}\}/);
    expect(read(`${TEMPLATES}/pvc.yaml`)).toMatch(/^\{\{- if \.Values\.persistence\.enabled \}\}/);
    const monitor = read(`${TEMPLATES}/servicemonitor.yaml`);
    expect(monitor).toMatch(/^\{\{- if \.Values\.serviceMonitor\.enabled \}\}/);
    expect(monitor).toMatch(/- port: http\s+path: \/metrics\s+interval: \{\{ \.Values\.serviceMonitor\.interval \}\}/);
  });

  it('roll the pod when the config changes', () => {
    expect(deployment).toContain('checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}');
  });
});

describe('the Deployment mounts what the default config refers to', () => {
  const configMount = () => mount('/etc/strata/controller.yaml');
  const secretsMount = () => mount('/etc/strata/secrets');

  it('the config at /etc/strata/controller.yaml, from the ConfigMap, and starts with it', () => {
    const { subPath, volume, mountPath } = configMount();
    expect(subPath).toBe('controller.yaml');
    expect(volume).toMatch(/configMap:\s+name: \{\{ include "strata\.fullname" \. \}\}/);
    expect(read(`${TEMPLATES}/configmap.yaml`)).toMatch(/^ {2}controller\.yaml: \|\n {4}\{\{- toYaml \.Values\.config \| nindent 4 \}\}/m);
    expect(configArg(deploymentArgs)).toBe(mountPath);
  });

  it('every secret file of the config under the mounted Secret, as one of its keys', () => {
    const { volume, mountPath } = secretsMount();
    expect(volume).toMatch(/secret:\s+secretName: \{\{ include "strata\.secretName" \. \}\}\s+defaultMode: 0400/);
    const refs = fileRefs(values.config);
    expect(refs.map((r) => r.at)).toEqual(['config.apiToken', 'config.deployments[0].repository.password', 'config.deployments[0].webhook.secret']);
    for (const { at, file } of refs) {
      expect(posix.dirname(file), at).toBe(mountPath);
      expect(secretKeys, at).toContain(posix.basename(file));
    }
    expect(secretKeys.sort()).toEqual(['api-token', 'git-token', 'known_hosts', 'ssh-key', 'webhook-secret']);
  });

  it('the machines’ SSH key and known_hosts from the same Secret', () => {
    expect(posix.dirname(env.STRATA_SSH_KEY_FILE!)).toBe(secretsMount().mountPath);
    expect(secretKeys).toContain(posix.basename(env.STRATA_SSH_KEY_FILE!));
    const knownHosts = mount(`${env.HOME}/.ssh`);
    expect(knownHosts.volume).toMatch(/secretName: \{\{ include "strata\.secretName" \. \}\}[\s\S]*- key: known_hosts\s+path: known_hosts/);
  });

  it('the state volume at the config’s stateDir', () => {
    const config = defaultConfig();
    const state = mount(config.stateDir);
    expect(state.name).toBe('state');
    expect(state.volume).toMatch(
      /\{\{- if \.Values\.persistence\.enabled \}\}\s+persistentVolumeClaim:\s+claimName: \{\{ include "strata\.fullname" \. \}\}\s+\{\{- else \}\}\s+emptyDir: \{\}\s+\{\{- end \}\}/,
    );
    expect(read(`${TEMPLATES}/pvc.yaml`)).toMatch(/kind: PersistentVolumeClaim\s+metadata:\s+name: \{\{ include "strata\.fullname" \. \}\}/);
    expect(env.STRATA_STATE_DIR).toBe(config.stateDir);
  });

  it('nothing else under /etc/strata', () => {
    expect(mounts.filter((m) => m.mountPath!.startsWith('/etc/strata')).map((m) => m.mountPath)).toEqual([configMount().mountPath, secretsMount().mountPath]);
  });
});

describe('Dockerfile', () => {
  it('builds on node:20-bookworm-slim, dependencies without dev ones', () => {
    expect(stages.map((s) => s.from)).toEqual(['node:20-bookworm-slim AS deps', 'node:20-bookworm-slim']);
    expect(stages[0]!.body.some((i) => i.op === 'RUN' && /\bnpm ci --omit=dev\b/.test(i.args))).toBe(true);
  });

  it('starts the controller with the config the chart mounts', () => {
    expect(JSON.parse(last('ENTRYPOINT')!)).toEqual(['node', '/app/bin/strata.js']);
    const cmd = JSON.parse(last('CMD')!) as string[];
    expect(configArg(cmd)).toBe(mount('/etc/strata/controller.yaml').mountPath);
    expect(cmd).toEqual(deploymentArgs);
  });

  it('runs as the chart’s non-root user', () => {
    const user = last('USER')!.split(':')[0]!;
    expect(['', 'root', '0']).not.toContain(user);
    expect(Number(user)).toBe(values.podSecurityContext.runAsUser);
  });

  it('exposes and health-checks the service port', () => {
    expect(last('EXPOSE')).toBe(String(values.service.port));
    expect(last('HEALTHCHECK')).toContain(`http://127.0.0.1:${values.service.port}/healthz`);
  });

  it('keeps its state where the config does', () => {
    const config = defaultConfig();
    expect(final.body.find((i) => i.op === 'ENV')?.args).toContain(`STRATA_STATE_DIR=${config.stateDir}`);
    expect(JSON.parse(last('VOLUME')!)).toEqual([config.stateDir]);
  });

  it('copies only the dependencies, package.json, bin/ and src/ into the final image', () => {
    const copies = final.body.filter((i) => i.op === 'COPY').map((i) => i.args);
    expect(copies).toEqual(['--from=deps /app/node_modules ./node_modules', 'package.json ./', 'bin ./bin', 'src ./src']);
    const ignored = read('.dockerignore').split('\n');
    for (const p of ['node_modules', '.git', '.strata', 'test', 'bench', 'docs', 'src/**/*.test.ts', '*.log']) expect(ignored).toContain(p);
  });
});

describe('CI examples', () => {
  it('GitHub Actions: plans the pull request against its base and keeps one comment', () => {
    const doc = parseDocument(read('examples/ci/github-actions/strata-plan.yml'));
    expect(doc.errors).toEqual([]);
    const wf = doc.toJS() as {
      on: Record<string, unknown>;
      permissions: Record<string, string>;
      jobs: { plan: { steps: { uses?: string; run?: string; with?: Record<string, unknown>; env?: Record<string, string> }[] } };
    };
    expect(Object.keys(wf.on)).toEqual(['pull_request']);
    expect(wf.permissions).toEqual({ contents: 'read', 'pull-requests': 'write' });
    const steps = wf.jobs.plan.steps;
    expect(steps.find((s) => s.uses?.startsWith('actions/checkout@'))?.with).toMatchObject({ 'fetch-depth': 0 });
    expect(steps.find((s) => s.uses?.startsWith('actions/setup-node@'))?.with).toMatchObject({ 'node-version': 20 });
    const plan = steps.find((s) => s.run?.includes('strata plan'))!;
    expect(plan.run).toContain('npx strata plan --repo . --offline --base "origin/$BASE_REF" --head HEAD --format markdown > plan.md');
    expect(plan.env).toEqual({ BASE_REF: '${{ github.base_ref }}' });
    const script = String(steps.find((s) => s.uses?.startsWith('actions/github-script@'))?.with?.script);
    expect(script).toContain(`const marker = '${MARKER}';`);
    const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (...args: string[]) => unknown;
    expect(() => new AsyncFunction('github', 'context', 'core', 'require', script)).not.toThrow();
  });

  it('GitLab CI: plans the merge request against its target and keeps one note', () => {
    const doc = parseDocument(read('examples/ci/gitlab-ci/.gitlab-ci.yml'));
    expect(doc.errors).toEqual([]);
    const job = (doc.toJS() as Record<string, { rules: { if: string }[]; variables: Record<string, string>; script: string[] }>)['strata-plan']!;
    expect(job.rules).toEqual([{ if: '$CI_PIPELINE_SOURCE == "merge_request_event"' }]);
    expect(job.variables).toMatchObject({ GIT_DEPTH: '0', STRATA_PLAN_MARKER: MARKER });
    const script = job.script.join('\n');
    expect(script).toContain('npx strata plan --repo . --offline --base "origin/${CI_MERGE_REQUEST_TARGET_BRANCH_NAME}" --head HEAD --format markdown > plan.md');
    expect(script).toContain('PRIVATE-TOKEN: $STRATA_GITLAB_TOKEN');
    expect(script).toMatch(/--request PUT[\s\S]*"\$notes\/\$note_id"/);
    expect(script).toMatch(/--request POST[\s\S]*"\$notes"/);
  });

  it('the README explains the marker both use', () => {
    expect(read('examples/ci/README.md')).toContain(MARKER);
  });
});
