import { describe, expect, it } from 'vitest';
import { shHeader } from './protocol.ts';
import { assembleRuntime, RUNTIME_PARTS, runtimePath, runtimeScript } from './script.ts';

describe('the assembled runtime', () => {
  const fake = (changed?: string) => (part: string) => Buffer.from(`# ${part}${part === changed ? ' changed' : ''}\n`);

  it('is the protocol header, then every part in its fixed order, main.sh last', () => {
    const { script } = assembleRuntime(fake());
    const text = script.toString();
    expect(text.startsWith(shHeader())).toBe(true);
    const at = RUNTIME_PARTS.map((p) => text.indexOf(`# ${p}\n`));
    expect(at.every((i) => i > 0)).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    expect(RUNTIME_PARTS.at(-1)).toBe('main.sh');
  });

  it('changes its content address when any one part changes', () => {
    const hashes = new Set([assembleRuntime(fake()).hash, ...RUNTIME_PARTS.map((p) => assembleRuntime(fake(p)).hash)]);
    expect(hashes.size).toBe(RUNTIME_PARTS.length + 1);
  });

  it('reads the real parts relative to this module, once, and names its file by its hash', () => {
    const first = runtimeScript();
    expect(runtimeScript()).toBe(first);
    expect(first.hash).toMatch(/^[0-9a-f]{20}$/);
    expect(runtimePath('/var/lib/strata')).toBe(`/var/lib/strata/runtime/${first.hash}.sh`);
    expect(first.script.toString()).toContain('\nmain "$@"\n');
  });
});
