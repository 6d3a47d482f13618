import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readSecret } from './secrets.ts';

const dir = mkdtempSync(join(tmpdir(), 'strata-secrets-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const refused = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return e as { code: string; message: string };
  }
  throw new Error('not refused');
};

describe('readSecret: one rule for every secret', () => {
  it('reads a file or a variable, trimmed', () => {
    expect(readSecret({ file: file('token', '  s3cret\n') }, 'the API token')).toBe('s3cret');
    process.env.STRATA_TEST_SECRET = ' v4lue \n';
    expect(readSecret({ env: 'STRATA_TEST_SECRET' }, 'the API token')).toBe('v4lue');
  });

  it('refuses an empty file and an empty variable alike, with SECRET_MISSING naming where and never the value', () => {
    const empty = refused(() => readSecret({ file: file('empty', ' \n\t') }, 'the webhook secret of app'));
    expect(empty).toMatchObject({ code: 'SECRET_MISSING' });
    expect(empty.message).toBe(`the webhook secret of app: ${join(dir, 'empty')} is empty`);
    process.env.STRATA_TEST_EMPTY = '  ';
    expect(refused(() => readSecret({ env: 'STRATA_TEST_EMPTY' }, 'the password for repo'))).toMatchObject({ code: 'SECRET_MISSING', message: 'the password for repo: environment variable STRATA_TEST_EMPTY is empty' });
  });

  it('refuses a missing file and an unset variable with the same code', () => {
    expect(refused(() => readSecret({ file: join(dir, 'absent') }, 'the SSH key'))).toMatchObject({ code: 'SECRET_MISSING', message: `the SSH key: cannot read ${join(dir, 'absent')}: it does not exist` });
    delete process.env.STRATA_TEST_UNSET;
    expect(refused(() => readSecret({ env: 'STRATA_TEST_UNSET' }, 'the SSH key'))).toMatchObject({ code: 'SECRET_MISSING', message: 'the SSH key: environment variable STRATA_TEST_UNSET is not set' });
  });

  it('reads only a regular file of secret size, so a FIFO or /dev/zero named as a secret never hangs', () => {
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    expect(refused(() => readSecret({ file: fifo }, '--token-file')).message).toBe(`--token-file: cannot read ${fifo}: it is a FIFO (named pipe), not a regular file`);
    expect(refused(() => readSecret({ file: '/dev/zero' }, 'the SSH key')).message).toBe('the SSH key: cannot read /dev/zero: it is a character device, not a regular file');
    const big = file('big', 'x'.repeat(1024 * 1024 + 1));
    expect(refused(() => readSecret({ file: big }, 'the API token')).message).toMatch(/over the limit of 1048576$/);
    // A secret mounted as a symlink (a Kubernetes secret volume's ..data links) is read.
    const link = join(dir, 'linked');
    symlinkSync(file('target', 'k8s\n'), link);
    expect(readSecret({ file: link }, 'the API token')).toBe('k8s');
  });

  it('never puts the value in an error', () => {
    const e = refused(() => readSecret({ file: dir }, 'the API token'));
    expect(e.code).toBe('SECRET_MISSING');
    expect(JSON.stringify(e)).not.toMatch(/s3cret/);
  });
});
