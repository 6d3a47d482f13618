// The hello-world client: on every TCP connection it asks its upstream (the proxy if it was
// given one, else the server) for a greeting and relays it, so one connection shows the chain.
import net from 'node:net';

const host = process.env.HOST ?? '127.0.0.1';
const port = Number(process.env.PORT ?? 5001);
const upstreamHost = process.env.HELLO_WORLD_PROXY_HOST ?? process.env.HELLO_WORLD_SERVER_HOST;
const upstreamPort = Number(process.env.HELLO_WORLD_PROXY_PORT ?? process.env.HELLO_WORLD_SERVER_PORT);

function ask(callback) {
  const upstream = net.connect(upstreamPort, upstreamHost);
  let reply = '';
  upstream.setTimeout(5000, () => upstream.destroy(new Error('timeout')));
  upstream.on('data', (d) => (reply += d));
  upstream.on('end', () => callback(null, reply));
  upstream.on('error', (e) => callback(e));
}

net
  .createServer((socket) => {
    ask((err, reply) => socket.end(err ? `error: ${err.message}\n` : reply));
  })
  .listen(port, host, () => console.log(`hello-world-client on ${host}:${port}, upstream ${upstreamHost}:${upstreamPort}`));
