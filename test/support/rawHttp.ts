import { connect } from 'node:net';

/** What a raw HTTP exchange ended with: the first final answer, or how the connection ended without one. */
export interface RawAnswer {
  /** The status of the first final (non-1xx) answer; undefined when none arrived. */
  status?: number;
  /** Its head and body as text. */
  text: string;
  /** How the connection ended before a whole answer arrived: 'reset', 'closed', 'timeout'. */
  failure?: 'reset' | 'closed' | 'timeout';
  /** ms from connecting to the answer (or the failure). */
  ms: number;
  /** ms from connecting to the server closing the connection, when `waitForClose` was asked. */
  closedAfterMs?: number;
}

/**
 * Sends `request` (raw bytes) on a new TCP connection, optionally followed by `trickle` one
 * byte every `everyMs`, and reads the first whole final answer (1xx answers are skipped; the body
 * is `content-length` bytes, none for HEAD). The connection is not half-closed: Node's server
 * would abort the request in flight. A reset before the whole answer was read is a failure.
 */
export function rawRequest(
  host: string,
  port: number,
  request: string | Buffer,
  opts: {
    timeoutMs?: number;
    head?: boolean;
    trickle?: { byte: string; everyMs: number };
    waitForClose?: boolean;
    /** Read nothing until the whole request is written, like a simple client that sends, then reads. */
    readAfterWrite?: boolean;
  } = {},
): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const s = connect(port, host);
    let buf = Buffer.alloc(0);
    let answer: RawAnswer | undefined;
    let trickle: NodeJS.Timeout | undefined;
    const finish = (a: RawAnswer) => {
      if (answer) return;
      answer = a;
      if (!opts.waitForClose || a.failure) {
        clearInterval(trickle);
        s.destroy();
        resolve(a);
      }
    };
    const timer = setTimeout(() => {
      if (answer) resolve(answer);
      else finish({ text: buf.toString('latin1'), failure: 'timeout', ms: Date.now() - t0 });
      s.destroy();
    }, opts.timeoutMs ?? 15_000);
    s.on('connect', () => {
      if (opts.readAfterWrite) s.pause();
      s.write(request, () => opts.readAfterWrite && s.resume());
      if (opts.trickle) {
        const { byte, everyMs } = opts.trickle;
        trickle = setInterval(() => s.writable && s.write(byte), everyMs);
      }
    });
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1]);
        const length = status >= 200 && !opts.head && status !== 204 && status !== 304 ? Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0) : 0;
        if (buf.length < end + 4 + length) return;
        if (status >= 100 && status < 200) {
          buf = buf.subarray(end + 4);
          continue;
        }
        finish({ status: Number.isNaN(status) ? undefined : status, text: buf.subarray(0, end + 4 + length).toString('latin1'), ms: Date.now() - t0 });
        return;
      }
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (answer && opts.waitForClose) return; // the answer arrived; how the server closed is judged by closedAfterMs
      finish({ text: buf.toString('latin1'), failure: e.code === 'ECONNRESET' || e.code === 'EPIPE' ? 'reset' : 'closed', ms: Date.now() - t0 });
    });
    s.on('close', () => {
      clearTimeout(timer);
      clearInterval(trickle);
      if (answer && opts.waitForClose) {
        answer.closedAfterMs = Date.now() - t0;
        resolve(answer);
      } else finish({ text: buf.toString('latin1'), failure: 'closed', ms: Date.now() - t0 });
    });
  });
}
