import type { Readable } from 'node:stream';

export interface RunResult {
  code: number;
  stdout: string;
  /** stdout as bytes, for binary protocols (git's pack stream). */
  stdoutBytes: Buffer;
  /** The command's error output as text fit to show: control characters escaped, head and tail of it (machineText). */
  stderr: string;
  /** With RunOptions.stdoutFile: stdout went there (stdoutBytes is empty); its size and sha256. */
  stdoutFile?: { path: string; size: number; sha256: string };
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
  /**
   * Bounds on what the machine may answer (src/targets/boundedOutput.ts): more bytes than these
   * on stdout or stderr stop the command with MACHINE_ANSWER_TOO_LARGE.
   */
  maxStdoutBytes?: number;
  maxStderrBytes?: number;
  /** What the command is, for messages (a runtime verb: "status", "snapshot"). */
  verb?: string;
  /** Write stdout to this new file (0600) as it arrives, not to memory (a snapshot). */
  stdoutFile?: string;
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
