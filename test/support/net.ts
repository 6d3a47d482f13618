import { connect } from 'node:net';

/** Connects to host:port and resolves with everything the peer sends before closing. */
export function ask(host: string, port: number, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, host);
    let data = '';
    s.setTimeout(timeoutMs, () => s.destroy(new Error(`no answer from ${host}:${port}`)));
    s.on('data', (d) => (data += d));
    s.on('end', () => resolve(data));
    s.on('error', reject);
  });
}
