import { join } from 'node:path';
import { watch } from 'chokidar';

/**
 * Calls onChange (debounced) when a ref of a local repository may have moved: anything under
 * refs/heads or refs/tags, packed-refs, HEAD. Returns a stop function. A `git commit` writes
 * several of these in a burst (a .lock file, then a rename); the debounce makes it one call.
 */
export function watchRefs(gitdir: string, onChange: () => void, debounceMs = 100): () => void {
  const paths = [join(gitdir, 'refs', 'heads'), join(gitdir, 'refs', 'tags'), join(gitdir, 'packed-refs'), join(gitdir, 'HEAD')];
  const watcher = watch(paths, { ignoreInitial: true, persistent: true });
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const fire = () => {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (!stopped) onChange();
    }, debounceMs);
  };
  watcher.on('all', fire);
  // A watcher error (e.g. a directory removed under it) must not crash the controller; the
  // controller still polls.
  watcher.on('error', () => {});
  return () => {
    stopped = true;
    clearTimeout(timer);
    void watcher.close().catch(() => {});
  };
}
