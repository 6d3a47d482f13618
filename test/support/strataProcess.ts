import { spawn, type ChildProcess } from 'node:child_process';

const REPO_ROOT = new URL('../..', import.meta.url).pathname;

export interface StrataProcess {
  child: ChildProcess;
  /** When it was spawned (ms since the epoch). */
  t0: number;
  /** Each stderr line, with the ms after spawning it arrived at. */
  lines: { at: number; text: string }[];
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  done: () => boolean;
  /** Resolves true once `count` stderr lines match (false when the process exits first). */
  waitFor: (pred: (line: string) => boolean, count?: number) => Promise<boolean>;
}

/** `node bin/strata.js ARGS...` as a child process (the real CLI, started the way users start it). */
export function spawnStrata(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): StrataProcess {
  const t0 = Date.now();
  const child = spawn(process.execPath, [`${REPO_ROOT}bin/strata.js`, ...args], {
    cwd: opts.cwd ?? REPO_ROOT,
    env: opts.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: { at: number; text: string }[] = [];
  let out = '';
  let err = '';
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push({ at: Date.now() - t0, text: buf.slice(0, i) });
      buf = buf.slice(i + 1);
    }
  });
  let finished = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      finished = true;
      resolve({ code, signal });
    }),
  );
  const waitFor = async (pred: (line: string) => boolean, count = 1): Promise<boolean> => {
    for (;;) {
      if (lines.filter((l) => pred(l.text)).length >= count) return true;
      if (finished) return false;
      await new Promise((r) => setTimeout(r, 2));
    }
  };
  return { child, t0, lines, stdout: () => out, stderr: () => err, exited, done: () => finished, waitFor };
}
