/**
 * A name from a tree (a file name, a symlink's target) as it may appear in a message: quoted
 * when it holds control characters, so that no terminal escape from a repository reaches the
 * output.
 */
export function printable(s: string): string {
  return /[\u0000-\u001f\u007f-\u009f]/.test(s) ? JSON.stringify(s) : s;
}
