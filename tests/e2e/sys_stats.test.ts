/**
 * The broker's `$SYS` tree (Mosquitto's names and formats) against an in-process app publishing
 * every second: real mosquitto_sub and mqtt.js subscribers get every topic at once (retained),
 * then updates each interval; `#` never sees them; the ACL decides who may read them; interval 0
 * publishes nothing; a bad `sys-interval` stops start-up naming the key.
 */
import assert from "node:assert/strict";
import { appConfig, type RunningApp, startApp } from "../helpers/app.ts";
import { scoped, uid } from "../helpers/broker.ts";
import { hostArgs, ignoreWithoutCli, mosquittoSub } from "../helpers/cli.ts";
import { connackCode, passwordFile, writeTemp } from "../auth/e2e_helpers.ts";
import { connectMqttJs } from "../helpers/mqttjs.ts";
import { MQTTWK_VERSION } from "../../src/version.ts";

const EVERY_SECOND = "--mqttwk.broker.sys-interval=1";

/** Every topic Mosquitto 2.0 publishes that MqttWk publishes too (heap included: Deno has one). */
const TOPICS = [
  "version",
  "uptime",
  "clients/total",
  "clients/connected",
  "clients/active",
  "clients/disconnected",
  "clients/inactive",
  "clients/maximum",
  "clients/expired",
  "messages/received",
  "messages/sent",
  "messages/inflight",
  "messages/stored",
  "store/messages/count",
  "store/messages/bytes",
  "subscriptions/count",
  "retained messages/count",
  "publish/messages/received",
  "publish/messages/sent",
  "publish/messages/dropped",
  "bytes/received",
  "bytes/sent",
  "heap/current",
  "heap/maximum",
  ...[
    "messages/received",
    "messages/sent",
    "publish/dropped",
    "publish/received",
    "publish/sent",
    "bytes/received",
    "bytes/sent",
    "sockets",
    "connections",
  ].flatMap((s) => ["1min", "5min", "15min"].map((w) => `load/${s}/${w}`)),
].map((t) => `$SYS/broker/${t}`);

async function withApp(flags: string[], fn: (a: RunningApp) => Promise<void>): Promise<void> {
  const a = await startApp(flags);
  try {
    await fn(a);
  } finally {
    await a.app.stop();
  }
}

const seconds = (m: { payload: string } | undefined) =>
  Number(/^(\d+) seconds$/.exec(m?.payload ?? "")?.[1]);

Deno.test({
  name: "mosquitto_sub on $SYS/# gets every Mosquitto topic at once, retained, then updates",
  ignore: ignoreWithoutCli(),
  fn: () =>
    withApp([EVERY_SECOND], async (a) => {
      // Traffic first, so the counters have something to count.
      await scoped(async (defer) => {
        const c = await connectMqttJs(a.url, { clientId: uid("sys-traffic") });
        defer(c.close);
        await c.subscribe("traffic/#", 1);
        for (let i = 0; i < 20; i++) await c.publish("traffic/x", "0123456789", { qos: 1 });
        await c.publish("traffic/kept", "kept", { qos: 1, retain: true });
        await c.inbox.waitForCount(21);
      });
      // The broker publishes at once on start: the retained values are there before any tick.
      const sub = await mosquittoSub([...hostArgs(a.host, a.port), "-t", "$SYS/#", "-q", "0"]);
      try {
        const first = await sub.waitForCount(TOPICS.length, 5000);
        const got = new Map(first.map((m) => [m.topic, m]));
        const missing = TOPICS.filter((t) => !got.has(t));
        assert.deepEqual(missing, [], `missing: ${missing.join(", ")}`);
        assert.ok(first.every((m) => m.retain), "the current values arrive retained");
        const v = (t: string) => got.get(`$SYS/broker/${t}`)!.payload;
        assert.equal(v("version"), `mqttwk version ${MQTTWK_VERSION}`);
        assert.match(v("uptime"), /^\d+ seconds$/);
        assert.match(v("load/messages/received/1min"), /^\d+\.\d\d$/);
        for (const t of TOPICS) {
          if (!t.includes("/load/") && !t.endsWith("/version") && !t.endsWith("/uptime")) {
            assert.match(got.get(t)!.payload, /^\d+$/, t);
          }
        }
        console.log(
          `first ${first.length} $SYS messages: ` +
            first.slice(0, 24).map((m) => `${m.topic.slice(12)}=${m.payload}`).join(", "),
        );
        // The retained values are from the last round; the traffic shows by the next one.
        const atLeast = (t: string, n: number) =>
          waitForMessage(sub.messages, (m) =>
            m.topic === `$SYS/broker/${t}` && Number(m.payload) >= n, 5000);
        await atLeast("publish/messages/received", 21);
        await atLeast("publish/messages/sent", 21);
        await atLeast("messages/received", 21 + 21 + 2); // PUBLISHes, PUBACKs, CONNECT, SUBSCRIBE
        await atLeast("retained messages/count", 1);
        await atLeast("bytes/received", 21 * 10);
        await atLeast("bytes/sent", 21 * 10);
        await atLeast("clients/maximum", 1);
        // A live update (not retained) of the uptime, larger than the retained one.
        const before = seconds(got.get("$SYS/broker/uptime"));
        const upd = await waitForMessage(
          sub.messages,
          (m) =>
            m.topic === "$SYS/broker/uptime" && !m.retain && seconds(m) > before,
          5000,
        );
        assert.ok(seconds(upd) > before);
        // The 1 min message load moves once traffic was seen.
        const load = await waitForMessage(
          sub.messages,
          (m) =>
            m.topic === "$SYS/broker/load/publish/received/1min" && Number(m.payload) > 0,
          5000,
        );
        console.log(`live update: uptime ${seconds(upd)} s; ${load.topic} = ${load.payload}`);
      } finally {
        await sub.stop();
      }
    }),
});

/** Polls a growing message list (mosquitto_sub's) for one matching `pred`. */
async function waitForMessage<T>(list: T[], pred: (m: T) => boolean, timeoutMs: number) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const m = list.find(pred);
    if (m !== undefined) return m;
    if (Date.now() > end) throw new Error(`no matching message in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test("an MQTT 5.0 subscriber to $SYS/# gets the values and updates; a '#' subscriber gets none", () =>
  withApp([EVERY_SECOND], async (a) => {
    await scoped(async (defer) => {
      const all = await connectMqttJs(a.url, { clientId: uid("hash") });
      defer(all.close);
      await all.subscribe("#", 0);
      await all.subscribe("+/broker/uptime", 0);
      const sys = await connectMqttJs(a.url, { clientId: uid("sys5"), protocolVersion: 5 });
      defer(sys.close);
      await sys.subscribe("$SYS/broker/clients/+", 0);
      await sys.subscribe("$SYS/broker/uptime", 0);
      const retained = await sys.inbox.waitFor((m) => m.topic === "$SYS/broker/uptime");
      assert.equal(retained.retain, true);
      const connected = await sys.inbox.waitFor(
        (m) => m.topic === "$SYS/broker/clients/connected" && Number(m.payload) === 2,
        5000,
      );
      // Two updates of the uptime: the '#' subscriber had two chances to receive one.
      await sys.inbox.waitForCount(3, (m) => m.topic === "$SYS/broker/uptime", 5000);
      await all.sync();
      const dollar = all.inbox.messages.filter((m) => m.topic.startsWith("$"));
      console.log(
        `5.0 subscriber: ${sys.inbox.messages.length} $SYS messages (connected=${connected.payload}); ` +
          `'#' subscriber: ${all.inbox.messages.length} messages, ${dollar.length} on $ topics`,
      );
      assert.deepEqual(dollar, []);
    });
  }));

Deno.test("the ACL decides who may read $SYS: a user without a read rule is refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mqttwk-sys-acl-" });
  const pw = await writeTemp(dir, "passwords", await passwordFile(["ops", "app"]));
  const acl = await writeTemp(
    dir,
    "acl",
    "user ops\ntopic read $SYS/#\n\nuser app\ntopic readwrite app/#\ntopic read #\n",
  );
  try {
    await withApp([
      EVERY_SECOND,
      "--mqttwk.broker.mqtt-password-must=true",
      `--mqttwk.broker.auth.password-file=${pw}`,
      `--mqttwk.broker.auth.acl-file=${acl}`,
      "--mqttwk.broker.auth.failure-delay-max=0",
    ], async (a) => {
      assert.equal(await connackCode(a.url, { username: "ops", password: "wrong" }), 4);
      await scoped(async (defer) => {
        const ops = await connectMqttJs(a.url, { username: "ops", password: "ops-pw" });
        defer(ops.close);
        const app = await connectMqttJs(a.url, { username: "app", password: "app-pw" });
        defer(app.close);
        assert.deepEqual(await ops.subscribe("$SYS/#", 0), [0]);
        const refused = await app.client.subscribeAsync(
          ["$SYS/#", "$SYS/broker/uptime", "app/#"],
          { qos: 0 },
        ).catch((e) => (e as { packet?: { granted?: number[] } }).packet?.granted);
        const codes = Array.isArray(refused)
          ? refused.map((g) => (typeof g === "number" ? g : g.qos))
          : [];
        assert.deepEqual(codes, [0x80, 0x80, 0]);
        await ops.inbox.waitForCount(2, (m) => m.topic === "$SYS/broker/uptime", 5000);
        await app.sync();
        assert.deepEqual(app.inbox.messages.filter((m) => m.topic.startsWith("$")), []);
        console.log(`ops got ${ops.inbox.messages.length} $SYS messages; app's SUBACK ${codes}`);
      });
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sys-interval 0 publishes no $SYS topic at all", () =>
  withApp(["--mqttwk.broker.sys-interval=0"], async (a) => {
    await scoped(async (defer) => {
      const c = await connectMqttJs(a.url, { clientId: uid("sys-off") });
      defer(c.close);
      await c.subscribe("$SYS/#", 0);
      // Retained values would have been written right after the SUBACK, before this answer.
      await c.sync();
      assert.deepEqual(c.inbox.messages, []);
      assert.equal(a.app.broker.retained.size, 0);
      assert.equal(a.app.broker.retained.get("$SYS/broker/version"), null);
    });
  }));

Deno.test("a bad mqttwk.broker.sys-interval stops start-up with an error naming the key", () => {
  for (const bad of ["-1", "ten", "1.5", "100000"]) {
    assert.throws(
      () => appConfig([`--mqttwk.broker.sys-interval=${bad}`]),
      (e: Error) => e.message.includes("mqttwk.broker.sys-interval"),
      bad,
    );
  }
  assert.equal(appConfig([]).sysInterval, 10, "Mosquitto's default");
  assert.equal(appConfig(["--mqttwk.broker.sys-interval=0"]).sysInterval, 0);
});

Deno.test("a single node's $SYS values are not written to the SQLite store: a restart with $SYS off has none", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mqttwk-sys-store-" });
  const store = ["--persistence", "sqlite", `--mqttwk.broker.data-dir=${dir}`];
  try {
    await withApp([...store, EVERY_SECOND], async (a) => {
      await scoped(async (defer) => {
        const c = await connectMqttJs(a.url, { clientId: uid("sys-store") });
        defer(c.close);
        await c.publish("kept/one", "1", { qos: 1, retain: true });
        await c.subscribe("$SYS/broker/uptime", 0);
        await c.inbox.waitFor((m) => m.topic === "$SYS/broker/uptime");
      });
    });
    await withApp([...store, "--mqttwk.broker.sys-interval=0"], async (a) => {
      await scoped(async (defer) => {
        const c = await connectMqttJs(a.url, { clientId: uid("sys-store2") });
        defer(c.close);
        await c.subscribe(["$SYS/#", "kept/#"], 0);
        await c.inbox.waitFor((m) => m.topic === "kept/one");
        await c.sync();
        assert.deepEqual(c.inbox.messages.map((m) => m.topic), ["kept/one"]);
      });
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an offline persistent session shows in clients/disconnected, then in clients/expired", () =>
  withApp([EVERY_SECOND], async (a) => {
    await scoped(async (defer) => {
      const w = await connectMqttJs(a.url, { clientId: uid("sys-clients") });
      defer(w.close);
      await w.subscribe("$SYS/broker/clients/+", 0);
      const v5 = { protocolVersion: 5 as const, clean: false };
      const p = await connectMqttJs(a.url, {
        ...v5,
        clientId: uid("sys-persistent"),
        properties: { sessionExpiryInterval: 2 },
      });
      await p.subscribe("keep/#", 1);
      await p.close();
      const is = (t: string, n: number) => (m: { topic: string; payload: string }) =>
        m.topic === `$SYS/broker/clients/${t}` && Number(m.payload) === n;
      await w.inbox.waitFor(is("disconnected", 1), 5000, "clients/disconnected 1");
      await w.inbox.waitFor(is("expired", 1), 8000, "clients/expired 1");
      // Published only on change: the retained 0, the 1, then 0 again once the session is gone.
      await w.inbox.waitForCount(2, is("disconnected", 0), 5000);
    });
  }));
