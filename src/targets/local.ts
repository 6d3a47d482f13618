import { spawn } from 'node:child_process';
import { TargetError } from '../errors.ts';
import { AnswerCollector } from './boundedOutput.ts';
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
      const timeoutMs = opts.timeoutMs ?? this.commandTimeoutMs;
      const timer = setTimeout(() => {
        answer?.discard();
        child.kill('SIGKILL');
        reject(new TargetError('COMMAND_TIMEOUT', `command on ${this.machine} did not finish within ${timeoutMs / 1000}s`, { machine: this.machine }));
      }, timeoutMs);
      // A command that answers more than the bounds is killed (boundedOutput.ts).
      let answer: AnswerCollector | undefined;
      try {
        answer = new AnswerCollector(this.machine, opts, (e) => {
          clearTimeout(timer);
          child.kill('SIGKILL');
          // Closing the pipes also stops what the shell started that still writes to them.
          child.stdout.destroy();
          child.stderr.destroy();
          reject(e);
        });
      } catch (e) {
        clearTimeout(timer);
        child.kill('SIGKILL');
        return reject(new TargetError('ANSWER_NOT_STORED', `cannot create ${opts.stdoutFile} for the ${opts.verb ?? 'command'} answer of ${this.machine}: ${(e as Error).message}`, { machine: this.machine }));
      }
      child.stdout.on('data', answer.stdout);
      child.stderr.on('data', answer.stderr);
      child.on('error', (e) => {
        clearTimeout(timer);
        answer?.discard();
        reject(new TargetError('COMMAND_FAILED_TO_START', `cannot run /bin/sh for ${this.machine}: ${e.message}`, { machine: this.machine }));
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve(answer.finish(code ?? (signal ? 128 : 1)));
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
