/**
 * The original MqttWk HTTP API, unchanged for its callers and without its defects: a QoS 1 send
 * reaches mosquitto_sub, the message is UTF-8, retain really retains, DUP is not put on QoS 0,
 * errors are {"code":-1}, and /info lists each session once with its whole client id.
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { scoped, uid } from "../helpers/broker.ts";
import { hostArgs, ignoreWithoutCli, mosquittoSub } from "../helpers/cli.ts";
import { connectMqttJs } from "../helpers/mqttjs.ts";
import { call, startHttpApp } from "./helpers.ts";

const OPEN = ["--mqttwk.http.api-keys-file=/nonexistent/api-keys"];

Deno.test({
  name: "/open/api/mqttwk/send with QoS 1 reaches mosquitto_sub at QoS 1, UTF-8 intact",
  ignore: ignoreWithoutCli(),
  async fn() {
    await scoped(async (defer) => {
      const { app, base, host, port } = await startHttpApp(OPEN);
      defer(() => app.stop());
      const topic = `/topic/mqttwk/${uid()}`;
      const sub = await mosquittoSub([...hostArgs(host, port), "-t", topic, "-q", "1"]);
      defer(() => sub.stop());
      const res = await call(base, "/open/api/mqttwk/send", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ topic, message: "wizzer 你好 ✓", qos: 1, retain: false, dup: true }),
      });
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, { code: 0, msg: "success" });
      const [m] = await sub.waitForCount(1);
      assert.equal(m.payload, "wizzer 你好 ✓");
      assert.equal(m.qos, 1);
    });
  },
});

Deno.test("/open/api/mqttwk/send with retain stores the message for later subscribers", async () => {
  await scoped(async (defer) => {
    const { app, base, url } = await startHttpApp(OPEN);
    defer(() => app.stop());
    const topic = `legacy/retained/${uid()}`;
    // Any method works, as in the original; GET with query parameters too.
    const res = await call(
      base,
      `/open/api/mqttwk/send?topic=${encodeURIComponent(topic)}&message=kept&qos=2&retain=true`,
    );
    assert.deepEqual(res.body, { code: 0, msg: "success" });
    const late = await connectMqttJs(url, { clientId: uid("late") });
    defer(() => late.close());
    await late.subscribe(topic, 2);
    const m = await late.inbox.waitFor((x) => x.topic === topic);
    assert.equal(m.payload, "kept");
    assert.equal(m.retain, true);
    assert.equal(m.qos, 2);
    assert.equal(m.dup, false);
  });
});

Deno.test("/open/api/mqttwk/send errors answer code -1 with a message", async () => {
  await scoped(async (defer) => {
    const { app, base } = await startHttpApp(OPEN);
    defer(() => app.stop());
    const cases: [unknown, RegExp][] = [
      [{ message: "x" }, /topic is required/],
      [{ topic: "a/#", message: "x" }, /invalid topic name/],
      [{ topic: "a", message: "x", qos: 5 }, /qos must be 0, 1 or 2/],
      [{ topic: "$SYS/x", message: "x" }, /\$SYS/],
    ];
    for (const [body, re] of cases) {
      const r = await call(base, "/open/api/mqttwk/send", {
        method: "PUT",
        body: JSON.stringify(body),
      });
      assert.ok(r.status >= 400 && r.status < 500, `${r.status}`);
      assert.equal(r.body.code, -1);
      assert.match(r.body.msg, re);
    }
  });
});

Deno.test("/open/api/mqttwk/info lists each session once, with full client ids and topics", async () => {
  await scoped(async (defer) => {
    const { app, base, url } = await startHttpApp(OPEN);
    defer(() => app.stop());
    const id = `pc:web:${uid()}`;
    const c = await connectMqttJs(url, { clientId: id });
    defer(() => c.close());
    await c.subscribe(["a/b", "c/#"], 1);
    const res = await call(base, "/open/api/mqttwk/info", { method: "POST" });
    assert.equal(res.body.code, 0);
    assert.equal(res.body.msg, "");
    assert.equal(res.body.data.total, 1);
    assert.equal(res.body.data.list[0].clientId, id);
    assert.deepEqual(res.body.data.list[0].topics.sort(), ["a/b", "c/#"]);
  });
});

Deno.test("a QoS 1 /send answered success is not lost: an offline session gets it after a restart", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mqttwk-http-durable-" });
  await scoped(async (defer) => {
    defer(() => Deno.remove(dir, { recursive: true }));
    const flags = [...OPEN, "--persistence", "sqlite", `--data-dir=${dir}`];
    const id = uid("durable");
    const first = await startHttpApp(flags);
    const c = await connectMqttJs(first.url, { clientId: id, clean: false });
    await c.subscribe("durable/#", 1);
    await c.close();
    const res = await call(first.base, "/open/api/mqttwk/send", {
      method: "POST",
      body: JSON.stringify({ topic: "durable/x", message: "kept across a restart", qos: 1 }),
    });
    assert.deepEqual(res.body, { code: 0, msg: "success" });
    await first.app.stop();

    const second = await startHttpApp(flags);
    defer(() => second.app.stop());
    // The handler is in place before CONNECT: the queued message follows the CONNACK at once.
    const back = mqtt.connect(second.url, { clientId: id, clean: false, reconnectPeriod: 0 });
    defer(() => back.endAsync());
    const m = await new Promise<{ topic: string; payload: string; qos: number }>((resolve) =>
      back.on(
        "message",
        (topic, payload, packet) =>
          resolve({ topic, payload: payload.toString(), qos: packet.qos }),
      )
    );
    assert.equal(m.topic, "durable/x");
    assert.equal(m.payload, "kept across a restart");
    assert.equal(m.qos, 1);
  });
});
