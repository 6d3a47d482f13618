import { createHash, type Hash } from 'node:crypto';
import { closeSync, constants, openSync, rmSync, writeSync } from 'node:fs';
import { TargetError } from '../errors.ts';
import { machineText } from './machineText.ts';
import type { RunOptions, RunResult } from './target.ts';

/** What a command may write to stdout when its caller sets no bound (a runtime verb sets its own). */
export const DEFAULT_MAX_STDOUT_BYTES = 16 * 1024 ** 2;
/** What a command may write to stderr when its caller sets no bound: error messages and log tails. */
export const DEFAULT_MAX_STDERR_BYTES = 1024 ** 2;

/**
 * Reads one command's stdout and stderr, each up to its bound (RunOptions.maxStdoutBytes and
 * maxStderrBytes). A machine that sends more is cut off: `abort` is called once with
 * MACHINE_ANSWER_TOO_LARGE, naming the machine, the verb and the stream, and every byte after
 * that is dropped, so the controller never holds more than the bounds. With
 * RunOptions.stdoutFile, stdout goes to that file (created new, 0600) as it arrives instead of
 * memory, and its size and sha256 are computed on the way. stderr is handed on as text fit to
 * show (machineText): escaped, head and tail of it.
 */
export class AnswerCollector {
  private readonly out: Buffer[] = [];
  private readonly err: Buffer[] = [];
  private outBytes = 0;
  private errBytes = 0;
  private readonly maxOut: number;
  private readonly maxErr: number;
  private fd?: number;
  private hash?: Hash;
  private failed = false;

  constructor(
    private readonly machine: string,
    private readonly opts: RunOptions,
    private readonly abort: (e: TargetError) => void,
  ) {
    this.maxOut = opts.maxStdoutBytes ?? DEFAULT_MAX_STDOUT_BYTES;
    this.maxErr = opts.maxStderrBytes ?? DEFAULT_MAX_STDERR_BYTES;
    if (opts.stdoutFile !== undefined) {
      // O_EXCL and O_NOFOLLOW: the caller's fresh name, never a file or link that was there.
      this.fd = openSync(opts.stdoutFile, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      this.hash = createHash('sha256');
    }
  }

  readonly stdout = (d: Buffer): void => {
    if (this.failed) return;
    this.outBytes += d.length;
    if (this.outBytes > this.maxOut) return this.tooLarge('stdout', this.maxOut);
    if (this.fd === undefined) this.out.push(d);
    else {
      try {
        writeSync(this.fd, d);
      } catch (e) {
        this.fail(new TargetError('ANSWER_NOT_STORED', `cannot write the ${this.verb} answer of ${this.machine} to ${this.opts.stdoutFile}: ${(e as Error).message}`, { machine: this.machine, verb: this.verb }));
        return;
      }
      this.hash!.update(d);
    }
  };

  readonly stderr = (d: Buffer): void => {
    if (this.failed) return;
    this.errBytes += d.length;
    if (this.errBytes > this.maxErr) return this.tooLarge('stderr', this.maxErr);
    this.err.push(d);
  };

  /** The command's result once it exited with `code`. */
  finish(code: number): RunResult {
    const stderr = machineText(Buffer.concat(this.err));
    if (this.fd === undefined) {
      const stdoutBytes = Buffer.concat(this.out);
      return { code, stdout: stdoutBytes.toString(), stdoutBytes, stderr };
    }
    this.closeFile();
    return { code, stdout: '', stdoutBytes: Buffer.alloc(0), stderr, stdoutFile: { path: this.opts.stdoutFile!, size: this.outBytes, sha256: this.hash!.digest('hex') } };
  }

  /** The command did not finish (a time-out, a lost connection): the partial file is removed. */
  discard(): void {
    if (this.fd === undefined) return;
    this.closeFile();
    rmSync(this.opts.stdoutFile!, { force: true });
  }

  private get verb(): string {
    return this.opts.verb ?? 'command';
  }

  private tooLarge(stream: 'stdout' | 'stderr', max: number): void {
    this.fail(
      new TargetError(
        'MACHINE_ANSWER_TOO_LARGE',
        `${this.machine} sent more than ${formatBytes(max)} on ${stream} for ${this.verb}: the command was stopped and its answer dropped (a machine answers within the bound, or it is not trusted)`,
        { machine: this.machine, verb: this.verb, stream, limit: max },
      ),
    );
  }

  private fail(e: TargetError): void {
    this.failed = true;
    this.out.length = 0;
    this.err.length = 0;
    this.discard();
    this.abort(e);
  }

  private closeFile(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }
}

export function formatBytes(n: number): string {
  if (n >= 1024 ** 3 && n % 1024 ** 3 === 0) return `${n / 1024 ** 3} GiB`;
  if (n >= 1024 ** 2 && n % 1024 ** 2 === 0) return `${n / 1024 ** 2} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} bytes`;
}
