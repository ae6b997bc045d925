import { readFileSync } from 'node:fs';
import { createServer } from 'node:tls';

/**
 * The idle-TLS figure's peer, run as its own process so its memory can be read apart: a bare Node TLS server with
 * the hub's certificate and the hub's TLS options, echoing whatever arrives. Prints `ready` once listening.
 *   node --import tsx bench/mqtt/tls-echo-server.ts HOST PORT CERT_FILE KEY_FILE
 */
const [host, port, certFile, keyFile] = process.argv.slice(2);
const server = createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile), requestCert: true, rejectUnauthorized: false }, (socket) => {
  socket.setNoDelay(true);
  socket.on('data', (chunk: Buffer) => socket.write(chunk));
  socket.on('error', () => socket.destroy());
});
server.on('tlsClientError', () => {});
server.listen(Number(port), host, () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => process.exit(0));
