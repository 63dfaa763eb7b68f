/**
 * MQTT over WebSocket and secure WebSocket: mqtt.js end to end, and a raw WebSocket client for
 * the framing rules (packets split across frames, several packets per frame, text frames, plain
 * HTTP on the WebSocket port).
 */
import assert from "node:assert/strict";
import { encode } from "../../src/codec/encoder.ts";
import { EXTERNAL, scoped, startBroker, uid } from "../helpers/broker.ts";
import { connectMqttJs } from "../helpers/mqttjs.ts";
import { listenerPort, makeCerts } from "../transport/helpers.ts";
import { waitFor } from "../helpers/wait.ts";

const WS = ["--mqttwk.broker.websocket-enabled=true", "--mqttwk.broker.websocket-port=0"];

Deno.test({
  name: "mqtt.js publishes and receives over ws:// and over wss:// trusting the test CA",
  ignore: EXTERNAL,
  fn: () =>
    scoped(async (defer) => {
      const certs = await makeCerts();
      defer(() => Deno.remove(certs.dir, { recursive: true }));
      const broker = await startBroker({
        args: [
          ...WS,
          `--mqttwk.broker.ssl-cert-file=${certs.serverCert}`,
          `--mqttwk.broker.ssl-key-file=${certs.serverKey}`,
          "--mqttwk.broker.ssl-port=0",
          "--mqttwk.broker.wss-port=0",
        ],
      });
      defer(() => broker.stop());
      const wsPort = await listenerPort(broker, "ws");
      const wssPort = await listenerPort(broker, "wss");
      const ca = await Deno.readTextFile(certs.ca);
      const topic = uid("ws");

      const sub = await connectMqttJs(`ws://127.0.0.1:${wsPort}/mqtt`);
      defer(() => sub.close());
      await sub.subscribe(topic, 1);
      const pub = await connectMqttJs(`wss://localhost:${wssPort}/mqtt`, {
        ca,
        rejectUnauthorized: true,
      } as Record<string, unknown>);
      defer(() => pub.close());
      await pub.publish(topic, "via wss", { qos: 1 });
      const m = await sub.inbox.waitFor((x) => x.topic === topic);
      assert.equal(m.payload, "via wss");
      assert.match(broker.logs(), /connected from 127\.0\.0\.1:\d+ via wss/);
      assert.match(broker.logs(), /connected from 127\.0\.0\.1:\d+ via ws /);
    }),
});

/** A raw WebSocket client that collects binary frames and the close event. */
async function rawWs(url: string, protocol = "mqtt") {
  const ws = new WebSocket(url, protocol);
  ws.binaryType = "arraybuffer";
  const frames: Uint8Array[] = [];
  ws.onmessage = (e) => {
    frames.push(new Uint8Array(e.data as ArrayBuffer));
  };
  const closed = new Promise<CloseEvent>((r) => ws.addEventListener("close", (e) => r(e)));
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error(`cannot open ${url}`));
  });
  /** All bytes received so far, once there are at least `n`. */
  const received = () => frames.reduce((s, f) => s + f.length, 0);
  const bytes = (n: number, timeoutMs = 5_000) =>
    waitFor(() => {
      if (received() < n) return false;
      const all = new Uint8Array(received());
      let o = 0;
      for (const f of frames) all.set(f, (o += f.length) - f.length);
      return all;
    }, {
      what: `${n} bytes over the WebSocket`,
      timeout: timeoutMs,
      detail: () => `only ${received()} arrived`,
    });
  return { ws, bytes, closed };
}

Deno.test({
  name: "a packet split across WebSocket frames and two packets in one frame both work",
  ignore: EXTERNAL,
  fn: () =>
    scoped(async (defer) => {
      const broker = await startBroker({ args: WS });
      defer(() => broker.stop());
      const port = await listenerPort(broker, "ws");
      const c = await rawWs(`ws://127.0.0.1:${port}/mqtt`);
      defer(() => c.ws.close());
      assert.equal(c.ws.protocol, "mqtt");
      const topic = uid("frames");
      const connect = encode({
        type: "connect",
        protocolName: "MQTT",
        protocolVersion: 4,
        clean: true,
        keepalive: 30,
        clientId: uid("raw"),
      }, 4);
      const third = Math.ceil(connect.length / 3);
      for (let i = 0; i < connect.length; i += third) c.ws.send(connect.slice(i, i + third));
      const connack = await c.bytes(4);
      assert.deepEqual([...connack.subarray(0, 4)], [0x20, 0x02, 0x00, 0x00]);

      const subscribe = encode({
        type: "subscribe",
        packetId: 1,
        subscriptions: [{ topic, qos: 0 }],
      } as never, 4);
      const publish = encode({
        type: "publish",
        topic,
        payload: new TextEncoder().encode("both in one frame"),
        qos: 0,
        retain: false,
        dup: false,
      } as never, 4);
      const both = new Uint8Array(subscribe.length + publish.length);
      both.set(subscribe);
      both.set(publish, subscribe.length);
      c.ws.send(both);
      const all = await c.bytes(4 + 5 + publish.length);
      assert.deepEqual([...all.subarray(4, 9)], [0x90, 0x03, 0x00, 0x01, 0x00], "SUBACK");
      assert.deepEqual([...all.subarray(9)], [...publish], "the PUBLISH comes back");
    }),
});

Deno.test({
  name: "a text frame closes the WebSocket connection",
  ignore: EXTERNAL,
  fn: () =>
    scoped(async (defer) => {
      const broker = await startBroker({ args: WS });
      defer(() => broker.stop());
      const port = await listenerPort(broker, "ws");
      const c = await rawWs(`ws://127.0.0.1:${port}/mqtt`, "mqttv3.1");
      assert.equal(c.ws.protocol, "mqttv3.1");
      c.ws.send("CONNECT please");
      const ev = await c.closed;
      assert.equal(ev.code, 1003);
      await broker.waitForLog(/sent a text frame; closing/);
    }),
});

Deno.test({
  name: "plain HTTP on the WebSocket port gets 426 at the MQTT path and 404 elsewhere",
  ignore: EXTERNAL,
  fn: () =>
    scoped(async (defer) => {
      const broker = await startBroker({ args: WS });
      defer(() => broker.stop());
      const port = await listenerPort(broker, "ws");
      const t0 = Date.now();
      const r = await fetch(`http://127.0.0.1:${port}/mqtt`, { signal: AbortSignal.timeout(3000) });
      assert.equal(r.status, 426);
      assert.match(await r.text(), /MQTT over WebSocket/);
      const other = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(3000) });
      assert.equal(other.status, 404);
      await other.body?.cancel();
      assert.ok(Date.now() - t0 < 3000);
      const bad = new WebSocket(`ws://127.0.0.1:${port}/mqtt`, "chat");
      const failed = await new Promise<boolean>((r) => {
        bad.onopen = () => r(false);
        bad.onerror = () => r(true);
      });
      assert.ok(failed, "an unknown subprotocol is refused");
    }),
});

Deno.test({
  name: "X-Forwarded-For names the WebSocket client only when the proxy is trusted",
  ignore: EXTERNAL,
  fn: () =>
    scoped(async (defer) => {
      const broker = await startBroker({
        args: [...WS, "--mqttwk.broker.websocket-trusted-proxies=127.0.0.0/8"],
      });
      defer(() => broker.stop());
      const port = await listenerPort(broker, "ws");
      const untrusted = await startBroker({ args: WS });
      defer(() => untrusted.stop());
      const port2 = await listenerPort(untrusted, "ws");
      const headers = { "x-forwarded-for": "198.51.100.7, 127.0.0.1" };
      for (const p of [port, port2]) {
        const c = await connectMqttJs(`ws://127.0.0.1:${p}/mqtt`, { wsOptions: { headers } });
        await c.close();
      }
      await broker.waitForLog(/connected from 198\.51\.100\.7:\d+ via ws/);
      await untrusted.waitForLog(/connected from 127\.0\.0\.1:\d+ via ws/);
      assert.doesNotMatch(untrusted.logs(), /198\.51\.100\.7/);
    }),
});
