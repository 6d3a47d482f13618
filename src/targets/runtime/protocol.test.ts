import { describe, expect, it } from 'vitest';
import { EXIT, LOCK_ARG, shHeader, TOKEN, VERB_NAMES, verbExits } from './protocol.ts';

describe('the runtime protocol', () => {
  it('lets only the lock verbs answer "locked"', () => {
    const locking = VERB_NAMES.filter((v) => verbExits(v).includes(EXIT.LOCKED));
    expect(locking.sort()).toEqual(['lock', 'lock-upload', 'renew', 'unlock']);
    for (const v of VERB_NAMES) expect(verbExits(v)).toEqual(expect.arrayContaining([EXIT.OK, EXIT.FAILED, EXIT.USAGE]));
  });

  it('gives sh one plain assignment per value, after comments', () => {
    const lines = shHeader().trimEnd().split('\n');
    for (const line of lines) expect(line).toMatch(/^(#.*|[A-Z_]+=('[^']*'|[0-9]+))$/);
    expect(lines).toContain(`EXIT_LOCKED=${EXIT.LOCKED}`);
    expect(lines.find((l) => l.startsWith('VERBS_BUSY='))).toContain('lock-upload');
  });

  it('accepts the tokens strata makes and refuses what could leave a directory', () => {
    for (const t of ['s.web', 'f.0123abcd', 'dir.x', '-a']) expect(t).toMatch(TOKEN);
    for (const t of ['.', '..', '.x', 'a/b', 'a b', '']) expect(t).not.toMatch(TOKEN);
    expect('host:0a1b@x').toMatch(LOCK_ARG);
    expect('a b').not.toMatch(LOCK_ARG);
  });
});
