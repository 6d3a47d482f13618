/**
 * Teardown registry: everything the benchmark starts (test networks, child processes,
 * temporary directories) registers how to undo it here, so it is undone on a normal end, on
 * an error, and on SIGINT / SIGTERM / SIGHUP alike. Each task runs at most once; running it
 * from the signal handler and from a `finally` at the same time awaits the same promise.
 */
type Task = { name: string; run: () => Promise<void>; done?: Promise<void> };

const tasks: Task[] = [];

export interface Registration {
  /** Runs the task now (once), and unregisters it. */
  run(): Promise<void>;
  /** Forgets the task without running it (it was undone some other way). */
  forget(): void;
}

export function onCleanup(name: string, run: () => Promise<void> | void): Registration {
  const task: Task = { name, run: async () => run() };
  tasks.push(task);
  const runOnce = () => {
    task.done ??= task.run().catch((e: unknown) => {
      process.stderr.write(`bench: cleanup "${name}" failed: ${(e as Error).message}\n`);
    });
    return task.done.finally(() => remove(task));
  };
  return { run: runOnce, forget: () => remove(task) };
}

function remove(task: Task): void {
  const i = tasks.indexOf(task);
  if (i >= 0) tasks.splice(i, 1);
}

/** Runs every registered task, newest first (a child process before the directory it runs in). */
export async function runAllCleanups(): Promise<void> {
  for (const task of [...tasks].reverse()) {
    task.done ??= task.run().catch((e: unknown) => {
      process.stderr.write(`bench: cleanup "${task.name}" failed: ${(e as Error).message}\n`);
    });
    await task.done;
    remove(task);
  }
}

/** On a signal: tear everything down, then exit 128+signal. A second signal while tearing down is ignored. */
export function installSignalHandlers(): void {
  let stopping = false;
  const codes: Record<string, number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };
  for (const sig of Object.keys(codes) as NodeJS.Signals[]) {
    process.on(sig, () => {
      if (stopping) {
        process.stderr.write(`bench: ${sig} again; still tearing down, please wait\n`);
        return;
      }
      stopping = true;
      process.stderr.write(`\nbench: ${sig}; tearing down (test hosts, child processes, temp files)...\n`);
      runAllCleanups().finally(() => process.exit(codes[sig]));
    });
  }
}
