import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { DEVICE_TLS_OPTIONS, peerCertificateChain } from '../tls/peer-chain.js';
import type { Gateway } from './gateway.js';

export interface MqttListener {
  close(): Promise<void>;
}

function listen(server: Server | NetServer, host: string, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { server.off('error', reject); resolve(); });
  });
}

function closer(server: Server | NetServer): MqttListener {
  return { close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/**
 * MQTT over TLS (8883 by default). Client certificates are requested, not required: SAS devices send none, X.509
 * devices are matched by the session against their registered thumbprints or CAs (the chain they sent goes along).
 */
export async function listenMqtts(opts: { tls: { cert: string; key: string }; host: string; port: number; gateway: Gateway }): Promise<MqttListener> {
  const server = createServer({ cert: opts.tls.cert, key: opts.tls.key, ...DEVICE_TLS_OPTIONS }, (socket: TLSSocket) => {
    socket.setNoDelay(true);
    opts.gateway.handle(socket, peerCertificateChain(socket));
  });
  server.on('tlsClientError', () => {});
  await listen(server, opts.host, opts.port);
  return closer(server);
}

/** Plain MQTT, only when `--mqtt-port` asks for it (never on 1883 by default): for trusted networks and benchmarks. */
export async function listenMqtt(opts: { host: string; port: number; gateway: Gateway }): Promise<MqttListener> {
  const server = createNetServer((socket) => {
    socket.setNoDelay(true);
    opts.gateway.handle(socket);
  });
  await listen(server, opts.host, opts.port);
  return closer(server);
}
