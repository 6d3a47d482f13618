import { appendFileSync, mkdirSync, realpathSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { dirname, resolve } from 'node:path';
import ssh2 from 'ssh2';
import { TargetError } from '../errors.ts';
import { AnswerCollector } from './boundedOutput.ts';
import { machineText } from './machineText.ts';
import { readRegularFile, shownPath } from '../lib/regularFile.ts';
import { allowedFile, expandHome, refusedFileMessage, type CredentialPolicy } from './credentials.ts';
import { hostKeyMismatchMessage, keyBlob, knownHostKeys, knownHostsName, pinnedHostKeys, type HostKeySource } from './hostKeys.ts';
import { commandLine } from './shellQuote.ts';
import type { RunOptions, RunResult, Target } from './target.ts';
import type { SshEnvironment } from './sshEnv.ts';

const { Client } = ssh2;
/** A private key file is a few KiB; a file far larger is not one. */
const MAX_IDENTITY_BYTES = 1024 * 1024;
type Conn = InstanceType<typeof Client>;

export interface SshTargetOptions {
  machine: string;
  host: string;
  port: number;
  user: string;
  /** Pinned public host key line; wins over knownHosts. */
  hostKey?: string;
  /** known_hosts file to check the host key against (default env.knownHosts, else ~/.ssh/known_hosts). */
  knownHosts?: string;
  /** Private key file; else env.keyFile, else the key text env.key. */
  identity?: string;
  /** The private key itself (read from a secret by the caller); wins over identity. */
  privateKey?: Buffer | string;
  /**
   * Trust on first use, only when asked for: with no pinned key and no known_hosts entry, the
   * key presented first is accepted and written to this file; later connections must match it.
   */
  trustOnFirstUseFile?: string;
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
  /** Channels open at once on the connection; OpenSSH's MaxSessions defaults to 10. */
  maxChannels?: number;
  /**
   * Under the controller, the deployment's credential policy: `identity` and `knownHosts`
   * (from the model) are used only inside its allowedFiles, else refused unread; without them
   * its own key and known_hosts are used, and the process-wide ones (STRATA_SSH_KEY_FILE,
   * STRATA_SSH_KEY, STRATA_KNOWN_HOSTS, ~/.ssh/known_hosts) only when it configures none.
   */
  credentials?: CredentialPolicy;
  /** The process-wide key and known_hosts (src/targets/sshEnv.ts); none when not given. */
  env?: SshEnvironment;
}

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
    const { keys: expected, source } = this.expectedHostKeys();
    const privateKey = this.privateKey();
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

  /** The known_hosts file this machine is checked against, and why that one. */
  private knownHostsFile(): { file: string; origin: KnownHostsOrigin } {
    const o = this.opts;
    if (o.knownHosts !== undefined) return { file: realPath(this.modelFile('ssh.knownHosts', o.knownHosts)), origin: 'ssh.knownHosts' };
    if (o.credentials?.knownHosts !== undefined) return { file: realPath(expandHome(o.credentials.knownHosts)), origin: 'deployments[].ssh.knownHosts' };
    if (o.env?.knownHosts) return { file: realPath(expandHome(o.env.knownHosts)), origin: 'STRATA_KNOWN_HOSTS' };
    return { file: realPath(expandHome('~/.ssh/known_hosts')), origin: 'default' };
  }

  /** The keys the machine may present, and where they came from (named when a key is refused). */
  private expectedHostKeys(): { keys: string[]; source: HostKeySource } {
    const o = this.opts;
    if (o.hostKey) return { keys: [keyBlob(o.hostKey)!], source: { kind: 'hostKey' } };
    // A missing file knows no keys; one that is not a regular file is an error that names it.
    const known = (file: string) => knownHostKeys(file, o.host, o.port);
    const kh = this.knownHostsFile();
    const keys = known(kh.file);
    if (keys.length === 0 && o.trustOnFirstUseFile) {
      // The pinned keys are state: a damaged file is STATE_CORRUPT, never "no key known yet".
      return { keys: pinnedHostKeys(o.trustOnFirstUseFile, o.host, o.port), source: { kind: 'trustOnFirstUse', file: realPath(o.trustOnFirstUseFile) } };
    }
    if (keys.length === 0) {
      throw new TargetError(
        'HOST_KEY_UNKNOWN',
        `no host key is known for ${o.machine} (${o.host}:${o.port}) in ${kh.file}: set ssh.hostKey or ssh.knownHosts in the network model (or ssh.trustOnFirstUse: true to pin the key it presents first)`,
        { machine: o.machine },
      );
    }
    return { keys, source: { kind: 'knownHosts', ...kh } };
  }

  /**
   * A file a model names, as the policy lets this machine use it; under the controller a file
   * outside the deployment's allowedFiles is refused before anything looks at it.
   */
  private modelFile(field: 'ssh.identity' | 'ssh.knownHosts', path: string): string {
    const policy = this.opts.credentials;
    if (!policy) return expandHome(path);
    const allowed = allowedFile(path, policy.allowedFiles);
    if (allowed === undefined) throw new TargetError('CREDENTIAL_NOT_ALLOWED', `machine ${this.machine}: ${refusedFileMessage(field, policy)}`, { machine: this.machine, field });
    return allowed;
  }

  private privateKey(): Buffer | string {
    if (this.opts.privateKey !== undefined) return this.opts.privateKey;
    const own = this.opts.credentials?.identity;
    if (this.opts.identity === undefined && own) return own();
    const fromEnv = this.opts.env?.keyFile;
    // modelFile expands ~ itself (and checks the policy first).
    const file = this.opts.identity !== undefined ? this.modelFile('ssh.identity', this.opts.identity) : fromEnv === undefined ? undefined : expandHome(fromEnv);
    if (file) {
      // The path may come from a model: only a regular file of key size is read (never a FIFO or /dev/zero).
      const read = readRegularFile(file, MAX_IDENTITY_BYTES);
      if ('refused' in read) throw new TargetError('IDENTITY_UNREADABLE', `cannot read the SSH identity file ${shownPath(file)} for ${this.machine}: it ${read.why}`, { machine: this.machine, reason: read.why });
      return read.bytes;
    }
    const inline = this.opts.env?.key;
    if (inline) return inline;
    throw new TargetError('NO_IDENTITY', `no SSH key for ${this.machine}: set ssh.identity, STRATA_SSH_KEY_FILE or STRATA_SSH_KEY`, { machine: this.machine });
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

type KnownHostsOrigin = 'ssh.knownHosts' | 'deployments[].ssh.knownHosts' | 'STRATA_KNOWN_HOSTS' | 'default';

/** A file's real, absolute path (symlinks resolved) for messages, or its absolute path when it does not exist yet. */
function realPath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

/** Records a host key seen on first use, in known_hosts format, so the next connection must match it. */
function pinFirstKey(file: string, host: string, port: number, key: Buffer): void {
  const type = key.subarray(4, 4 + key.readUInt32BE(0)).toString();
  mkdirSync(dirname(file), { recursive: true });
  appendFileSync(file, `${knownHostsName(host, port)} ${type} ${key.toString('base64')}\n`, { mode: 0o600 });
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
