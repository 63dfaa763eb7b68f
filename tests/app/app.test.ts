/**
 * The app that main.ts runs, started in-process: real clients over TCP, reload as on SIGHUP,
 * and a stop that really lets go of the port and the store.
 */
import assert from "node:assert/strict";
import { createApp, StartFailed } from "../../src/app/app.ts";
import { connackCode, passwordFile } from "../auth/e2e_helpers.ts";
import { appConfig, logBook, startApp } from "../helpers/app.ts";
import { scoped, uid } from "../helpers/broker.ts";
import { hostArgs, ignoreWithoutCli, mosquittoPub, mosquittoSub } from "../helpers/cli.ts";
import { DB_FILE } from "../helpers/durability_broker.ts";
import { connectMqttJs } from "../helpers/mqttjs.ts";

Deno.test("an in-process app carries a QoS 1 message between two mqtt.js clients", async () => {
  await scoped(async (defer) => {
    const { app, url, log } = await startApp();
    defer(() => app.stop());
    assert.match(log.text(), /listening tcp 127\.0\.0\.1:\d+/);
    assert.match(log.text(), /mqttwk \S+ started \(node \S+, persistence memory, connection limit/);

    const sub = await connectMqttJs(url, { clientId: uid("sub") });
    defer(() => sub.close());
    await sub.subscribe("app/+/reading", 1);
    const pub = await connectMqttJs(url, { clientId: uid("pub") });
    defer(() => pub.close());
    await pub.publish("app/kitchen/reading", "21.5", { qos: 1 });

    const got = await sub.inbox.waitFor((m) => m.topic === "app/kitchen/reading");
    assert.equal(got.payload, "21.5");
    assert.equal(got.qos, 1);
    assert.equal(app.broker.stats.connections, 2);
    assert.ok(app.broker.stats.messagesIn >= 1);
    assert.deepEqual(app.health(), { status: "ok", degraded: [], connections: 2 });
  });
});

Deno.test({
  name: "mosquitto_pub and mosquitto_sub exchange a message through an in-process app",
  ignore: ignoreWithoutCli(),
  async fn() {
    await scoped(async (defer) => {
      const { app, host, port } = await startApp();
      defer(() => app.stop());
      const topic = `app/cli/${uid()}`;
      const sub = await mosquittoSub([...hostArgs(host, port), "-t", topic, "-q", "1", "-C", "1"]);
      defer(() => sub.stop());
      await mosquittoPub([...hostArgs(host, port), "-t", topic, "-q", "1", "-m", "hello cli"]);
      const [msg] = await sub.waitForCount(1);
      assert.equal(msg.topic, topic);
      assert.equal(msg.payload, "hello cli");
      assert.equal(msg.qos, 1);
    });
  },
});

const ACL = "user watcher\ntopic read #\n\nuser bob\ntopic write bob/#\n";

Deno.test("reload() re-reads the password and ACL files, as SIGHUP does", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mqttwk-app-reload-" });
  await scoped(async (defer) => {
    defer(() => Deno.remove(dir, { recursive: true }));
    const pwFile = `${dir}/passwords`;
    const aclFile = `${dir}/acl`;
    await Deno.writeTextFile(pwFile, await passwordFile(["watcher", "bob"]));
    await Deno.writeTextFile(aclFile, ACL);
    const { app, url, log } = await startApp([
      "--mqttwk.broker.mqtt-password-must=true",
      `--mqttwk.broker.auth.password-file=${pwFile}`,
      `--mqttwk.broker.auth.acl-file=${aclFile}`,
      "--mqttwk.broker.auth.failure-delay-max=0",
    ]);
    defer(() => app.stop());
    const login = async (user: string) => {
      const c = await connectMqttJs(url, {
        clientId: uid(user),
        username: user,
        password: `${user}-pw`,
      });
      defer(() => c.close());
      return c;
    };
    const watcher = await login("watcher");
    await watcher.subscribe("#", 1);
    const bob = await login("bob");

    // Under the first files: erin is unknown and bob may not write to news/.
    assert.equal(await connackCode(url, { username: "erin", password: "erin-pw" }), 4);
    await bob.publish("news/1", "before", { qos: 1 });
    await bob.publish("bob/marker", "1", { qos: 1 });
    await watcher.inbox.waitFor((m) => m.topic === "bob/marker");
    assert.equal(watcher.inbox.on("news/1").length, 0);

    await Deno.writeTextFile(aclFile, ACL + "topic write news/#\n");
    await Deno.writeTextFile(pwFile, await passwordFile(["watcher", "bob", "erin"]));
    assert.equal(await app.reload(), true);
    assert.match(log.text(), /reloaded password-file, acl/);

    await bob.publish("news/2", "after", { qos: 1 });
    await watcher.inbox.waitFor((m) => m.topic === "news/2");
    assert.equal(await connackCode(url, { username: "erin", password: "erin-pw" }), 0);
  });
});

Deno.test("reload() keeps the previous rules when the new ACL cannot be read", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mqttwk-app-reload-bad-" });
  await scoped(async (defer) => {
    defer(() => Deno.remove(dir, { recursive: true }));
    const aclFile = `${dir}/acl`;
    await Deno.writeTextFile(aclFile, "topic read #\n");
    const { app, log } = await startApp([`--mqttwk.broker.auth.acl-file=${aclFile}`]);
    defer(() => app.stop());
    await Deno.remove(aclFile);
    assert.equal(await app.reload(), false);
    assert.match(log.text(), /ERROR reload failed, keeping the previous settings: /);
  });
});

Deno.test(
  "stop() lets go of the port and the store: a second app on the same port and data dir starts",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "mqttwk-app-restart-" });
    await scoped(async (defer) => {
      defer(() => Deno.remove(dir, { recursive: true }));
      const sqlite = ["--persistence", "sqlite", "--data-dir", dir];
      const first = await startApp(sqlite);
      const pub = await connectMqttJs(first.url, { clientId: uid("pub") });
      await pub.publish("app/state", "kept", { qos: 1, retain: true });
      await pub.close();
      const nodeId = first.app.nodeId;
      await first.app.stop();
      assert.match(first.log.text(), /INFO stopped$/m);
      assert.deepEqual(first.app.listening(), []);
      // A closed SQLite store has checkpointed and removed its write-ahead log.
      await assert.rejects(Deno.stat(`${dir}/${DB_FILE}-wal`), Deno.errors.NotFound);

      const second = await startApp([...sqlite, "--port", String(first.port)]);
      defer(() => second.app.stop());
      assert.equal(second.port, first.port);
      assert.equal(second.app.nodeId, nodeId, "the node id is kept in the data dir");
      const sub = await connectMqttJs(second.url, { clientId: uid("sub") });
      defer(() => sub.close());
      await sub.subscribe("app/state", 1);
      const got = await sub.inbox.waitFor((m) => m.topic === "app/state");
      assert.equal(got.payload, "kept");
      assert.equal(got.retain, true);
    });
  },
);

Deno.test("start() fails with StartFailed, logs why and leaves nothing open", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mqttwk-app-fail-" });
  try {
    const log = logBook();
    const app = createApp(
      appConfig([
        "--persistence",
        "sqlite",
        "--data-dir",
        dir,
        "--mqttwk.broker.auth.acl-file",
        `${dir}/missing-acl`,
      ]),
      { log },
    );
    await assert.rejects(app.start(), StartFailed);
    assert.match(log.text(), /ERROR cannot start: .*missing-acl/);
    assert.deepEqual(app.listening(), []);
    await app.stop();
    assert.doesNotMatch(log.text(), /INFO stopped/, "an app that never ran does not stop");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a port already taken fails start() with the listener named, and the process lives on", async () => {
  await scoped(async (defer) => {
    const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    defer(() => taken.close());
    const log = logBook();
    const app = createApp(appConfig(["--port", String(taken.addr.port)]), { log });
    await assert.rejects(app.start(), StartFailed);
    assert.match(log.text(), new RegExp(`ERROR cannot listen: tcp on 127\\.0\\.0\\.1: .*`));
    assert.deepEqual(app.listening(), []);
    // A second app on a free port starts in the same process: nothing was torn down with it.
    const { app: other } = await startApp();
    defer(() => other.stop());
    assert.equal(other.listening().length, 1);
  });
});
