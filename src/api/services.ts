import { resolve } from 'node:path';
import type { Context, Services } from '../api/context.ts';
import { LiveTransitions } from '../apply/liveTransitions.ts';
import { FileStateStore } from '../state/fileState.ts';
import { maxSnapshotBytes } from '../targets/answerBounds.ts';
import { openRuntime } from '../targets/connect.ts';
import { sshEnvironment, type SshEnvironment } from '../targets/sshEnv.ts';

/**
 * The edge: the real services an operation works with (src/api/context.ts) — the state
 * directory's file store, machines over SSH (with the environment's key and known_hosts) or on
 * this host — made here and by the controller, nowhere below. One set per state directory and process.
 */
export function servicesFor(stateDir: string, ssh: SshEnvironment = sshEnvironment()): Services {
  return {
    state: new FileStateStore(resolve(stateDir)),
    openRuntime,
    live: new LiveTransitions(),
    ssh,
    // Read when machines are about to be reached (connectOptions), so a bad STRATA_MAX_SNAPSHOT_BYTES
    // fails the commands that would contact one, before they do, and no other.
    get maxSnapshotBytes() {
      return maxSnapshotBytes(process.env);
    },
  };
}

/** A context with the real services of its state directory. */
export function contextFor<C extends Omit<Context, 'services'>>(ctx: C): C & Pick<Context, 'services'> {
  return { ...ctx, services: servicesFor(ctx.stateDir) };
}
