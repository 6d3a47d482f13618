import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { StateError } from '../errors.ts';
import { fsyncDir } from '../lib/atomicFile.ts';
import { journalLine, parseJournalLine, type BeginEntry, type JournalEntry } from './journal.ts';
import { readStateText } from './readState.ts';

/**
 * A deployment's journal file (`DIR/journal.jsonl`, DIR its directory in the state directory) as
 * the file store keeps it: appended with each entry fsync'd before the call returns.
 */
export class JournalFile {
  readonly file: string;

  constructor(
    private readonly dir: string,
    private readonly deployment: string,
  ) {
    this.file = join(dir, 'journal.jsonl');
  }

  /**
   * Starts the journal of a transition with its `begin` entry. The file is created exclusively:
   * an unfinished transition's journal is never appended to (recover it first).
   */
  begin(entry: BeginEntry): void {
    mkdirSync(this.dir, { recursive: true });
    let fd: number;
    try {
      fd = openSync(this.file, 'wx', 0o600);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      throw new StateError('TRANSITION_PENDING', `deployment ${this.deployment} has an unfinished transition in ${this.file}; it must be recovered first`, { deployment: this.deployment });
    }
    this.writeAndClose(fd, entry);
    fsyncDir(this.dir);
  }

  /** Appends to the journal of the transition in flight (write-ahead: before each effect). */
  append(entry: JournalEntry): void {
    mkdirSync(this.dir, { recursive: true });
    const created = !existsSync(this.file);
    this.writeAndClose(openSync(this.file, 'a', 0o600), entry);
    if (created) fsyncDir(this.dir);
  }

  /**
   * The journal's entries. Only a last line without its newline can be torn by a crash (each
   * entry is written with its newline in one write, then fsynced); it was never acted on and is
   * left out. Any other line that is not an entry is damage: STATE_CORRUPT.
   */
  read(): JournalEntry[] {
    let text: string;
    try {
      text = readStateText(this.file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const lines = text.split('\n');
    const torn = lines.pop(); // '' when the file ends with a newline
    const out = lines.map((line, i) => parseJournalLine(this.file, line, i + 1));
    if (torn) {
      try {
        out.push(parseJournalLine(this.file, torn, lines.length + 1));
      } catch {
        // the torn last line
      }
    }
    return out;
  }

  exists(): boolean {
    return existsSync(this.file);
  }

  /** Removes a finished transition's journal (and makes the removal durable). */
  remove(): void {
    rmSync(this.file, { force: true });
    if (existsSync(this.dir)) fsyncDir(this.dir);
  }

  private writeAndClose(fd: number, entry: JournalEntry): void {
    try {
      writeSync(fd, journalLine(entry));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}
