// A TCP proxy between the hello-world client and server: every connection is piped to the server.
import net from 'node:net';

const host = process.env.HOST ?? '127.0.0.1';
const port = Number(process.env.PORT ?? 5002);
const serverHost = process.env.HELLO_WORLD_SERVER_HOST;
const serverPort = Number(process.env.HELLO_WORLD_SERVER_PORT);

net
  .createServer((client) => {
    const server = net.connect(serverPort, serverHost);
    client.pipe(server).pipe(client);
    server.on('error', () => client.destroy());
    client.on('error', () => server.destroy());
  })
  .listen(port, host, () => console.log(`hello-world-proxy on ${host}:${port} -> ${serverHost}:${serverPort}`));
