import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

/**
 * Closing a connection without losing the answer. Closing a socket while the client is still
 * sending (a body over the limit, headers too large) makes the kernel send a reset, and the
 * client may lose the answer it was about to read. Like nginx's `lingering_close`, half-close
 * instead (our FIN after the answer) and keep reading and dropping what the client sends, until
 * it closes its side or `LINGER_MS` has passed.
 */
export const LINGER_MS = 5_000;

export function lingeringClose(socket: Duplex, lingerMs = LINGER_MS): void {
  if (socket.destroyed) return;
  const timer = setTimeout(() => socket.destroy(), lingerMs);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  socket.once('end', () => socket.destroy());
  socket.on('error', () => socket.destroy());
  socket.end();
  socket.resume();
}

/**
 * Marks `res` as the last answer on its connection (`Connection: close`) and makes the server
 * close that connection with a lingering close once the answer is sent. Node otherwise destroys
 * the socket as soon as such an answer is flushed (`socket.destroySoon`), which is exactly the
 * reset described above.
 */
export function closeAfter(req: IncomingMessage, res: ServerResponse, lingerMs = LINGER_MS): void {
  res.shouldKeepAlive = false;
  res.setHeader('connection', 'close');
  const socket = req.socket as Duplex & { destroySoon?: () => void };
  socket.destroySoon = () => lingeringClose(socket, lingerMs);
}

/** A complete HTTP/1.1 answer as raw bytes, for a socket that has no response object (a client error). */
export function rawAnswer(status: number, reason: string, body: unknown): string {
  const text = `${JSON.stringify(body)}\n`;
  return (
    `HTTP/1.1 ${status} ${reason}\r\n` +
    'content-type: application/json\r\n' +
    `content-length: ${Buffer.byteLength(text)}\r\n` +
    'connection: close\r\n' +
    '\r\n' +
    text
  );
}
