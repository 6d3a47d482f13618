import { spawn } from 'node:child_process';
import { TargetError } from '../errors.ts';
import { commandLine } from './shellQuote.ts';
import type { RunOptions, RunResult, Target } from './target.ts';

/**
 * A machine that is this host: the same command lines as over SSH, run by /bin/sh here.
 * Its runtime root is a directory of the controller's; its services bind to the machine's
 * own loopback address, so several local machines can run the same ports.
 */
export class LocalTarget implements Target {
  bytesSent = 0;
  constructor(
    readonly machine: string,
    private readonly commandTimeoutMs = 120_000,
  ) {}

  run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const line = commandLine(argv);
    this.bytesSent += line.length;
    return new Promise((resolve, reject) => {
      const child = spawn('/bin/sh', ['-c', line], { stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      const timeoutMs = opts.timeoutMs ?? this.commandTimeoutMs;
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new TargetError('COMMAND_TIMEOUT', `command on ${this.machine} did not finish within ${timeoutMs / 1000}s`, { machine: this.machine }));
      }, timeoutMs);
      child.stdout.on('data', (d: Buffer) => out.push(d));
      child.stderr.on('data', (d: Buffer) => err.push(d));
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(new TargetError('COMMAND_FAILED_TO_START', `cannot run /bin/sh for ${this.machine}: ${e.message}`, { machine: this.machine }));
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        const stdoutBytes = Buffer.concat(out);
        resolve({ code: code ?? (signal ? 128 : 1), stdout: stdoutBytes.toString(), stdoutBytes, stderr: Buffer.concat(err).toString() });
      });
      child.stdin.on('error', () => {});
      if (opts.input === undefined) child.stdin.end();
      else if (Buffer.isBuffer(opts.input)) {
        this.bytesSent += opts.input.length;
        child.stdin.end(opts.input);
      } else {
        opts.input.on('data', (d: Buffer) => (this.bytesSent += d.length));
        opts.input.pipe(child.stdin);
      }
    });
  }

  async close(): Promise<void> {}
}
