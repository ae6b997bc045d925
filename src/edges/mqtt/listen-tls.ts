import mqtt from 'mqtt-packet';
import { createServer, type TLSSocket } from 'node:tls';
import type { Logger } from '../../observability/logger.js';

export interface MqttsListener {
  close(): Promise<void>;
}

/**
 * The MQTT/TLS port while the device gateway is not part of this build: it holds the port (so `corral start`
 * reports clashes on it) and answers every CONNECT with CONNACK 3, "server unavailable", which MQTT clients
 * report as such, then closes. Nothing else is read or answered.
 */
export async function listenMqttsUnavailable(opts: {
  tls: { cert: string; key: string }; host: string; port: number; logger: Logger;
}): Promise<MqttsListener> {
  const sockets = new Set<TLSSocket>();
  const server = createServer({ cert: opts.tls.cert, key: opts.tls.key }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.setTimeout(10_000, () => socket.destroy());
    const parser = mqtt.parser({ protocolVersion: 4 });
    parser.on('packet', (packet) => {
      if (packet.cmd === 'connect') socket.end(mqtt.generate({ cmd: 'connack', returnCode: 3, sessionPresent: false }));
      else socket.destroy();
    });
    parser.on('error', () => socket.destroy());
    socket.on('data', (chunk) => parser.parse(chunk));
  });
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => { server.off('error', reject); resolve(); });
  });
  opts.logger.info({ port: opts.port }, 'MQTT/TLS port held; the device gateway is not in this build, CONNECT gets CONNACK 3');
  return {
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}
