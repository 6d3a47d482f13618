import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readRegularFile } from './regularFile.ts';

// Real files of every kind; a read of one that is not a regular file must return at once.
const dir = mkdtempSync(join(tmpdir(), 'strata-regular-'));
let socket: Server;
beforeAll(async () => {
  writeFileSync(join(dir, 'file'), 'twelve bytes');
  mkdirSync(join(dir, 'dir'));
  execFileSync('mkfifo', [join(dir, 'fifo')]);
  symlinkSync('/dev/zero', join(dir, 'zero-link'));
  symlinkSync(join(dir, 'fifo'), join(dir, 'fifo-link'));
  symlinkSync(join(dir, 'file'), join(dir, 'file-link'));
  symlinkSync(join(dir, 'nowhere'), join(dir, 'dangling'));
  symlinkSync('loop', join(dir, 'loop'));
  socket = createServer();
  await new Promise<void>((r) => socket.listen(join(dir, 'sock'), r));
});
afterAll(() => {
  socket.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('readRegularFile', () => {
  it('reads a regular file, directly or through a symlink', () => {
    expect(readRegularFile(join(dir, 'file'), 100)).toEqual({ bytes: Buffer.from('twelve bytes') });
    expect(readRegularFile(join(dir, 'file-link'), 100)).toEqual({ bytes: Buffer.from('twelve bytes') });
  });

  it('refuses every other kind of file without opening it', () => {
    const cases: [string, RegExp][] = [
      ['/dev/zero', /is a character device, not a regular file/],
      ['/dev/null', /is a character device/],
      [join(dir, 'dir'), /is a directory/],
      [join(dir, 'fifo'), /is a FIFO \(named pipe\)/],
      [join(dir, 'sock'), /is a socket/],
      [join(dir, 'zero-link'), /is a symlink to \/dev\/zero, a character device/],
      [join(dir, 'fifo-link'), /is a symlink to .*fifo, a FIFO/],
      [join(dir, 'loop'), /symlink loop/],
    ];
    for (const [path, why] of cases) {
      const r = readRegularFile(path, 1 << 20);
      expect(r).toMatchObject({ refused: 'not-a-file' });
      expect('why' in r && r.why).toMatch(why);
    }
  });

  it('says when a file is missing or over the bound', () => {
    expect(readRegularFile(join(dir, 'none'), 10)).toEqual({ refused: 'missing', why: 'does not exist' });
    expect(readRegularFile(join(dir, 'dangling'), 10)).toEqual({ refused: 'missing', why: 'is a symlink to a file that does not exist' });
    expect(readRegularFile(join(dir, 'file', 'x'), 10)).toMatchObject({ refused: 'missing' });
    expect(readRegularFile(join(dir, 'file'), 11)).toEqual({ refused: 'too-large', why: 'is 12 bytes, over the limit of 11' });
  });
});
