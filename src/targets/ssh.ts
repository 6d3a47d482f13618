import { connect as netConnect } from 'node:net';
import ssh2 from 'ssh2';
import { TargetError } from '../errors.ts';
import { AnswerCollector } from './boundedOutput.ts';
import { machineText } from './machineText.ts';
import { hostKeyMismatchMessage } from './hostKeys.ts';
import { expectedHostKeys, pinFirstKey, privateKeyOf } from './sshCredentials.ts';
import type { SshTargetOptions } from './sshOptions.ts';
import { commandLine } from './shellQuote.ts';
import type { RunOptions, RunResult, Target } from './target.ts';

const { Client } = ssh2;
type Conn = InstanceType<typeof Client>;


/**
 * One SSH connection per machine for a whole transition (ssh2, TCP_NODELAY), opened on first
 * use. The host key is checked before authentication; a mismatch refuses to connect, so
 * nothing is ever sent to a machine that is not the one pinned.
 */
export class SshTarget implements Target {
  readonly machine: string;
  bytesSent = 0;
  private conn?: Promise<Conn>;
  private current?: Conn;
  private readonly lost = new WeakSet<Conn>();
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly opts: SshTargetOptions) {
    this.machine = opts.machine;
  }

  /**
   * Runs a command. Its time-out starts now, when the command is asked for: waiting for the
   * connection, for a channel (ours, or the machine's: a frozen sshd never opens one) and the
   * command's own run all count, so no command outlasts it.
   */
  async run(argv: readonly string[], runOpts: RunOptions = {}): Promise<RunResult> {
    const timeoutMs = runOpts.timeoutMs ?? this.opts.commandTimeoutMs ?? 120_000;
    const deadline = Date.now() + timeoutMs;
    const timedOut = (waiting: string) =>
      new TargetError('COMMAND_TIMEOUT', `command on ${this.machine} did not finish within ${timeoutMs / 1000}s (${waiting})`, { machine: this.machine });
    let conn = await withDeadline(this.connection(), deadline, () => timedOut('it was still waiting for the connection'));
    if (this.lost.has(conn)) conn = await withDeadline(this.connection(), deadline, () => timedOut('it was still waiting for the connection'));
    const exec = () => this.exec(conn, commandLine(argv), runOpts, deadline, timeoutMs);
    if (runOpts.priority) return exec();
    await this.acquireChannel(deadline, () => timedOut(`it was still waiting for one of the ${this.opts.maxChannels ?? 8} channels strata opens at once`));
    try {
      return await exec();
    } finally {
      this.releaseChannel();
    }
  }

  async close(): Promise<void> {
    const pending = this.conn;
    this.conn = undefined;
    if (!pending) return;
    try {
      const conn = await pending;
      await new Promise<void>((resolve) => {
        conn.once('close', () => resolve());
        conn.end();
        setTimeout(resolve, 1000).unref();
      });
    } catch {
      // A connection that never opened has nothing to close.
    }
  }

  private connection(): Promise<Conn> {
    this.conn ??= this.open().catch((e) => {
      this.conn = undefined;
      throw e;
    });
    return this.conn;
  }

  private open(): Promise<Conn> {
    const o = this.opts;
    const { keys: expected, source } = expectedHostKeys(o);
    const privateKey = privateKeyOf(o);
    const timeoutMs = o.connectTimeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      const conn = new Client();
      let rejection: TargetError | undefined;
      const fail = (e: TargetError) => {
        rejection ??= e;
        clearTimeout(timer);
        sock.destroy();
        reject(rejection);
      };
      const timer = setTimeout(
        () => fail(new TargetError('CONNECT_TIMEOUT', `cannot reach ${o.machine} at ${o.host}:${o.port} within ${timeoutMs / 1000}s`, { machine: o.machine })),
        timeoutMs,
      );
      const sock = netConnect({ host: o.host, port: o.port });
      sock.setNoDelay(true);
      sock.on('error', (e) => fail(new TargetError('CONNECT_FAILED', `cannot connect to ${o.machine} at ${o.host}:${o.port}: ${e.message}`, { machine: o.machine })));
      conn.on('ready', () => {
        clearTimeout(timer);
        // A connection that drops (sshd killed, machine gone) is forgotten: the next command
        // connects again, and says why when it cannot.
        conn.once('close', () => {
          this.lost.add(conn);
          if (this.current === conn) this.conn = undefined;
        });
        this.current = conn;
        resolve(conn);
      });
      conn.on('error', (e) => {
        const level = (e as { level?: string }).level;
        // ssh2's message may be the machine's own words (a DISCONNECT description): escaped.
        const reason = level === 'client-authentication' ? `authentication as ${o.user} failed` : machineText(e.message, 512, true);
        fail(new TargetError(level === 'client-authentication' ? 'AUTH_FAILED' : 'CONNECT_FAILED', `cannot connect to ${o.machine} at ${o.host}:${o.port}: ${reason}`, { machine: o.machine }));
      });
      conn.connect({
        sock,
        username: o.user,
        privateKey,
        readyTimeout: timeoutMs,
        keepaliveInterval: 15_000,
        hostVerifier: (key: Buffer) => {
          const presented = key.toString('base64');
          if (expected.includes(presented)) return true;
          if (expected.length === 0 && o.trustOnFirstUseFile) {
            pinFirstKey(o.trustOnFirstUseFile, o.host, o.port, key);
            return true;
          }
          rejection = new TargetError('HOST_KEY_MISMATCH', hostKeyMismatchMessage({ machine: o.machine, host: o.host, port: o.port, presented: key, source }), {
            machine: o.machine,
            host: o.host,
            port: o.port,
            ...(source.kind === 'hostKey' ? {} : { file: source.file }),
          });
          return false;
        },
      });
    });
  }

  /** Opens a channel and runs the command on it, both before `deadline`. */
  private exec(conn: Conn, line: string, runOpts: RunOptions, deadline: number, timeoutMs: number): Promise<RunResult> {
    this.bytesSent += line.length;
    return new Promise((resolve, reject) => {
      let opened: { close: () => void } | undefined;
      let expired = false;
      let answer: AnswerCollector | undefined;
      // Armed before the channel is asked for: a machine that never opens it still times out.
      const timer = setTimeout(
        () => {
          expired = true;
          answer?.discard();
          opened?.close();
          const waiting = opened ? 'it was still running' : 'the machine did not open a channel for it';
          reject(new TargetError('COMMAND_TIMEOUT', `command on ${this.machine} did not finish within ${timeoutMs / 1000}s (${waiting})`, { machine: this.machine }));
        },
        Math.max(0, deadline - Date.now()),
      );
      conn.exec(line, (err, stream) => {
        if (expired) {
          // Opened too late: closed at once, its input never sent (the runtime then does nothing).
          stream?.close();
          return;
        }
        if (err) {
          clearTimeout(timer);
          return reject(new TargetError('EXEC_FAILED', `cannot run a command on ${this.machine}: ${machineText(err.message, 512, true)}`, { machine: this.machine }));
        }
        opened = stream;
        let code = 1;
        let exited = false;
        // A machine that answers more than the bounds is cut off (boundedOutput.ts).
        answer = startAnswer(this.machine, runOpts, stream, timer, reject);
        if (!answer) return;
        const collector = answer;
        stream.on('data', collector.stdout);
        stream.stderr.on('data', collector.stderr);
        stream.on('exit', (c: number | null, signal?: string) => {
          exited = true;
          code = c ?? (signal ? 128 : 1);
        });
        stream.on('close', () => {
          clearTimeout(timer);
          // A command always reports how it ended; a channel closed without that lost its connection.
          if (!exited) {
            collector.discard();
            return reject(
              new TargetError('CONNECTION_LOST', `lost the connection to ${this.machine} (${this.opts.host}:${this.opts.port}) while a command ran; whether it took effect is unknown`, {
                machine: this.machine,
              }),
            );
          }
          resolve(collector.finish(code));
        });
        const input = runOpts.input;
        if (input === undefined) stream.end();
        else if (Buffer.isBuffer(input)) {
          this.bytesSent += input.length;
          stream.end(input);
        } else {
          input.on('data', (d: Buffer) => (this.bytesSent += d.length));
          input.pipe(stream);
        }
      });
    });
  }

  private async acquireChannel(deadline: number, timedOut: () => TargetError): Promise<void> {
    const max = this.opts.maxChannels ?? 8;
    if (this.active < max) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      let gaveUp = false;
      const timer = setTimeout(() => {
        gaveUp = true;
        reject(timedOut());
      }, Math.max(0, deadline - Date.now()));
      this.waiting.push(() => {
        clearTimeout(timer);
        // A waiter that timed out passes the channel on at once.
        if (gaveUp) this.releaseChannel();
        else resolve();
      });
    });
  }

  private releaseChannel(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active--;
  }
}

/** `p`, or the error `onTimeout` makes once `deadline` (ms since the epoch) has passed. */
function withDeadline<T>(p: Promise<T>, deadline: number, onTimeout: () => Error): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), Math.max(0, deadline - Date.now()));
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

/**
 * The collector of one command's answer over SSH; when the machine exceeds a bound the channel
 * is signalled and closed and the command rejected. Undefined (and rejected) when the answer's
 * file cannot be created.
 */
function startAnswer(machine: string, runOpts: RunOptions, stream: ssh2.ClientChannel, timer: NodeJS.Timeout, reject: (e: unknown) => void): AnswerCollector | undefined {
  try {
    return new AnswerCollector(machine, runOpts, (e) => {
      clearTimeout(timer);
      stream.signal('KILL');
      stream.close();
      reject(e);
    });
  } catch (e) {
    clearTimeout(timer);
    stream.close();
    reject(new TargetError('ANSWER_NOT_STORED', `cannot create ${runOpts.stdoutFile} for the ${runOpts.verb ?? 'command'} answer of ${machine}: ${(e as Error).message}`, { machine }));
    return undefined;
  }
}
