// Runs inside the sandbox, in front of the command: the sandbox's network namespace has only a
// loopback interface, so tools find their proxy at 127.0.0.1 (HTTP_PROXY and friends) and this
// bridge carries each connection to the egress proxy's Unix socket outside. Plain JavaScript so
// that it runs with the bare `node` binary, whatever the sandbox can see of Stagegate's install.
// Usage: node egress-bridge.mjs <socket> <port> <command> [args...]
import { spawn } from 'node:child_process';
import net from 'node:net';
import { constants } from 'node:os';

const [socketPath, port, program, ...args] = process.argv.slice(2);
if (socketPath === undefined || port === undefined || program === undefined) {
  console.error('egress-bridge: expected <socket> <port> <command> [args...]');
  process.exit(2);
}

const server = net.createServer((client) => {
  const upstream = net.connect(socketPath);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
  client.pipe(upstream).pipe(client);
});

server.on('error', (err) => {
  console.error(`egress-bridge: cannot listen on 127.0.0.1:${port}: ${err.message}`);
  process.exit(126);
});

server.listen(Number(port), '127.0.0.1', () => {
  const child = spawn(program, args, { stdio: 'inherit' });
  child.on('error', (err) => {
    console.error(`${program}: ${err.message}`);
    process.exit(127);
  });
  child.on('exit', (code, signal) => process.exit(code ?? 128 + (signal === null ? 0 : constants.signals[signal])));
});
