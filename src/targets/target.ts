import type { Readable } from 'node:stream';

export interface RunResult {
  code: number;
  stdout: string;
  /** stdout as bytes, for binary protocols (git's pack stream). */
  stdoutBytes: Buffer;
  stderr: string;
}

export interface RunOptions {
  /** Bytes for the command's standard input. */
  input?: Buffer | Readable;
  /** Kill the command (and fail) after this long; defaults to the target's command timeout. */
  timeoutMs?: number;
  /**
   * A short command that must not wait behind long ones (lock renewals): it skips the queue for
   * a channel (over SSH it may use one channel above the limit).
   */
  priority?: boolean;
}

/**
 * A machine strata can run commands on. Both kinds run the same command line (argv, each
 * word shell-quoted) through a POSIX shell: `ssh` on the machine, `local` on this host.
 */
export interface Target {
  readonly machine: string;
  /** Runs argv and resolves with its exit code and output; rejects only if it could not run. */
  run(argv: readonly string[], opts?: RunOptions): Promise<RunResult>;
  /** Bytes sent to the machine so far (command lines and input). */
  readonly bytesSent: number;
  close(): Promise<void>;
}
