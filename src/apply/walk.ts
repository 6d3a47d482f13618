/**
 * Runs the nodes of a DAG with at most `concurrency` at once, each after every node in its
 * `after` succeeded. After a failure no new node starts; nodes already running finish. A
 * node whose dependency failed or was never run is reported as skipped.
 */
export async function walkGraph<N extends { id: string; after: readonly string[] }>(
  nodes: readonly N[],
  concurrency: number,
  run: (n: N) => Promise<void>,
): Promise<{ done: N[]; failed?: { node: N; error: unknown }; skipped: N[] }> {
  const done: N[] = [];
  const finished = new Set<string>();
  const pending = new Set(nodes);
  const ids = new Set(nodes.map((n) => n.id));
  let failed: { node: N; error: unknown } | undefined;
  let running = 0;

  await new Promise<void>((resolveAll) => {
    const pump = () => {
      if (!failed) {
        for (const n of [...pending]) {
          if (running >= concurrency) break;
          if (!n.after.every((a) => finished.has(a) || !ids.has(a))) continue;
          pending.delete(n);
          running++;
          run(n).then(
            () => {
              done.push(n);
              finished.add(n.id);
            },
            (error: unknown) => {
              failed ??= { node: n, error };
            },
          ).finally(() => {
            running--;
            pump();
          });
        }
      }
      if (running === 0) resolveAll();
    };
    pump();
  });
  return { done, failed, skipped: [...pending] };
}
