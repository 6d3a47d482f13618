import net from 'node:net';

type Probe = 'ssh' | 'refused' | 'other';

/** Connects once and reads the first line: `ssh` when it is an SSH banner. */
function probe(address: string, port: number, timeoutMs: number): Promise<Probe> {
  return new Promise((resolve) => {
    let buf = '';
    let done = false;
    const sock = net.connect({ host: address, port });
    const finish = (r: Probe) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish('other'), timeoutMs);
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      buf += d;
      if (buf.includes('\n') || buf.length > 255) finish(buf.startsWith('SSH-') ? 'ssh' : 'other');
    });
    sock.on('error', (err: NodeJS.ErrnoException) => finish(err.code === 'ECONNREFUSED' ? 'refused' : 'other'));
    sock.on('close', () => finish('other'));
  });
}

/** True when something accepts TCP connections on address:port. */
export function isPortInUse(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: address, port });
    const timer = setTimeout(() => {
      sock.destroy();
      resolve(true);
    }, 1000);
    sock.on('connect', () => {
      clearTimeout(timer);
      sock.destroy();
      resolve(true);
    });
    sock.on('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}

/**
 * Polls address:port until it answers with an SSH banner. A bare TCP accept is not enough: sshd
 * accepts in its listener, and only the re-exec'd per-connection child loads the host key and sends
 * the banner. Returns 'ready', 'timeout', or 'exited' when `exited()` turns true first.
 */
export async function waitForSshBanner(
  address: string,
  port: number,
  opts: { timeoutMs: number; exited: () => boolean },
): Promise<'ready' | 'timeout' | 'exited'> {
  const deadline = Date.now() + opts.timeoutMs;
  let delay = 5;
  for (;;) {
    if (opts.exited()) return 'exited';
    const left = deadline - Date.now();
    if (left <= 0) return 'timeout';
    if ((await probe(address, port, Math.min(left, 2000))) === 'ssh') return 'ready';
    if (opts.exited()) return 'exited';
    await new Promise((r) => setTimeout(r, Math.min(delay, Math.max(0, deadline - Date.now()))));
    delay = Math.min(delay * 2, 50);
  }
}
