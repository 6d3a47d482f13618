import type { BeginEntry, JournalEntry } from '../state/journal.ts';
import type { AbandonRequestRecord } from './abandoned.ts';

/** What a transition's journal (src/state/journal.ts) says was done, folded from its entries. */
export interface TransitionJournal {
  begin?: BeginEntry;
  /** Step ids in the order they started. */
  started: string[];
  done: Set<string>;
  undone: Set<string>;
  /** The machines were asked to record the generation (some may have). */
  commitStarted: boolean;
  outcome?: 'committed' | 'rolled-back';
  /** Machines abandoned while this transition was pending (who, why): never contacted again by it. */
  abandoned: Map<string, AbandonRequestRecord>;
}

/** A journal that has its `begin`: a transition that may have touched machines. */
export type BegunTransition = TransitionJournal & { begin: BeginEntry };

export function foldJournal(entries: readonly JournalEntry[]): TransitionJournal {
  const j: TransitionJournal = { started: [], done: new Set(), undone: new Set(), commitStarted: false, abandoned: new Map() };
  for (const e of entries) {
    switch (e.kind) {
      case 'begin':
        j.begin = e;
        break;
      case 'step':
        if (e.status === 'done') j.done.add(e.step);
        else if (!j.started.includes(e.step)) j.started.push(e.step);
        break;
      case 'undo':
        j.undone.add(e.step);
        break;
      case 'commit':
        j.commitStarted = true;
        break;
      case 'committed':
      case 'rolled-back':
        j.outcome = e.kind;
        break;
      case 'abandon':
        j.abandoned.set(e.machine, { machine: e.machine, by: e.by, reason: e.reason, at: e.at });
        break;
      default:
        break; // the rest is for people (and for the undo it records)
    }
  }
  return j;
}

/** The journal, if it has its `begin`. */
export function begun(j: TransitionJournal): BegunTransition | undefined {
  const { begin } = j;
  return begin ? { ...j, begin } : undefined;
}
