import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import mqttPacket from 'mqtt-packet';
import mqtt from 'mqtt';
import WebSocket from 'ws';
import iothub from 'azure-iothub';
import { disposeHub, startHub, type RunningHub } from '../support/hub-process.js';
import { readEvents } from '../support/devices.js';
import {
  connectPacket, connected, createRawDevice, deviceToken, publishAcked, rawConnect, RawMqtt, seededRandom, telemetryTopic,
  type DeviceCredentials,
} from '../support/mqtt-raw.js';

// Hand-made MQTT (raw TLS sockets + mqtt-packet) against a real hub process: "a bad or hostile client never takes
// down the hub or another device" (azure-compat §1.2–§1.4, §2).
const HOST = '127.0.0.13';
const PLAIN_PORT = 1884; // plain listener for the fuzzer only; never 1883
let hub: RunningHub;
let disposing = false;

before(async () => {
  hub = await startHub({ address: HOST, args: ['--mqtt-port', String(PLAIN_PORT)] });
  // A crash is the worst outcome here: show how the hub died, since later failures only say "ECONNREFUSED".
  hub.process.once('exit', (code, signal) => {
    if (!disposing) console.error(`hub exited unexpectedly (code ${code}, signal ${signal}); last log lines:\n${hub.logs.slice(-40).join('\n')}`);
  });
});
after(async () => { disposing = true; await disposeHub(hub); });

/** CONNACK with `returnCode`, then the hub closes the connection; nothing else is sent. */
async function assertRefused(client: RawMqtt, connack: mqttPacket.IConnackPacket, returnCode: number): Promise<void> {
  assert.equal(connack.returnCode, returnCode, `CONNACK return code; received ${client.describe()}`);
  assert.equal(connack.sessionPresent, false);
  await client.closedWithin(2000);
  assert.deepEqual(client.received.map((p) => p.cmd), ['connack']);
}

/** The bytes of one packet, for building malformed ones. */
function bytesOf(packet: mqttPacket.Packet): Buffer {
  return mqttPacket.generate(packet);
}

function publishPacket(topic: string, payload: Buffer | string, opts: { qos?: 0 | 1 | 2; messageId?: number; retain?: boolean } = {}): mqttPacket.IPublishPacket {
  return { cmd: 'publish', topic, payload: Buffer.from(payload), qos: opts.qos ?? 1, messageId: opts.messageId ?? 1, retain: opts.retain ?? false, dup: false };
}

describe('a bad or hostile MQTT client never takes down the hub or another device', { concurrency: true }, () => {
  // The slow, timer-bound cases run beside the sequential ones below, so the file stays well under 30 s.

  test('a TLS connection that never sends CONNECT is closed within ~10 s', async () => {
    const client = await RawMqtt.tls(hub);
    const closedAt = await client.closedWithin(15_000);
    const elapsed = closedAt - client.openedAtMs;
    assert.ok(elapsed >= 9000 && elapsed <= 12_000, `closed after ${elapsed} ms, expected ~10 000`);
    assert.deepEqual(client.received, []);
  });

  test('a CONNECT trickled one byte a second does not push back the 10 s deadline', async () => {
    const d = await createRawDevice(hub, 'trickle');
    const client = await RawMqtt.tls(hub);
    const bytes = bytesOf(connectPacket(d));
    let i = 0;
    const pace = setInterval(() => { if (client.isOpen && i < bytes.length) client.write(bytes.subarray(i, ++i)); }, 1000);
    try {
      const closedAt = await client.closedWithin(15_000);
      const elapsed = closedAt - client.openedAtMs;
      assert.ok(elapsed >= 9000 && elapsed <= 12_000, `closed after ${elapsed} ms (${i} bytes sent), expected ~10 000`);
      assert.deepEqual(client.received, []);
    } finally {
      clearInterval(pace);
    }
  });

  test('keep-alive: a client silent for 1.5 × its keep-alive of 2 s is closed (~3 s)', async () => {
    const d = await createRawDevice(hub, 'silent');
    const client = await connected(hub, d, { keepalive: 2 });
    const connackAt = Date.now();
    const closedAt = await client.closedWithin(8000);
    const elapsed = closedAt - connackAt;
    assert.ok(elapsed >= 2000 && elapsed <= 5000, `closed after ${elapsed} ms of silence, expected ~3000`);
  });

  test('keep-alive: PINGREQ gets PINGRESP, and a client pinging every second outlives 1.5 × keep-alive', async () => {
    const d = await createRawDevice(hub, 'pinger');
    const client = await connected(hub, d, { keepalive: 2 });
    const started = Date.now();
    for (let n = 0; n < 4; n++) {
      // The pause is the client's behaviour under test (a ping each second), not a wait for the hub.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      client.send({ cmd: 'pingreq' });
      await client.next('pingresp', 2000);
    }
    assert.ok(Date.now() - started > 3000);
    assert.ok(client.isOpen, 'a pinging client must stay connected');
    client.send({ cmd: 'disconnect' });
    await client.closedWithin(2000);
  });

  test('a connection closes when its SAS token expires, within 1.5 s of the expiry', async () => {
    const d = await createRawDevice(hub, 'expiring');
    const expiry = Math.ceil(Date.now() / 1000) + 2;
    const client = await connected(hub, d, { password: deviceToken(d, expiry), keepalive: 60 });
    const closedAt = await client.closedWithin(8000);
    const expiryMs = expiry * 1000;
    assert.ok(closedAt >= expiryMs, `closed ${expiryMs - closedAt} ms before the token expired`);
    assert.ok(closedAt - expiryMs <= 1500, `closed ${closedAt - expiryMs} ms after the token expired`);
  });

  describe('one at a time', { concurrency: 1 }, () => {
    let bystanderCreds: DeviceCredentials;
    let bystander: RawMqtt;
    let bystanderPacketId = 1;
    let attacker: DeviceCredentials;

    /** The well-behaved device, connected since before the first attack, still publishes and gets PUBACKs. */
    async function assertBystanderUnharmed(): Promise<void> {
      assert.ok(bystander.isOpen, 'the bystander was disconnected');
      await publishAcked(bystander, bystanderCreds.deviceId, bystanderPacketId++, `still here ${bystanderPacketId}`);
      assert.ok(bystander.isOpen, 'the bystander was disconnected');
      assert.equal(hub.process.exitCode, null, 'the hub process exited');
    }

    before(async () => {
      bystanderCreds = await createRawDevice(hub, 'bystander');
      attacker = await createRawDevice(hub, 'attacker');
      bystander = await connected(hub, bystanderCreds);
      await publishAcked(bystander, bystanderCreds.deviceId, bystanderPacketId++, 'hello');
    });
    after(() => bystander.destroy());

    describe('CONNECT refusals', () => {
      test('a token signed with a wrong key gets CONNACK 5', async () => {
        const d = await createRawDevice(hub, 'wrong-key');
        const { client, connack } = await rawConnect(hub, d, { password: deviceToken({ ...d, key: Buffer.alloc(32, 9).toString('base64') }) });
        await assertRefused(client, connack, 5);
      });

      test('an expired token gets CONNACK 5', async () => {
        const d = await createRawDevice(hub, 'expired');
        const { client, connack } = await rawConnect(hub, d, { password: deviceToken(d, Math.floor(Date.now() / 1000) - 10) });
        await assertRefused(client, connack, 5);
      });

      test('an unknown device gets CONNACK 5', async () => {
        const ghost: DeviceCredentials = { hostName: hub.info.hostName, deviceId: 'never-created', key: Buffer.alloc(32, 7).toString('base64') };
        const { client, connack } = await rawConnect(hub, ghost);
        await assertRefused(client, connack, 5);
      });

      test('a disabled device gets CONNACK 5', async () => {
        const d = await createRawDevice(hub, 'disabled', { status: 'disabled' });
        const { client, connack } = await rawConnect(hub, d);
        await assertRefused(client, connack, 5);
      });

      test("a token for another device's resource gets CONNACK 5, whichever key signed it", async () => {
        const victim = await createRawDevice(hub, 'victim-token');
        // The victim's own valid token, presented by the attacker.
        const stolen = await rawConnect(hub, attacker, { password: deviceToken(victim) });
        await assertRefused(stolen.client, stolen.connack, 5);
        // The attacker's key over the victim's resource.
        const forged = await rawConnect(hub, attacker, { password: deviceToken(attacker, undefined, victim.deviceId) });
        await assertRefused(forged.client, forged.connack, 5);
      });

      test('no password, or a password that is not a SAS token, gets CONNACK 5', async () => {
        const d = await createRawDevice(hub, 'no-password');
        const bare = await RawMqtt.tls(hub);
        const { password: _omitted, ...withoutPassword } = connectPacket(d);
        bare.send(withoutPassword);
        await assertRefused(bare, await bare.next('connack'), 5);
        const junk = await rawConnect(hub, d, { password: 'hunter2' });
        await assertRefused(junk.client, junk.connack, 5);
      });

      test('a clientId that differs from the username identity gets CONNACK 2 (identifier rejected)', async () => {
        const other = await createRawDevice(hub, 'mismatch');
        const { client, connack } = await rawConnect(hub, attacker, { clientId: other.deviceId });
        await assertRefused(client, connack, 2);
      });

      test('MQTT protocol level 5 and level 3 get a 3.1.1 CONNACK 1 (unacceptable protocol version)', async () => {
        const d = await createRawDevice(hub, 'old-and-new');
        for (const [protocolId, protocolVersion] of [['MQTT', 5], ['MQIsdp', 3]] as const) {
          const client = await RawMqtt.tls(hub);
          client.send({ ...connectPacket(d), protocolId, protocolVersion, ...(protocolVersion === 5 ? { properties: {} } : {}) });
          await client.closedWithin(2000);
          // MQTT-3.1.2-2: a 3.1.1 CONNACK with return code 1, then close.
          assert.deepEqual(Buffer.concat(client.bytes), Buffer.from([0x20, 0x02, 0x00, 0x01]), `level ${protocolVersion}: received ${client.describe()}`);
        }
      });

      test('packets before CONNECT close the connection without an answer', async () => {
        for (const packet of [publishPacket(telemetryTopic(attacker.deviceId), 'early'), { cmd: 'pingreq' } as const]) {
          const client = await RawMqtt.tls(hub);
          client.send(packet);
          await client.closedWithin(2000);
          assert.deepEqual(client.received, [], `${packet.cmd} before CONNECT`);
        }
        assert.equal((await readEvents(hub, attacker.deviceId)).length, 0);
        await assertBystanderUnharmed();
      });
    });

    describe("foreign topics disconnect the offender, and only the offender", () => {
      test("publishing to another device's telemetry topic disconnects the publisher; nothing is stored", async () => {
        const client = await connected(hub, attacker);
        client.send(publishPacket(telemetryTopic(bystanderCreds.deviceId), 'forged'));
        await client.closedWithin(2000);
        assert.deepEqual(client.received.map((p) => p.cmd), ['connack']);
        await assertBystanderUnharmed();
        const stored = await readEvents(hub, bystanderCreds.deviceId);
        assert.ok(!stored.some((e) => Buffer.from(e.body).toString() === 'forged'), 'the forged message was stored for the bystander');
        assert.equal((await readEvents(hub, attacker.deviceId)).length, 0);
      });

      for (const topic of ['devices/attacker/messages/devicebound/', 'foo/bar', '$iothub/twin/PATCH/properties/desired/?$version=1', 'devices/attacker/messages/event', '#']) {
        test(`publishing to the arbitrary topic '${topic}' disconnects the publisher`, async () => {
          const client = await connected(hub, attacker);
          client.send(publishPacket(topic, 'nope', { qos: 1, messageId: 7 }));
          await client.closedWithin(2000);
          assert.deepEqual(client.received.map((p) => p.cmd), ['connack']);
          await assertBystanderUnharmed();
        });
      }

      for (const filter of ['devices/bystander/messages/devicebound/#', '#', 'devices/+/messages/devicebound/#', '$iothub/#', '+/+/+/+']) {
        test(`subscribing to '${filter}' disconnects the subscriber without a SUBACK`, async () => {
          const client = await connected(hub, attacker);
          client.send({ cmd: 'subscribe', messageId: 3, subscriptions: [{ topic: filter, qos: 1 }] });
          await client.closedWithin(2000);
          assert.deepEqual(client.received.map((p) => p.cmd), ['connack']);
          await assertBystanderUnharmed();
        });
      }

      test('one foreign filter among allowed ones fails the whole SUBSCRIBE', async () => {
        const client = await connected(hub, attacker);
        client.send({ cmd: 'subscribe', messageId: 4, subscriptions: [
          { topic: 'devices/attacker/messages/devicebound/#', qos: 1 }, { topic: 'devices/bystander/messages/devicebound/#', qos: 1 },
        ] });
        await client.closedWithin(2000);
        assert.deepEqual(client.received.map((p) => p.cmd), ['connack']);
        await assertBystanderUnharmed();
      });
    });

    describe('QoS and RETAIN', () => {
      test('a QoS 2 PUBLISH disconnects the device; no PUBREC, nothing stored', async () => {
        const d = await createRawDevice(hub, 'qos2-pub');
        const client = await connected(hub, d);
        client.send(publishPacket(telemetryTopic(d.deviceId), 'exactly once?', { qos: 2, messageId: 9 }));
        await client.closedWithin(2000);
        assert.deepEqual(client.received.map((p) => p.cmd), ['connack']);
        assert.equal((await readEvents(hub, d.deviceId)).length, 0);
        await assertBystanderUnharmed();
      });

      test('a QoS 2 SUBSCRIBE to allowed topics is granted QoS 1 (and QoS 0 stays 0)', async () => {
        const d = await createRawDevice(hub, 'qos2-sub');
        const client = await connected(hub, d);
        client.send({ cmd: 'subscribe', messageId: 11, subscriptions: [
          { topic: `devices/${d.deviceId}/messages/devicebound/#`, qos: 2 },
          { topic: '$iothub/twin/res/#', qos: 0 },
          { topic: '$iothub/methods/POST/#', qos: 2 },
        ] });
        const suback = await client.next('suback');
        assert.equal(suback.messageId, 11);
        assert.deepEqual(suback.granted, [1, 0, 1]);
        assert.ok(client.isOpen);
        client.destroy();
      });

      test('RETAIN on telemetry is acknowledged and stored with mqtt-retain = true', async () => {
        const d = await createRawDevice(hub, 'retainer');
        const client = await connected(hub, d);
        client.send(publishPacket(telemetryTopic(d.deviceId, 'k=v'), 'kept?', { qos: 1, messageId: 21, retain: true }));
        const ack = await client.next('puback');
        assert.equal(ack.messageId, 21);
        const events = await readEvents(hub, d.deviceId);
        assert.equal(events.length, 1);
        assert.equal(Buffer.from(events[0].body).toString(), 'kept?');
        assert.equal(events[0].properties['mqtt-retain'], 'true');
        assert.equal(events[0].properties.k, 'v');
        client.destroy();
      });
    });

    test('packets sent right behind CONNECT, before its CONNACK, are served after it (and a foreign one still disconnects)', async () => {
      const d = await createRawDevice(hub, 'eager');
      const client = await RawMqtt.tls(hub);
      client.write(Buffer.concat([bytesOf(connectPacket(d)), bytesOf(publishPacket(telemetryTopic(d.deviceId), 'eager', { messageId: 31 })), bytesOf({ cmd: 'pingreq' })]));
      assert.equal((await client.next('connack')).returnCode, 0);
      assert.equal((await client.next('puback')).messageId, 31);
      await client.next('pingresp');
      // MQTT orders PUBACKs among PUBLISHes only; a PINGRESP may overtake a PUBACK that waits for the disk.
      assert.deepEqual(client.received.map((p) => p.cmd).sort(), ['connack', 'pingresp', 'puback']);
      assert.equal(client.received[0].cmd, 'connack');
      assert.equal((await readEvents(hub, d.deviceId)).length, 1);
      client.destroy();

      const rude = await RawMqtt.tls(hub);
      rude.write(Buffer.concat([bytesOf(connectPacket(attacker)), bytesOf(publishPacket(telemetryTopic(bystanderCreds.deviceId), 'eager forgery', { messageId: 32 }))]));
      await rude.closedWithin(2000);
      assert.deepEqual(rude.received.map((p) => p.cmd), ['connack']);
      await assertBystanderUnharmed();
    });

    test('a second connection with the same clientId replaces the first; the second works and stays Connected', async () => {
      const d = await createRawDevice(hub, 'twice');
      const first = await connected(hub, d);
      const second = await connected(hub, d);
      await first.closedWithin(2000);
      await publishAcked(second, d.deviceId, 5, 'from the second');
      assert.ok(second.isOpen, 'the replacing connection was closed');
      const registry = iothub.Registry.fromConnectionString(hub.info.connectionStrings.iothubowner);
      assert.equal((await registry.get(d.deviceId)).responseBody.connectionState, 'Connected');
      assert.ok(await second.staysOpenFor(300), 'the replacing connection was closed after the old one went');
      second.destroy();
    });

    describe('malformed bytes after CONNECT close only that connection', () => {
      const rnd = seededRandom(0xC0FFEE);
      const cases: [string, Buffer][] = [
        ['HTTP text', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
        ['random bytes (first byte 0xff)', Buffer.from([0xff, ...Array.from({ length: 255 }, () => Math.floor(rnd() * 256))])],
        ['packet type 0', Buffer.from([0x00, 0x00])],
        ['packet type 0 with a body', Buffer.from([0x0f, 0x03, 1, 2, 3])],
        ['AUTH (type 15, MQTT 5 only)', Buffer.from([0xf0, 0x00])],
        ['SUBSCRIBE with reserved flags 0000', Buffer.from([0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 0x23, 0x00])],
        // MQTT-3.8.3-3 / MQTT-3.10.3-2: a SUBSCRIBE or UNSUBSCRIBE without a topic filter is a protocol violation.
        ['SUBSCRIBE without a topic filter', Buffer.from([0x82, 0x02, 0x00, 0x01])],
        ['UNSUBSCRIBE without a topic filter', Buffer.from([0xa2, 0x02, 0x00, 0x01])],
        ['PUBLISH with both QoS bits set', Buffer.from([0x36, 0x05, 0x00, 0x01, 0x61, 0x00, 0x01])],
        ['a remaining length of five bytes', Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x7f])],
        ['CONNACK from the client', Buffer.from([0x20, 0x02, 0x00, 0x00])],
        ['SUBACK from the client', Buffer.from([0x90, 0x03, 0x00, 0x01, 0x01])],
        ['PINGRESP from the client', Buffer.from([0xd0, 0x00])],
      ];
      for (const [name, bytes] of cases) {
        test(`${name} closes the connection`, async () => {
          const d = await createRawDevice(hub, `malformed-${cases.findIndex(([n]) => n === name)}`);
          const client = await connected(hub, d);
          client.write(bytes);
          await client.closedWithin(2000);
          assert.deepEqual(client.received.map((p) => p.cmd), ['connack']);
          await assertBystanderUnharmed();
        });
      }

      test('a second CONNECT on a connected session closes it', async () => {
        const d = await createRawDevice(hub, 'connect-twice');
        const client = await connected(hub, d);
        client.send(connectPacket(d));
        await client.closedWithin(2000);
        assert.deepEqual(client.received.map((p) => p.cmd), ['connack']);
        await assertBystanderUnharmed();
      });

      test('telemetry whose property bag is not valid percent-encoding closes the connection; nothing is stored', async () => {
        const d = await createRawDevice(hub, 'bad-bag');
        const client = await connected(hub, d);
        client.send(publishPacket(telemetryTopic(d.deviceId, 'a=%E0%A4%A'), 'x', { messageId: 3 }));
        await client.closedWithin(2000);
        assert.deepEqual(client.received.map((p) => p.cmd), ['connack']);
        assert.equal((await readEvents(hub, d.deviceId)).length, 0);
        await assertBystanderUnharmed();
      });

      test('a PUBLISH cut short (length field larger than the data) and then FIN stores nothing', async () => {
        const d = await createRawDevice(hub, 'truncated');
        const client = await connected(hub, d);
        const full = bytesOf(publishPacket(telemetryTopic(d.deviceId), Buffer.alloc(1000, 0x61)));
        client.write(full.subarray(0, 40));
        client.socket.end();
        await client.closedWithin(2000);
        assert.deepEqual(client.received.map((p) => p.cmd), ['connack']);
        assert.equal((await readEvents(hub, d.deviceId)).length, 0);
        await assertBystanderUnharmed();
      });
    });

    describe('message size', () => {
      test('telemetry over 256 KiB closes the connection and stores nothing; 200 KiB is accepted', async () => {
        const d = await createRawDevice(hub, 'big');
        const client = await connected(hub, d);
        client.send(publishPacket(telemetryTopic(d.deviceId), Buffer.alloc(256 * 1024 + 1, 0x62), { messageId: 1 }));
        await client.closedWithin(5000);
        assert.deepEqual(client.received.map((p) => p.cmd), ['connack'], 'no PUBACK for an oversized message');
        assert.equal((await readEvents(hub, d.deviceId)).length, 0);

        const again = await connected(hub, d);
        await publishAcked(again, d.deviceId, 2, Buffer.alloc(200 * 1024, 0x63));
        const events = await readEvents(hub, d.deviceId);
        assert.equal(events.length, 1);
        assert.equal(events[0].body.byteLength, 200 * 1024);
        again.destroy();
        await assertBystanderUnharmed();
      });

      test('a PUBLISH declaring a 64 MiB body is closed before the body is sent (no unbounded buffering)', async () => {
        const d = await createRawDevice(hub, 'declared-huge');
        const client = await connected(hub, d);
        const topic = Buffer.from(telemetryTopic(d.deviceId));
        const remaining = 2 + topic.length + 2 + 64 * 1024 * 1024;
        const length: number[] = [];
        for (let n = remaining; ; ) { const b = n % 128; n = Math.floor(n / 128); length.push(n > 0 ? b | 0x80 : b); if (n === 0) break; }
        client.write(Buffer.concat([Buffer.from([0x32, ...length, topic.length >> 8, topic.length & 0xff]), topic, Buffer.from([0x00, 0x01])]));
        // Well past IoT Hub's 256 KiB limit, far short of what was declared.
        client.write(Buffer.alloc(512 * 1024, 0x64));
        await client.closedWithin(3000);
        assert.deepEqual(client.received.map((p) => p.cmd), ['connack']);
        await assertBystanderUnharmed();
      });
    });

    test('a flood of 2,000 QoS 1 messages gets 2,000 PUBACKs in send order and exactly 2,000 stored events', async () => {
      const d = await createRawDevice(hub, 'flood');
      const client = await connected(hub, d);
      const count = 2000;
      const packets = Array.from({ length: count }, (_, i) => bytesOf(publishPacket(telemetryTopic(d.deviceId), `m${i + 1}`, { messageId: i + 1 })));
      client.write(Buffer.concat(packets));
      const acked: number[] = [];
      while (acked.length < count) acked.push((await client.next('puback', 20_000)).messageId ?? -1);
      assert.deepEqual(acked, Array.from({ length: count }, (_, i) => i + 1), 'PUBACKs out of send order');
      const events = await readEvents(hub, d.deviceId);
      assert.equal(events.length, count);
      assert.deepEqual(events.map((e) => Buffer.from(e.body).toString()), Array.from({ length: count }, (_, i) => `m${i + 1}`));
      client.destroy();
      await assertBystanderUnharmed();
    });

    test('random byte blobs at the TLS port (before and after CONNECT), raw TCP, and the plain port never crash the hub', async () => {
      const seed = 20_240_613;
      const rnd = seededRandom(seed);
      const int = (n: number) => Math.floor(rnd() * n);
      const randomBytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
      const lanes = await Promise.all(Array.from({ length: 8 }, (_, i) => createRawDevice(hub, `fuzz-${i}`)));
      const firstLog = hub.logs.length;

      /** Pure noise, noise behind a plausible fixed header, or a valid packet with a few bytes flipped. */
      const blob = (lane: DeviceCredentials): Buffer => {
        switch (int(3)) {
          case 0: return randomBytes(1 + int(2048));
          case 1: {
            const body = randomBytes(int(128));
            const declared = Math.max(0, Math.min(127, body.length + int(3) - 1)); // right, one short, or one long
            return Buffer.concat([Buffer.from([int(256), declared]), body]);
          }
          default: {
            const valid: mqttPacket.Packet[] = [
              publishPacket(telemetryTopic(lane.deviceId, '%24.mid=1&a=b'), randomBytes(int(100)), { qos: int(2) as 0 | 1, messageId: 1 + int(1000) }),
              { cmd: 'subscribe', messageId: 1 + int(1000), subscriptions: [{ topic: `devices/${lane.deviceId}/messages/devicebound/#`, qos: 1 }] },
              { cmd: 'unsubscribe', messageId: 1 + int(1000), unsubscriptions: ['$iothub/twin/res/#'] },
              publishPacket(`$iothub/twin/PATCH/properties/reported/?$rid=${int(100)}`, '{"a":1}', { qos: 0 }),
              publishPacket('$iothub/twin/GET/?$rid=1', ' ', { qos: 0 }),
              connectPacket(lane),
              { cmd: 'pingreq' },
            ];
            const bytes = Buffer.from(bytesOf(valid[int(valid.length)]));
            for (let flips = 1 + int(5); flips > 0; flips--) bytes[int(bytes.length)] = int(256);
            return bytes;
          }
        }
      };

      /** One connection: optionally CONNECT, throw the blob, FIN, and wait for the hub to close its side. */
      const throwBlob = async (open: () => Promise<RawMqtt>, lane: DeviceCredentials | undefined, bytes: Buffer): Promise<void> => {
        const client = await open();
        if (lane) {
          client.send(connectPacket(lane));
          await client.next('connack').catch(() => undefined); // a concurrent lane of the same device may replace it
        }
        client.write(bytes);
        client.socket.end();
        await client.closedWithin(5000);
      };

      const jobs: (() => Promise<void>)[] = [];
      for (let i = 0; i < 200; i++) {
        const lane = lanes[i % lanes.length];
        const bytes = blob(lane);
        jobs.push(() => throwBlob(() => RawMqtt.tls(hub), i % 2 === 0 ? lane : undefined, bytes));
      }
      for (let i = 0; i < 50; i++) {
        const bytes = randomBytes(1 + int(1024)); // not TLS at all, at the TLS port
        jobs.push(() => throwBlob(() => RawMqtt.tcp(HOST, hub.info.ports.mqtts), undefined, bytes));
      }
      for (let i = 0; i < 300; i++) {
        const lane = lanes[i % lanes.length];
        const bytes = blob(lane);
        jobs.push(() => throwBlob(() => RawMqtt.tcp(HOST, PLAIN_PORT), i % 2 === 0 ? lane : undefined, bytes));
      }
      // Eight workers, each on its own lane (device), so lanes rarely replace each other.
      let next = 0;
      await Promise.all(Array.from({ length: 8 }, async () => {
        while (next < jobs.length) {
          const i = next++;
          await jobs[i]().catch((err: Error) => { throw new Error(`seed ${seed}, blob ${i}: ${err.message}`); });
        }
      }));

      assert.equal(hub.process.exitCode, null, 'the hub process exited');
      const fresh = await createRawDevice(hub, 'after-fuzz');
      const client = await connected(hub, fresh);
      await publishAcked(client, fresh.deviceId, 1, 'alive');
      assert.equal((await readEvents(hub, fresh.deviceId)).length, 1);
      client.destroy();
      await assertBystanderUnharmed();
      const errors = hub.logs.slice(firstLog).filter((l) => { try { return (JSON.parse(l) as { level: number }).level >= 50; } catch { return true; } });
      assert.deepEqual(errors, [], 'client garbage must not produce error-level logs (a human must act) or non-JSON output');
    });

    describe('MQTT over WebSocket', () => {
      test('mqtt.js over wss://HOST/$iothub/websocket (subprotocol mqtt) publishes telemetry', async () => {
        const d = await createRawDevice(hub, 'over-ws');
        const client = await mqtt.connectAsync(`wss://${HOST}:${hub.info.ports.https}/$iothub/websocket`, {
          clientId: d.deviceId, username: `${d.hostName}/${d.deviceId}/?api-version=2021-04-12`, password: deviceToken(d),
          protocolVersion: 4, clean: false, reconnectPeriod: 0, ca: readFileSync(hub.info.caFile, 'utf8'),
        });
        try {
          // For QoS 1, mqtt.js resolves once the PUBACK is in.
          await client.publishAsync(telemetryTopic(d.deviceId, '%24.mid=ws-1'), 'via websocket', { qos: 1 });
          const events = await readEvents(hub, d.deviceId);
          assert.equal(events.length, 1);
          assert.equal(Buffer.from(events[0].body).toString(), 'via websocket');
          assert.equal(events[0].properties['$.message-id'], 'ws-1');
        } finally {
          await client.endAsync();
        }
      });

      test('a WebSocket upgrade on another path gets 404', async () => {
        const ws = new WebSocket(`wss://${HOST}:${hub.info.ports.https}/$iothub/not-websocket`, 'mqtt', { ca: readFileSync(hub.info.caFile, 'utf8') });
        const status = await new Promise<number>((resolve, reject) => {
          ws.once('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); ws.terminate(); });
          ws.once('open', () => { ws.terminate(); reject(new Error('the upgrade on a foreign path was accepted')); });
          ws.once('error', (err) => reject(err));
        });
        assert.equal(status, 404);
      });
    });

    test('the bystander stayed connected through every attack, and the hub is alive', async () => {
      await assertBystanderUnharmed();
      const stored = await readEvents(hub, bystanderCreds.deviceId);
      assert.equal(stored.length, bystanderPacketId - 1, 'every bystander message stored once');
    });
  });
});
