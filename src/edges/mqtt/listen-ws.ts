import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { WebSocketServer, createWebSocketStream } from 'ws';
import { peerCertificateChain } from '../tls/peer-chain.js';
import type { Gateway } from './gateway.js';

const PATH = '/$iothub/websocket';

/**
 * MQTT over WebSocket at `wss://HOST/$iothub/websocket` on the HTTPS port (subprotocol `mqtt`, as MqttWs sends).
 * Other upgrades are refused with 404; the device's client certificate, if any, comes from the TLS socket.
 */
export function attachMqttWebSocket(server: Server, gateway: Gateway): { close(): void } {
  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : false),
    maxPayload: 1024 * 1024,
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? '').split('?')[0];
    if (path.toLowerCase() !== PATH) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const stream = createWebSocketStream(ws);
      gateway.handle(stream, peerCertificateChain(req.socket as Partial<TLSSocket>));
    });
  });
  return { close: () => { for (const c of wss.clients) c.terminate(); wss.close(); } };
}
