import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, realpathSync, statSync, type Stats } from 'node:fs';
import { isSymlink } from './symlink.ts';

const READ_CHUNK = 1 << 30;

/** Why a file was not read; `why` completes a sentence that starts with the file's name. */
export type ReadRefusal = { refused: 'missing' | 'not-a-file' | 'too-large' | 'changed' | 'unreadable'; why: string };
export type ReadResult = { bytes: Buffer } | ReadRefusal;

/** The kind of file a stat describes, in words. */
export function fileKind(st: Stats): string {
  if (st.isFile()) return 'a regular file';
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSymbolicLink()) return 'a symlink';
  return 'not a regular file';
}

/** A path as a message may show it: as is, or JSON-quoted when it holds control characters. */
export function shownPath(path: string): string {
  return /[\u0000-\u001f\u007f-\u009f]/.test(path) ? JSON.stringify(path) : path;
}

/**
 * Where a path leads when it is a regular file of at most `maxBytes` (following a symlink),
 * judged from lstat/stat alone: nothing is opened, so this never blocks.
 */
export function regularFile(path: string, maxBytes: number): { real: string; stats: Stats } | ReadRefusal {
  let checked: Stats;
  let real = path;
  try {
    const l = lstatSync(path);
    if (l.isSymbolicLink()) {
      real = realpathSync(path);
      checked = statSync(real);
      if (!checked.isFile()) return { refused: 'not-a-file', why: `is a symlink to ${shownPath(real)}, ${fileKind(checked)}, not a regular file` };
    } else checked = l;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { refused: 'missing', why: real === path && !isSymlink(path) ? 'does not exist' : 'is a symlink to a file that does not exist' };
    if (code === 'ENOTDIR') return { refused: 'missing', why: 'does not exist (a component of its path is not a directory)' };
    if (code === 'ELOOP') return { refused: 'not-a-file', why: 'is a symlink loop' };
    return { refused: 'unreadable', why: `cannot be read (${code ?? (e as Error).message})` };
  }
  if (!checked.isFile()) return { refused: 'not-a-file', why: `is ${fileKind(checked)}, not a regular file` };
  if (checked.size > maxBytes) return { refused: 'too-large', why: `is ${checked.size} bytes, over the limit of ${maxBytes}` };
  return { real, stats: checked };
}

/**
 * Reads a regular file of at most `maxBytes`, and nothing else: a directory, FIFO, socket or
 * device (such as /dev/zero), or a symlink to one, is refused from its lstat/stat before it is
 * opened, so a read can neither hang (a FIFO with no writer) nor run forever (/dev/zero). The
 * file is opened O_NOFOLLOW | O_NONBLOCK and checked again on the descriptor (same inode,
 * still a regular file), and read to exactly the size it had: a file swapped, grown or
 * truncated meanwhile is refused rather than read in part.
 */
export function readRegularFile(path: string, maxBytes: number): ReadResult {
  const found = regularFile(path, maxBytes);
  if ('refused' in found) return found;
  const { real, stats: checked } = found;
  let fd: number;
  try {
    fd = openSync(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'ENOENT') return { refused: 'changed', why: 'was replaced while it was opened' };
    return { refused: 'unreadable', why: `cannot be opened (${code ?? (e as Error).message})` };
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.ino !== checked.ino || st.dev !== checked.dev) return { refused: 'changed', why: `was replaced while it was opened (it is now ${fileKind(st)})` };
    if (st.size > maxBytes) return { refused: 'too-large', why: `is ${st.size} bytes, over the limit of ${maxBytes}` };
    const bytes = Buffer.allocUnsafe(st.size);
    let got = 0;
    while (got < st.size) {
      // One read moves at most 1 GiB (the kernel and Node cap a single read below 2 GiB).
      const n = readSync(fd, bytes, got, Math.min(st.size - got, READ_CHUNK), null);
      if (n === 0) return { refused: 'changed', why: `shrank while it was read (${got} of ${st.size} bytes)` };
      got += n;
    }
    if (readSync(fd, Buffer.allocUnsafe(1), 0, 1, null) !== 0) return { refused: 'changed', why: `grew while it was read (beyond ${st.size} bytes)` };
    return { bytes };
  } catch (e) {
    return { refused: 'unreadable', why: `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` };
  } finally {
    closeSync(fd);
  }
}
