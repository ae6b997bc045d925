import type { CloudToDevice, DeviceBoundMessage } from '../../core/c2d/index.js';
import type { IdentityKey } from '../../ports/store/index.js';
import type { C2dDelivery, C2dSource } from './gateway.js';

/** The topic property bag of a C2D message, as IoT Hub writes it (azure-compat §3): system keys, then application properties. */
export function c2dBag(m: DeviceBoundMessage): Record<string, string> {
  const bag: Record<string, string> = { '$.mid': m.messageId, '$.to': m.to };
  if (m.correlationId) bag['$.cid'] = m.correlationId;
  if (m.userId) bag['$.uid'] = m.userId;
  if (m.contentType) bag['$.ct'] = m.contentType;
  if (m.contentEncoding) bag['$.ce'] = m.contentEncoding;
  bag['$.exp'] = m.expiryTimeUtc;
  bag['iothub-ack'] = m.ack;
  for (const [k, v] of Object.entries(m.properties)) bag[k] = v;
  return bag;
}

/** Cloud-to-device messaging as the MQTT edge consumes it: lock the next message, complete it on PUBACK. */
export function mqttC2dSource(c2d: CloudToDevice): C2dSource {
  return {
    async receive(key: IdentityKey): Promise<C2dDelivery | undefined> {
      const m = await c2d.receive(key);
      if (!m) return undefined;
      // Module-bound messages arrive on an input; one named by the sender's `iothub-inputname`, else 'default'.
      return { lockToken: m.lockToken, body: m.body, bag: c2dBag(m), deliveryCount: m.deliveryCount, inputName: m.properties['iothub-inputname'] ?? 'default' };
    },
    complete: (key, lockToken) => c2d.complete(key, lockToken),
  };
}
