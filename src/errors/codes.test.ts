import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { classOf, EXIT, isKnownCode, knownCodes } from './codes.ts';

const SRC = join(import.meta.dirname, '..');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sources(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [path] : [];
  });
}

const CODE = String.raw`'([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*)'`;
/**
 * Where src/ names an error code: the first argument of `new XxxError(` or `super(` (also on
 * the next line, and either branch of a `?:` there), a `const code = ` choice, and a
 * `['CODE', message]` answer of the HTTP server to a request its parser refused.
 */
const PATTERNS = [
  new RegExp(String.raw`(?:new [A-Za-z]*Error|super)\(\s*${CODE}`, 'g'),
  new RegExp(String.raw`new [A-Za-z]*Error\([^,()]*?\?\s*${CODE}\s*:\s*${CODE}`, 'g'),
  new RegExp(String.raw`const code = [^;\n]*\?\s*${CODE}\s*:\s*${CODE}`, 'g'),
  new RegExp(String.raw`return \[${CODE}, (?:\`|'[a-z])`, 'g'),
];
/** A table from a refusal to its code: `const code = { … }` or `const XXX_CODE… = { … }`. */
const CODE_MAPS = /const (?:code|[A-Z_]*CODES?)\b[^=\n]*= \{([^}]*)\}/g;

function thrownCodes(): Map<string, string> {
  const found = new Map<string, string>();
  for (const file of sources(SRC)) {
    const text = readFileSync(file, 'utf8');
    const note = (code: string | undefined) => code && !found.has(code) && found.set(code, relative(SRC, file));
    for (const re of PATTERNS) for (const m of text.matchAll(re)) m.slice(1).forEach(note);
    for (const m of text.matchAll(CODE_MAPS)) for (const c of m[1]!.matchAll(new RegExp(CODE, 'g'))) note(c[1]);
  }
  return found;
}

describe('the error table', () => {
  it('lists every code thrown anywhere in src/', () => {
    const codes = thrownCodes();
    // The scan itself must see codes of every kind, or it would pass by finding nothing.
    for (const c of ['MODEL_INVALID', 'USAGE', 'GIT_HOST_KEY_MISMATCH', 'SNAPSHOT_SIDECAR_MISSING', 'AUTH_FAILED', 'BODY_TOO_LARGE', 'ARTIFACT_SYMLINK_LOOP', 'SNAPSHOT_TOO_LARGE', 'STATE_LOCKED']) expect(codes.has(c), c).toBe(true);
    const missing = [...codes].filter(([code]) => !isKnownCode(code)).map(([code, file]) => `${code} (${file})`);
    expect(missing, 'add these codes to src/errors/codes.ts').toEqual([]);
  });

  it('lists no code that src/ no longer throws', () => {
    const codes = thrownCodes();
    // Codes made by other means than the patterns above: a remote controller's answer, the CLI's fallback for a non-StrataError.
    const indirect = new Set(['CONTROLLER_ERROR', 'INTERNAL']);
    expect(knownCodes().filter((c) => !codes.has(c) && !indirect.has(c))).toEqual([]);
  });

  it('keeps the exit statuses users script on', () => {
    expect(classOf('MODEL_INVALID').exit).toBe(EXIT.badInput);
    expect(classOf('STALE_PLAN').exit).toBe(3);
    expect(classOf('MACHINE_LOCKED').exit).toBe(4);
    expect(classOf('STATE_LOCKED').exit).toBe(5);
    expect(classOf('STEP_FAILED').exit).toBe(1);
    expect(classOf('NO_SUCH_CODE').exit).toBe(1);
  });

  it('gives the controller one answer per code', () => {
    expect(classOf('MODEL_INVALID')).toMatchObject({ terminal: true, reason: 'ModelInvalid' });
    expect(classOf('ARTIFACT_SYMLINK_LOOP')).toMatchObject({ terminal: true, reason: 'ArtifactInvalid' });
    expect(classOf('ARTIFACT_CHANGED')).toMatchObject({ terminal: false, reason: 'ArtifactInvalid' });
    expect(classOf('CONNECT_TIMEOUT')).toMatchObject({ terminal: false, reason: 'MachineUnreachable' });
    expect(classOf('GIT_FETCH_FAILED').reason).toBe('SourceUnavailable');
    expect(classOf('STATE_LOCKED').reason).toBe('StateLocked');
    expect(classOf('DEPLOYMENT_NOT_FOUND').http).toBe(404);
    expect(classOf('USAGE').http).toBe(400);
    expect(classOf('STEP_FAILED').http).toBe(409);
  });
});
