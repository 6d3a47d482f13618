// The Disnix hello-world server: answers every TCP connection with "Hello world!".
import net from 'node:net';

const host = process.env.HOST ?? '127.0.0.1';
const port = Number(process.env.PORT ?? 5000);
const greeting = process.env.GREETING ?? 'Hello world!';

net
  .createServer((socket) => socket.end(`${greeting}\n`))
  .listen(port, host, () => console.log(`hello-world-server listening on ${host}:${port}`));
