import { TargetError } from '../errors.ts';
import type { RunResult, Target } from './target.ts';

/** A machine this deployment may not use: every command is refused, and nothing runs. */
export class RefusedTarget implements Target {
  readonly bytesSent = 0;
  constructor(
    readonly machine: string,
    private readonly why: string,
  ) {}

  run(): Promise<RunResult> {
    return Promise.reject(new TargetError('LOCAL_MACHINE_NOT_ALLOWED', `machine ${this.machine}: ${this.why}`, { machine: this.machine }));
  }

  async close(): Promise<void> {}
}
