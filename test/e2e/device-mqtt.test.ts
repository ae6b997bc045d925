import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import iothub from 'azure-iothub';
import { disposeHub, startHub, type RunningHub } from '../support/hub-process.js';
import { createDevice, Message, nextEvent, openDevice, readEvents, type Transport } from '../support/devices.js';
import { eventually } from '../support/eventually.js';
import { serviceCall } from '../support/rest.js';

/** The SDK's reported.update takes only a callback. */
function reportedUpdate(twin: { properties: { reported: object } }, patch: unknown): Promise<void> {
  // The SDK types `reported` as a plain record; at run time it carries update(patch, callback).
  const reported = twin.properties.reported as { update(patch: unknown, done: (err?: Error) => void): void };
  return new Promise((resolve, reject) => reported.update(patch, (err) => (err ? reject(err) : resolve())));
}

// The unchanged azure-iot-device SDK over MQTT/TLS and MQTT over WebSocket, against a real hub process.
const HOST = '127.0.0.12';
let hub: RunningHub;
let registry: iothub.Registry;
let service: iothub.Client;

before(async () => {
  hub = await startHub({ address: HOST });
  registry = iothub.Registry.fromConnectionString(hub.info.connectionStrings.iothubowner);
  service = iothub.Client.fromConnectionString(hub.info.connectionStrings.service);
});
after(async () => { await disposeHub(hub); });

for (const transport of ['mqtt', 'mqttws'] as Transport[]) {
  describe(`over ${transport}`, () => {
    test('telemetry is stored with its properties and annotations before it is acknowledged', async () => {
      const id = `tel-${transport}`;
      const client = await openDevice(await createDevice(hub, id), transport);
      try {
        const m = new Message(JSON.stringify({ temperature: 21.5 }));
        m.messageId = 'mid-1';
        m.correlationId = 'c/1';
        m.contentType = 'application/json';
        m.contentEncoding = 'utf-8';
        m.properties.add('alert level', 'high&low');
        await client.sendEvent(m);
        const events = await readEvents(hub, id);
        assert.equal(events.length, 1);
        const e = events[0];
        assert.equal(Buffer.from(e.body).toString(), '{"temperature":21.5}');
        assert.equal(e.properties['$.message-id'], 'mid-1');
        assert.equal(e.properties['$.correlation-id'], 'c/1');
        assert.equal(e.properties['$.content-type'], 'application/json');
        assert.equal(e.properties['alert level'], 'high&low');
        assert.equal(e.properties['iothub-connection-device-id'], id);
        assert.equal(e.properties['iothub-connection-auth-method'], 'sas');
        assert.ok(e.properties['iothub-connection-auth-generation-id']);
      } finally {
        await client.close();
      }
    });

    test('twin: get, reported patch, desired notifications in version order', async () => {
      const id = `twin-${transport}`;
      const client = await openDevice(await createDevice(hub, id), transport);
      try {
        await registry.updateTwin(id, { properties: { desired: { interval: 5 } } }, '*');
        const twin = await client.getTwin();
        assert.equal(twin.properties.desired.interval, 5);
        assert.equal(twin.properties.desired.$version, 2);
        // Listening makes the SDK subscribe to desired notices; the reported patch's round trip after it lets the
        // SUBSCRIBE reach the hub before the patches below (a notice sent before it is, as on IoT Hub, not delivered).
        const seen: unknown[] = [];
        const got = new Promise<void>((resolve) => twin.on('properties.desired', (delta: { $version: number }) => {
          seen.push(delta);
          if (delta.$version === 4) resolve();
        }));
        await reportedUpdate(twin, { firmware: '1.2.3', nested: { a: 1 } });
        await registry.updateTwin(id, { properties: { desired: { interval: 10 } } }, '*');
        await registry.updateTwin(id, { properties: { desired: { mode: 'eco', interval: null } } }, '*');
        await got;
        const last = seen.at(-1) as Record<string, unknown>;
        assert.deepEqual(last, { mode: 'eco', interval: null, $version: 4 });
        const { responseBody: serviceTwin } = await registry.getTwin(id);
        assert.equal(serviceTwin.properties.reported.firmware, '1.2.3');
        assert.deepEqual(serviceTwin.properties.reported.nested, { a: 1 });
      } finally {
        await client.close();
      }
    });

    test('a reported patch over the limit is refused with the SDK seeing the error', async () => {
      const id = `twin-big-${transport}`;
      const client = await openDevice(await createDevice(hub, id), transport);
      try {
        const twin = await client.getTwin();
        const huge = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, 'x'.repeat(4000)]));
        await assert.rejects(reportedUpdate(twin, huge), /32768/);
      } finally {
        await client.close();
      }
    });

    test('direct methods: answered, device status passed through, timeout is 504, offline is 404103', async () => {
      const id = `meth-${transport}`;
      const client = await openDevice(await createDevice(hub, id), transport);
      try {
        client.onDeviceMethod('reboot', (req, res) => {
          void res.send(202, { delay: (req.payload as { delay: number }).delay, echoed: req.methodName });
        });
        client.onDeviceMethod('silent', () => {});
        await eventually(async () => {
          const r = await service.invokeDeviceMethod(id, { methodName: 'reboot', payload: { delay: 3 }, responseTimeoutInSeconds: 5 });
          assert.deepEqual(r.result, { status: 202, payload: { delay: 3, echoed: 'reboot' } });
        });
        await assert.rejects(service.invokeDeviceMethod(id, { methodName: 'silent', payload: null, responseTimeoutInSeconds: 5 }), { name: 'GatewayTimeoutError' });
      } finally {
        await client.close();
      }
      await eventually(async () => {
        await assert.rejects(service.invokeDeviceMethod(id, { methodName: 'reboot', payload: {}, responseTimeoutInSeconds: 5 }),
          (err: Error & { response?: { statusCode: number } }) => err.response?.statusCode === 404 && /404103/.test(String((err as { responseBody?: string }).responseBody)));
      });
    });

    test('cloud-to-device: queued while offline, delivered on subscribe with its properties, completed by PUBACK', async () => {
      const id = `c2d-${transport}`;
      const cs = await createDevice(hub, id);
      const send = (body: string, headers: Record<string, string>) =>
        serviceCall(HOST, hub.info.connectionStrings.service, 'POST', `/devices/${id}/messages/deviceBound?api-version=2021-04-12`, body, { 'content-type': 'text/plain', ...headers });
      assert.equal((await send('while offline', { 'iothub-messageid': 'm-1', 'iothub-app-color': 'red', 'iothub-ack': 'full' })).status, 200);
      const client = await openDevice(cs, transport);
      try {
        const received: { body: string; messageId: string; color: unknown }[] = [];
        const two = new Promise<void>((resolve) => client.on('message', (msg) => {
          received.push({ body: String(msg.data), messageId: String(msg.messageId), color: msg.properties.getValue('color') });
          if (received.length === 2) resolve();
        }));
        assert.equal((await send('while online', { 'iothub-messageid': 'm-2', 'iothub-correlationid': 'c/2' })).status, 200);
        await two;
        assert.deepEqual(received, [
          { body: 'while offline', messageId: 'm-1', color: 'red' },
          { body: 'while online', messageId: 'm-2', color: undefined },
        ]);
        await eventually(async () => assert.equal((await registry.get(id)).responseBody.cloudToDeviceMessageCount, 0));
      } finally {
        await client.close();
      }
    });

    test('presence: Connected while open, Disconnected after close, within a second', async () => {
      const id = `pres-${transport}`;
      const client = await openDevice(await createDevice(hub, id), transport);
      await eventually(async () => assert.equal((await registry.get(id)).responseBody.connectionState, 'Connected'), 1000);
      const { responseBody: stats } = await (registry as unknown as { getRegistryStatistics(): Promise<{ responseBody: unknown }> }).getRegistryStatistics();
      assert.ok(stats);
      await client.close();
      await eventually(async () => assert.equal((await registry.get(id)).responseBody.connectionState, 'Disconnected'), 1000);
      const events = await readEvents(hub, id, 'connectionState');
      assert.ok(events.length >= 2);
    });

    test('disabling the device closes its connection within a second', async () => {
      const id = `kick-${transport}`;
      const client = await openDevice(await createDevice(hub, id), transport);
      try {
        await eventually(async () => assert.equal((await registry.get(id)).responseBody.connectionState, 'Connected'), 1000);
        // The SDK then retries for minutes (each try refused), so the hub's side is what shows the cut.
        await registry.update({ deviceId: id, status: 'disabled' });
        await eventually(async () => assert.equal((await registry.get(id)).responseBody.connectionState, 'Disconnected'), 1000);
        // Let the SDK's retries succeed again, so it can close cleanly instead of retrying for minutes.
        await registry.update({ deviceId: id, status: 'enabled' });
      } finally {
        await client.close();
      }
    });
  });
}

test('a method call with connectTimeoutInSeconds waits for the device to come online', async () => {
  const cs = await createDevice(hub, 'late-riser');
  const call = service.invokeDeviceMethod('late-riser', { methodName: 'wake', payload: 1, responseTimeoutInSeconds: 5, connectTimeoutInSeconds: 10 });
  const client = await openDevice(cs, 'mqtt');
  try {
    client.onDeviceMethod('wake', (_req, res) => void res.send(200, 'awake'));
    const r = await call;
    assert.deepEqual(r.result, { status: 200, payload: 'awake' });
  } finally {
    await client.close();
  }
});

test('method arguments outside IoT Hub limits are refused with ArgumentError', async () => {
  await createDevice(hub, 'limits');
  await assert.rejects(service.invokeDeviceMethod('limits', { methodName: 'x', payload: null, responseTimeoutInSeconds: 301 }), { name: 'ArgumentError' });
  await assert.rejects(service.invokeDeviceMethod('limits', { methodName: 'x', payload: 'y'.repeat(130 * 1024), responseTimeoutInSeconds: 5 }), { name: 'ArgumentError' });
  await assert.rejects(service.invokeDeviceMethod('nobody-here', { methodName: 'x', payload: null, responseTimeoutInSeconds: 5 }), { name: 'DeviceNotFoundError' });
});

test('a device with a wrong key is refused as unauthorized', async () => {
  const cs = await createDevice(hub, 'wrong-key');
  const bad = cs.replace(/SharedAccessKey=.*/, `SharedAccessKey=${Buffer.alloc(32, 9).toString('base64')}`);
  await assert.rejects(openDevice(bad, 'mqtt'), { name: 'UnauthorizedError' });
});

test('an unknown or disabled device is refused as unauthorized', async () => {
  const cs = await createDevice(hub, 'will-vanish');
  await registry.delete('will-vanish');
  await assert.rejects(openDevice(cs, 'mqtt'), { name: 'UnauthorizedError' });
  const off = await createDevice(hub, 'off-device', { status: 'disabled' });
  await assert.rejects(openDevice(off, 'mqtt'), { name: 'UnauthorizedError' });
});
