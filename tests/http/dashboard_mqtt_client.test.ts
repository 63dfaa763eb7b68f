/**
 * The dashboard's own MQTT client (src/http/dashboard/mqtt_client.js, shipped to browsers) run
 * in Deno against the broker's real WebSocket listener, talking to mqtt.js on TCP; plus its
 * framing functions on their own.
 */
import assert from "node:assert/strict";
import { createApp } from "../../src/app/app.ts";
import { appConfig, logBook } from "../helpers/app.ts";
import { scoped, uid } from "../helpers/broker.ts";
import { connectMqttJs } from "../helpers/mqttjs.ts";
import { formatHash, hashPassword } from "../../src/auth/password_file.ts";
import {
  decodeLength,
  encodeLength,
  MqttClient,
  PacketReader,
} from "../../src/http/dashboard/mqtt_client.js";

/** An in-process broker with TCP and ws:// listeners on free ports. */
async function brokerWithWs(defer: (f: () => unknown) => void, flags: string[] = []) {
  const log = logBook();
  const app = createApp(
    appConfig([
      "--mqttwk.broker.websocket-enabled=true",
      "--mqttwk.broker.websocket-port=0",
      ...flags,
    ]),
    { log },
  );
  await app.start();
  defer(() => app.stop());
  const tcp = Number((await log.waitFor(/listening tcp \S+:(\d+)/)).match(/:(\d+)/)![1]);
  const ws = (await log.waitFor(/listening ws \S+/)).match(/listening ws \S+:(\d+)(\/\S*)/)!;
  return { app, log, tcpUrl: `mqtt://127.0.0.1:${tcp}`, wsUrl: `ws://127.0.0.1:${ws[1]}${ws[2]}` };
}

Deno.test("the remaining length varint round-trips at every size boundary", () => {
  for (const n of [0, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, 268_435_455]) {
    const bytes = new Uint8Array(encodeLength(n));
    assert.deepEqual(decodeLength(bytes, 0), { value: n, size: bytes.length });
  }
  assert.equal(decodeLength(new Uint8Array([0x80]), 0), null);
  assert.throws(() => decodeLength(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x01]), 0));
  assert.throws(() => encodeLength(268_435_456));
});

Deno.test("packets split across and joined within WebSocket messages are read whole", () => {
  const r = new PacketReader();
  const ping = [0xd0, 0x00];
  const suback = [0x90, 0x03, 0x00, 0x01, 0x01];
  assert.deepEqual(r.push(new Uint8Array([...ping, suback[0]])).length, 1);
  assert.deepEqual(r.push(new Uint8Array(suback.slice(1, 3))), []);
  const got = r.push(new Uint8Array([...suback.slice(3), ...ping]));
  assert.deepEqual(got.map((p) => p.type), [9, 13]);
  assert.deepEqual([...got[0].body], [0x00, 0x01, 0x01]);
  assert.throws(() => r.push(new Uint8Array([0x30, 0xff, 0xff, 0xff, 0x7f])), /too big/);
});

Deno.test("the dashboard client publishes and receives UTF-8 at QoS 0, 1 and 2 via ws://", () =>
  scoped(async (defer) => {
    const { tcpUrl, wsUrl } = await brokerWithWs(defer);
    const topic = uid("dash/panel");
    const other = await connectMqttJs(tcpUrl);
    defer(() => other.close());
    await other.subscribe(`${topic}/#`, 2);

    const panel = new MqttClient(wsUrl, { clientId: uid("panel"), keepalive: 10 });
    const got: { topic: string; payload: string; qos: number }[] = [];
    const waiters: (() => void)[] = [];
    panel.on("message", (m: { topic: string; payload: Uint8Array; qos: number }) => {
      got.push({ topic: m.topic, payload: new TextDecoder().decode(m.payload), qos: m.qos });
      waiters.splice(0).forEach((w) => w());
    });
    assert.deepEqual(await panel.connect(), { sessionPresent: false });
    defer(() => panel.end());
    assert.equal(await panel.subscribe(`${topic}/in`, 2), 2);

    for (const qos of [0, 1, 2] as const) {
      await panel.publish(`${topic}/out`, `grüße ${qos} ✓`, { qos });
      const m = await other.inbox.waitFor((x) => x.payload === `grüße ${qos} ✓`);
      assert.equal(m.qos, qos);
      await other.publish(`${topic}/in`, `back ${qos} ✓`, { qos });
      while (!got.some((x) => x.payload === `back ${qos} ✓`)) {
        await new Promise<void>((res) => waiters.push(res));
      }
      assert.equal(got.find((x) => x.payload === `back ${qos} ✓`)!.qos, qos);
    }
    await panel.end();
    assert.equal(panel.connected, false);
  }));

Deno.test("the dashboard client logs in with a password, is refused with a wrong one", () =>
  scoped(async (defer) => {
    const dir = await Deno.makeTempDir({ prefix: "mqttwk-panel-" });
    defer(() => Deno.remove(dir, { recursive: true }));
    const pwFile = `${dir}/passwords`;
    await Deno.writeTextFile(
      pwFile,
      `alice:${formatHash(await hashPassword("wonderland", 1000))}\n`,
    );
    const { wsUrl } = await brokerWithWs(defer, [
      "--mqttwk.broker.mqtt-password-must=true",
      `--mqttwk.broker.auth.password-file=${pwFile}`,
      "--mqttwk.broker.auth.failure-delay-max=0.05",
    ]);
    const wrong = new MqttClient(wsUrl, { clientId: uid("p"), username: "alice", password: "x" });
    await assert.rejects(wrong.connect(), /connection refused: bad user name or password/);
    const right = new MqttClient(wsUrl, {
      clientId: uid("p"),
      username: "alice",
      password: "wonderland",
    });
    await right.connect();
    defer(() => right.end());
    assert.equal(right.connected, true);
  }));

Deno.test("the dashboard client says so when the broker closes its connection", () =>
  scoped(async (defer) => {
    const { wsUrl } = await brokerWithWs(defer);
    // A second connection with the same client id takes the session over and the broker
    // closes the first one.
    const id = uid("panel");
    const first = new MqttClient(wsUrl, { clientId: id });
    await first.connect();
    const closed = new Promise<{ reason: string }>((res) => first.on("close", res));
    const second = new MqttClient(wsUrl, { clientId: id });
    await second.connect();
    defer(() => second.end());
    assert.equal((await closed).reason, "connection closed by the broker");
    assert.equal(first.connected, false);
    await assert.rejects(first.publish("x", "y", { qos: 1 }), /not connected/);
  }));
