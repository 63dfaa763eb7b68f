/**
 * The admin REST API against an in-process app over real sockets, with mqtt.js and mosquitto
 * clients: clients, kick, sessions, subscriptions, retained, publish (5.0 properties), bad input.
 */
import assert from "node:assert/strict";
import { scoped, uid } from "../helpers/broker.ts";
import { connectMqttJs } from "../helpers/mqttjs.ts";
import { call, startHttpApp } from "./helpers.ts";

const OPEN = ["--mqttwk.http.api-keys-file=/nonexistent/api-keys"];

Deno.test("clients are listed with their details and filters, and an admin can kick one", async () => {
  await scoped(async (defer) => {
    const { app, base, url, log } = await startHttpApp(OPEN);
    defer(() => app.stop());
    const id = uid("api-client");
    const c5 = await connectMqttJs(url, { clientId: id, protocolVersion: 5, username: "u1" });
    defer(() => c5.close());
    await c5.subscribe("sensors/+/temp", 1);
    const other = await connectMqttJs(url, { clientId: uid("other") });
    defer(() => other.close());

    const list = await call(base, `/api/v1/clients?prefix=${encodeURIComponent(id)}`);
    assert.equal(list.status, 200);
    assert.equal(list.body.total, 1);
    const item = list.body.items[0];
    assert.equal(item.clientId, id);
    assert.equal(item.username, "u1");
    assert.equal(item.protocolVersion, 5);
    assert.equal(item.listener, "tcp");
    assert.equal(item.subscriptions, 1);
    assert.equal(item.node, app.nodeId);
    assert.match(item.address, /^127\.0\.0\.1:\d+$/);
    assert.equal((await call(base, "/api/v1/clients?protocol=4")).body.total, 1);
    assert.equal((await call(base, "/api/v1/clients?user=u1")).body.total, 1);
    assert.equal((await call(base, "/api/v1/clients?limit=1&offset=1")).body.items.length, 1);
    assert.equal((await call(base, "/api/v1/clients?protocol=9")).status, 400);
    assert.equal((await call(base, "/api/v1/clients?limit=0")).status, 400);

    const one = await call(base, `/api/v1/clients/${encodeURIComponent(id)}`);
    assert.equal(one.status, 200);
    assert.equal(one.body.keepalive, 30);
    assert.deepEqual(one.body.subscriptions, [{
      filter: "sensors/+/temp",
      qos: 1,
      noLocal: false,
      retainAsPublished: false,
      retainHandling: 0,
      identifier: null,
    }]);

    const subs = await call(base, `/api/v1/subscriptions?clientId=${encodeURIComponent(id)}`);
    assert.deepEqual(subs.body.items.map((s: { filter: string }) => s.filter), ["sensors/+/temp"]);
    const byFilter = await call(
      base,
      `/api/v1/subscriptions?filter=${encodeURIComponent("sensors/+/temp")}`,
    );
    assert.equal(byFilter.body.total, 1);

    // Kicked: a 5.0 client hears DISCONNECT 0x98 Administrative action.
    const reason = new Promise<number | undefined>((resolve) =>
      c5.client.on("disconnect", (p) => resolve(p.reasonCode))
    );
    const kick = await call(base, `/api/v1/clients/${encodeURIComponent(id)}`, {
      method: "DELETE",
    });
    assert.deepEqual(kick.body, { disconnected: true });
    assert.equal(await reason, 0x98);
    assert.equal((await call(base, `/api/v1/clients/${encodeURIComponent(id)}`)).status, 404);
    assert.equal(
      (await call(base, `/api/v1/clients/${encodeURIComponent(id)}`, { method: "DELETE" })).status,
      404,
    );
    await log.waitFor(/audit: user "anonymous" \(open\) .*DELETE .* -> 200/);
  });
});

Deno.test("offline persistent sessions are listed and can be deleted; the audit line escapes ids", async () => {
  await scoped(async (defer) => {
    const { app, base, url, log } = await startHttpApp(OPEN);
    defer(() => app.stop());
    const id = uid("persist");
    const c = await connectMqttJs(url, { clientId: id, clean: false });
    await c.subscribe("keep/#", 1);
    await c.close();
    const offline = await call(base, "/api/v1/sessions?connected=false");
    const s = offline.body.items.find((x: { clientId: string }) => x.clientId === id);
    assert.ok(s, JSON.stringify(offline.body));
    assert.equal(s.connected, false);
    assert.equal(s.subscriptions, 1);
    assert.ok(s.expiryInterval > 0);
    assert.equal((await call(base, "/api/v1/sessions?connected=maybe")).status, 400);

    const del = await call(base, `/api/v1/sessions/${encodeURIComponent(id)}`, {
      method: "DELETE",
    });
    assert.deepEqual(del.body, { deleted: true });
    assert.equal(app.broker.sessions.has(id), false);
    assert.equal(
      (await call(base, `/api/v1/sessions/${encodeURIComponent(id)}`, { method: "DELETE" })).status,
      404,
    );

    // A connected one is disconnected first, then ended.
    const live = uid("live");
    const lc = await connectMqttJs(url, { clientId: live, clean: false });
    defer(() => lc.close());
    const closed = new Promise<void>((resolve) => lc.client.once("close", () => resolve()));
    const delLive = await call(base, `/api/v1/sessions/${encodeURIComponent(live)}`, {
      method: "DELETE",
    });
    assert.deepEqual(delLive.body, { deleted: true });
    await closed;
    assert.equal(app.broker.sessions.has(live), false);
    assert.equal(
      (await call(base, `/api/v1/sessions?prefix=${encodeURIComponent(live)}`)).body.total,
      0,
    );

    // A client id with a line break cannot forge an audit line: it is logged as \n.
    await call(base, `/api/v1/sessions/${encodeURIComponent("evil\nINFO audit: forged")}`, {
      method: "DELETE",
    });
    const line = await log.waitFor(/audit: .*evil/);
    assert.ok(line.includes("evil%0AINFO"), line);
    assert.ok(!log.lines.some((l) => l.startsWith("INFO audit: forged")));
  });
});

Deno.test("publish carries 5.0 properties, retains, and is refused for $SYS and bad topics", async () => {
  await scoped(async (defer) => {
    const { app, base, url } = await startHttpApp(OPEN);
    defer(() => app.stop());
    const sub = await connectMqttJs(url, { clientId: uid("sub5"), protocolVersion: 5 });
    defer(() => sub.close());
    const got = new Promise<{ topic: string; payload: string; props: Record<string, unknown> }>(
      (resolve) =>
        sub.client.on(
          "message",
          (topic, payload, packet) =>
            resolve({ topic, payload: payload.toString(), props: packet.properties ?? {} }),
        ),
    );
    await sub.subscribe("api/props", 1);
    const res = await call(base, "/api/v1/publish", {
      method: "POST",
      body: JSON.stringify({
        topic: "api/props",
        payload: "héllo ✓",
        qos: 1,
        properties: {
          contentType: "text/plain",
          responseTopic: "api/reply",
          correlationData: btoa("corr"),
          userProperties: { source: "api" },
          messageExpiryInterval: 60,
        },
      }),
    });
    assert.deepEqual(res.body, { ok: true });
    const m = await got;
    assert.equal(m.payload, "héllo ✓");
    assert.equal(m.props.contentType, "text/plain");
    assert.equal(m.props.responseTopic, "api/reply");
    assert.equal(String(m.props.correlationData), "corr");
    assert.deepEqual({ ...(m.props.userProperties as object) }, { source: "api" });

    const bad = async (body: unknown, status: number, re: RegExp) => {
      const r = await call(base, "/api/v1/publish", { method: "POST", body: JSON.stringify(body) });
      assert.equal(r.status, status, JSON.stringify(r.body));
      assert.match(r.body.error, re);
    };
    await bad({ topic: "$SYS/broker/uptime", payload: "1" }, 403, /\$SYS/);
    await bad({ topic: "a/+", payload: "1" }, 400, /invalid topic name/);
    await bad({ payload: "1" }, 400, /"topic" is required/);
    await bad({ topic: "a", qos: 3 }, 400, /"qos" must be an integer from 0 to 2/);
    await bad({ topic: "a", encoding: "hex" }, 400, /encoding/);
    await bad({ topic: "a", properties: { topicAlias: 1 } }, 400, /unknown property "topicAlias"/);
    await bad({ topic: "a", extra: 1 }, 400, /unknown field "extra"/);
    await bad([1, 2], 400, /must be a JSON object/);
  });
});

Deno.test("retained messages are listed, read and deleted; a binary payload comes back as base64", async () => {
  await scoped(async (defer) => {
    const { app, base, url } = await startHttpApp(OPEN);
    defer(() => app.stop());
    const publish = (topic: string, payload: string, encoding = "utf8") =>
      call(base, "/api/v1/publish", {
        method: "POST",
        body: JSON.stringify({ topic, payload, encoding, qos: 1, retain: true }),
      });
    assert.equal((await publish("ret/a", "first")).status, 200);
    assert.equal((await publish("ret/b/c", btoa("\xff\x00\x01"), "base64")).status, 200);
    assert.equal((await publish("other", "x")).status, 200);

    const list = await call(base, `/api/v1/retained?filter=${encodeURIComponent("ret/#")}`);
    assert.equal(list.body.total, 2);
    assert.deepEqual(list.body.items.map((i: { topic: string }) => i.topic), ["ret/a", "ret/b/c"]);
    const bin = await call(base, `/api/v1/retained/${encodeURIComponent("ret/b/c")}`);
    assert.equal(bin.body.encoding, "base64");
    assert.equal(bin.body.payload, btoa("\xff\x00\x01"));
    assert.equal(bin.body.size, 3);
    assert.equal(
      (await call(base, `/api/v1/retained?filter=${encodeURIComponent("a/#/b")}`)).status,
      400,
    );

    // A new subscriber gets it with RETAIN set, until it is deleted.
    const s1 = await connectMqttJs(url, { clientId: uid("r1") });
    defer(() => s1.close());
    await s1.subscribe("ret/a", 1);
    const r = await s1.inbox.waitFor((m) => m.topic === "ret/a");
    assert.equal(r.payload, "first");
    assert.equal(r.retain, true);

    const del = await call(base, `/api/v1/retained/${encodeURIComponent("ret/a")}`, {
      method: "DELETE",
    });
    assert.deepEqual(del.body, { deleted: true });
    assert.equal((await call(base, `/api/v1/retained/${encodeURIComponent("ret/a")}`)).status, 404);
    const s2 = await connectMqttJs(url, { clientId: uid("r2") });
    defer(() => s2.close());
    await s2.subscribe("ret/a", 1);
    await s2.sync();
    assert.equal(s2.inbox.on("ret/a").length, 0);
  });
});

Deno.test("bad requests get clear 4xx answers: bad JSON, oversized body, unknown route, wrong method", async () => {
  await scoped(async (defer) => {
    const { app, base } = await startHttpApp([...OPEN, "--mqttwk.http.max-body=2KiB"]);
    defer(() => app.stop());
    const badJson = await call(base, "/api/v1/publish", { method: "POST", body: "{topic:" });
    assert.equal(badJson.status, 400);
    assert.match(badJson.body.error, /not valid JSON/);
    assert.ok(!/file:\/\/|\n\s+at /.test(badJson.body.error), "no stack trace");
    const big = await call(base, "/api/v1/publish", {
      method: "POST",
      body: JSON.stringify({ topic: "a", payload: "x".repeat(4096) }),
    });
    assert.equal(big.status, 413);
    assert.match(big.body.error, /larger than 2048 bytes/);
    const unknown = await call(base, "/api/v1/nothing");
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error, "no route for /api/v1/nothing");
    const method = await call(base, "/api/v1/status", { method: "PUT" });
    assert.equal(method.status, 405);
    assert.equal(method.headers.get("allow"), "GET");
    const badSeg = await call(base, "/api/v1/clients/%E0%A4%A");
    assert.equal(badSeg.status, 400);
  });
});

Deno.test("a request head that never ends gets 408, one too large 431, one that lies about its body 413", async () => {
  await scoped(async (defer) => {
    const { app, base } = await startHttpApp([
      ...OPEN,
      "--mqttwk.broker.connect-timeout=1",
      "--mqttwk.http.max-body=1KiB",
    ]);
    defer(() => app.stop());
    const port = Number(new URL(base).port);
    const raw = async (send: string) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(new TextEncoder().encode(send));
      let text = "";
      const buf = new Uint8Array(4096);
      for (;;) {
        const n = await conn.read(buf).catch(() => null);
        if (n === null) break;
        text += new TextDecoder().decode(buf.subarray(0, n));
      }
      conn.close();
      return text;
    };
    assert.match(await raw("GET /api/v1/status HTTP/1.1\r\nHost: x\r\n"), /^HTTP\/1\.1 408 /);
    assert.match(await raw(`GET / HTTP/1.1\r\nX: ${"a".repeat(9000)}\r\n\r\n`), /^HTTP\/1\.1 431 /);
    assert.match(
      await raw("POST /api/v1/publish HTTP/1.1\r\nContent-Length: 999999\r\n\r\n"),
      /^HTTP\/1\.1 413 /,
    );
    assert.match(
      await raw("POST /api/v1/publish HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
      /^HTTP\/1\.1 411 /,
    );
    // Two requests on one connection (keep-alive), answered in order.
    const two = await raw(
      "GET /api/v1/whoami HTTP/1.1\r\n\r\nGET /health HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert.equal(two.match(/HTTP\/1\.1 200 OK/g)?.length, 2, two);
  });
});

Deno.test("status and the stats stream report connections; the dashboard is served without traversal", async () => {
  await scoped(async (defer) => {
    const { app, base, url } = await startHttpApp(OPEN);
    defer(() => app.stop());
    const c = await connectMqttJs(url, { clientId: uid("stat") });
    defer(() => c.close());
    const st = await call(base, "/api/v1/status");
    assert.equal(st.body.node, app.nodeId);
    assert.equal(st.body.stats.connections, 1);
    assert.deepEqual(st.body.store, { kind: "memory", healthy: true });
    assert.deepEqual(st.body.kafka, { enabled: false, healthy: true });
    assert.equal(st.body.cluster.enabled, false);
    assert.equal(st.body.cluster.nodes.length, 1);
    assert.equal(st.body.listeners[0].kind, "tcp");
    assert.equal(st.body.listeners[0].port, app.listening()[0].port);

    const res = await fetch(`${base}/api/v1/stats/stream`);
    assert.equal(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!/data: .*\n\n/.test(text)) text += (await reader.read()).value;
    const event = JSON.parse(/data: (.*)\n\n/.exec(text)![1]);
    assert.equal(event.connections, 1);
    assert.equal(typeof event.messagesInPerSec, "number");
    await reader.cancel();

    const page = await fetch(`${base}/`);
    assert.equal(page.headers.get("content-type"), "text/html; charset=utf-8");
    assert.match(await page.text(), /<title>MqttWk/);
    for (
      const evil of [
        "/dashboard/../deno.json",
        "/dashboard/%2e%2e/%2e%2e/deno.json",
        "/dashboard/..%2f..%2fdeno.json",
        "/dashboard/.hidden",
      ]
    ) {
      const r = await fetch(base + evil);
      assert.equal(r.status, 404, evil);
      await r.body?.cancel();
    }
  });
});

Deno.test("POST /api/v1/reload does what SIGHUP does and is audited", async () => {
  await scoped(async (defer) => {
    const { app, base, log } = await startHttpApp(OPEN);
    defer(() => app.stop());
    const r = await call(base, "/api/v1/reload", { method: "POST" });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { reloaded: true });
    await log.waitFor(
      /audit: user "anonymous" \(open\) from 127\.0\.0\.1:\d+: POST "\/api\/v1\/reload" -> 200/,
    );
  });
});
