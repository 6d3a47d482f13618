import type { ApplyEvent } from '../apply/events.ts';
import { describeBroken } from '../apply/events.ts';
import { formatBytes } from '../plan/render.ts';
import type { Io } from './io.ts';

/** Prints apply's progress to stderr, one line per event worth a line. */
export function progressPrinter(io: Io, quiet: boolean): (e: ApplyEvent) => void {
  if (quiet) return () => {};
  return (e) => {
    switch (e.kind) {
      case 'lock':
        return io.err(`locking ${e.machines.length} machine${e.machines.length === 1 ? '' : 's'}: ${e.machines.join(', ')}\n`);
      case 'upload':
        return io.err(`uploading ${e.artifacts} artifact${e.artifacts === 1 ? '' : 's'} (${formatBytes(e.bytes)}) to ${e.machine}\n`);
      case 'phase':
        return io.err(`${e.phase}: ${e.steps} step${e.steps === 1 ? '' : 's'}\n`);
      case 'step':
        // The full output comes with the final error; here one line says which step.
        if (e.status === 'failed') return io.err(`  ✗ ${e.step.id}. ${e.step.action} ${e.step.item.name} on ${e.step.machine} failed\n`);
        if (e.status === 'done') return io.err(`  ✓ ${e.step.id}. ${e.step.action} ${e.step.item.name} on ${e.step.machine} (${e.ms} ms)\n`);
        return;
      case 'snapshot':
        return io.err(`    snapshot of ${e.step.item.name} on ${e.step.machine} (${formatBytes(e.bytes)}) stored in ${e.file}\n`);
      case 'restore':
        return io.err(`    restored ${e.step.item.name} on ${e.step.machine} from ${e.file}\n`);
      case 'undo':
        return io.err(`rolling back: undoing ${e.steps} step${e.steps === 1 ? '' : 's'}\n`);
      case 'undo-step':
        return io.err(`  ${e.ok ? '↺' : '✗'} undo ${e.step.action} ${e.step.item.name} on ${e.step.machine}${e.error ? `: ${e.error}` : ''}\n`);
      case 'commit':
        return io.err(`recorded generation ${e.generation} on ${e.machines} machine${e.machines === 1 ? '' : 's'}\n`);
      case 'lock-broken':
        return io.err(`${describeBroken(e.machine, { ...e.holder, why: e.why })}\n`);
      case 'lock-lost':
        return io.err(`lost the lock of ${e.machine}: ${e.error}\n`);
      case 'recovery':
        return io.err(`recovery (${e.result.action}): ${e.result.message}\n`);
      case 'unlock':
        return;
    }
  };
}
