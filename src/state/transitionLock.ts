import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, renameSync, unlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { StrataError } from '../errors.ts';
import { fsyncDir, writeFileAtomic } from '../lib/atomicFile.ts';
import { processAlive, processStartTime } from '../lib/proc.ts';
import { checkShape, parseStateJson } from './readState.ts';
import { deploymentLockSchema } from './schemas.ts';

/** Who holds a deployment's transition on this state directory (`deployments/NAME/transition.lock`). */
export interface DeploymentLockHolder {
  pid: number;
  /** The pid's start time (clock ticks since boot), so a recycled pid is not taken for the holder. */
  startTime?: string;
  host: string;
  at: string;
}

/**
 * Takes a deployment's transition lock in its state directory `dir` (`transition.lock`): one
 * transition (or recovery) per deployment at a time among the processes sharing the state
 * directory. A lock left by a dead process is taken over. Returns the release function. Held by
 * a live process: STATE_LOCKED (docs/cli.md, exit 5).
 */
export function takeTransitionLock(dir: string, deployment: string): () => void {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'transition.lock');
  const me: DeploymentLockHolder = { pid: process.pid, startTime: processStartTime(process.pid), host: hostname(), at: new Date().toISOString() };
  const text = `${JSON.stringify(me)}\n`;
  for (let attempt = 0; attempt < 5; attempt++) {
    const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    writeFileAtomic(tmp, text);
    try {
      linkSync(tmp, file); // atomic: fails when the lock exists
      fsyncDir(dir);
      return () => {
        try {
          if (readFileSync(file, 'utf8') === text) unlinkSync(file);
          fsyncDir(dir);
        } catch {
          // already gone
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    } finally {
      unlinkSync(tmp);
    }
    let heldText: string;
    try {
      heldText = readFileSync(file, 'utf8');
    } catch {
      continue; // released in the meantime
    }
    // Written whole and linked into place, a lock file is never torn: anything else is damage,
    // and who holds it is unknown (taking it over could run two transitions at once).
    const held = checkShape(file, parseStateJson(file, heldText), deploymentLockSchema) as DeploymentLockHolder;
    if (holderAlive(held)) {
      throw new StrataError(
        'STATE_LOCKED',
        `the state directory of deployment ${deployment} is locked by PID ${held.pid} on ${held.host} since ${held.at}: that process's transition or recovery is in flight`,
        { deployment, holder: held },
      );
    }
    // The holder is dead: move its lock aside (atomically) and try again. Should someone else
    // have replaced it in the meantime, theirs is put back.
    const aside = `${file}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      renameSync(file, aside);
    } catch {
      continue;
    }
    if (readFileSync(aside, 'utf8') !== heldText) {
      try {
        linkSync(aside, file);
      } catch {
        // a third process holds it now; ours is lost either way
      }
    }
    unlinkSync(aside);
  }
  throw new StrataError('STATE_LOCKED', `the state directory of deployment ${deployment} is locked: cannot take ${file}`, { deployment });
}

/** Whether the holder of a transition lock still runs; one on another host is taken as gone (one controller per state directory). */
function holderAlive(h: DeploymentLockHolder): boolean {
  if (h.host !== hostname()) return false;
  // Our own pid: this very process, unless the pid was recycled from an earlier incarnation (a container restart).
  if (h.pid === process.pid) return h.startTime === undefined || h.startTime === processStartTime(process.pid);
  if (!processAlive(h.pid)) return false;
  return h.startTime === undefined || processStartTime(h.pid) === undefined || processStartTime(h.pid) === h.startTime;
}
