/**
 * ACL enforcement over real TCP: publish, subscribe (wildcards), retained delivery, wills, and
 * reloading the ACL and password files on SIGHUP.
 */
import assert from "node:assert/strict";
import { EXTERNAL, scoped, startBroker, uid } from "../helpers/broker.ts";
import { hostArgs, ignoreWithoutCli, mosquittoPub, mosquittoSub } from "../helpers/cli.ts";
import { type Client, connectMqttJs } from "../helpers/mqttjs.ts";
import * as raw from "../helpers/raw.ts";
import { PacketType as T } from "../helpers/raw.ts";
import { brokerPid, connackCode, passwordFile, writeTemp } from "../auth/e2e_helpers.ts";

const USERS = ["alice", "bob", "carol", "watcher"];

const ACL = `# test ACL
user alice
topic readwrite alice/#

user bob
topic read alice/public/#
topic write bob/#

user watcher
topic read #

pattern readwrite sensors/%u/#
`;

Deno.test({
  name: "ACL rules decide who may publish, subscribe, get retained messages and wills",
  ignore: EXTERNAL,
  fn: async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "mqttwk-acl-e2e-" });
    const pwFile = await writeTemp(dir, "passwords", await passwordFile(USERS));
    const aclFile = await writeTemp(dir, "acl", ACL);
    const broker = await startBroker({
      args: [
        "--mqttwk.broker.mqtt-password-must=true",
        `--mqttwk.broker.auth.password-file=${pwFile}`,
        `--mqttwk.broker.auth.acl-file=${aclFile}`,
        "--mqttwk.broker.auth.failure-delay-max=0",
      ],
    });
    const clients: Client[] = [];
    const login = async (user: string) => {
      const c = await connectMqttJs(broker.url, {
        clientId: uid(user),
        username: user,
        password: `${user}-pw`,
      });
      clients.push(c);
      return c;
    };
    /** SUBACK return codes; mqtt.js rejects when one is 0x80, with the SUBACK attached. */
    const subscribe = async (c: Client, subs: Record<string, { qos: 0 | 1 }>) => {
      try {
        return (await c.client.subscribeAsync(subs)).map((g) => g.qos);
      } catch (e) {
        const granted = (e as { packet?: { granted?: number[] } }).packet?.granted;
        if (granted) return granted;
        throw e;
      }
    };
    const grants = (c: Client, filter: string) => subscribe(c, { [filter]: { qos: 1 } });

    try {
      const watcher = await login("watcher");
      await watcher.subscribe("#", 1);
      const alice = await login("alice");
      const bob = await login("bob");
      const carol = await login("carol");

      await t.step(
        "a publish outside the user's write rules is acknowledged and dropped",
        async () => {
          await alice.publish("alice/a", "1", { qos: 1 });
          await alice.publish("bob/x", "2", { qos: 1 }); // PUBACK still arrives
          await alice.publish("forbidden", "3", { qos: 0 });
          await bob.publish("alice/a", "4", { qos: 1 });
          await carol.publish("sensors/carol/t", "5", { qos: 1 });
          await carol.publish("sensors/alice/t", "6", { qos: 1 });
          // Every publish before it was acknowledged, so whatever was routed came before it.
          await alice.publish("alice/done", "7", { qos: 1 });
          await watcher.inbox.waitFor((m) => m.topic === "alice/done");
          assert.deepEqual(watcher.inbox.messages.map((m) => m.payload), ["1", "5", "7"]);
          await broker.waitForLog(/client \S+ not authorized to publish to bob\/x/);
        },
      );

      await t.step({
        name: "mosquitto_pub is held to the same rules",
        ignore: ignoreWithoutCli(),
        fn: async () => {
          const auth = ["-u", "bob", "-P", "bob-pw", "-q", "1"];
          await mosquittoPub([
            ...hostArgs(broker.host, broker.port),
            ...auth,
            "-t",
            "alice/x",
            "-m",
            "no",
          ]);
          await mosquittoPub([
            ...hostArgs(broker.host, broker.port),
            ...auth,
            "-t",
            "bob/cli",
            "-m",
            "yes",
          ]);
          await watcher.inbox.waitFor((m) => m.topic === "bob/cli");
          assert.equal(watcher.inbox.on("alice/x").length, 0);
        },
      });

      await t.step(
        "wildcard subscriptions are granted only inside the readable topics",
        async () => {
          assert.deepEqual(await grants(carol, "sensors/carol/+"), [1]);
          assert.deepEqual(await grants(carol, "sensors/carol/#"), [1]);
          assert.deepEqual(await grants(carol, "sensors/+/t"), [0x80]);
          assert.deepEqual(await grants(carol, "#"), [0x80]);
          assert.deepEqual(await grants(bob, "alice/public/+"), [1]);
          assert.deepEqual(await grants(bob, "alice/+"), [0x80]);
          assert.deepEqual(await grants(bob, "bob/#"), [0x80], "write-only");
          const both = await subscribe(bob, { "alice/public/#": { qos: 0 }, "+/#": { qos: 0 } });
          assert.deepEqual(both, [0, 0x80], "each filter of a SUBSCRIBE on its own");
        },
      );

      await t.step({
        name: "mosquitto_sub receives what its user may read",
        ignore: ignoreWithoutCli(),
        fn: () =>
          scoped(async (defer) => {
            const sub = await mosquittoSub([
              ...hostArgs(broker.host, broker.port),
              ...["-u", "bob", "-P", "bob-pw", "-t", "alice/public/#", "-q", "1"],
            ]);
            defer(sub.stop);
            await alice.publish("alice/public/news", "hello bob", { qos: 1 });
            const [m] = await sub.waitForCount(1);
            assert.equal(m.topic, "alice/public/news");
            assert.equal(m.payload, "hello bob");
          }),
      });

      await t.step("retained messages reach only subscriptions the user may hold", async () => {
        await alice.publish("alice/public/r", "pub", { qos: 1, retain: true });
        await alice.publish("alice/secret/r", "secret", { qos: 1, retain: true });
        const dave = await login("bob");
        assert.deepEqual(await grants(dave, "alice/#"), [0x80]);
        assert.deepEqual(await grants(dave, "alice/public/#"), [1]);
        const m = await dave.inbox.waitFor((m) => m.topic === "alice/public/r");
        assert.equal(m.retain, true);
        await dave.sync();
        assert.deepEqual(dave.inbox.messages.map((m) => m.topic), ["alice/public/r"]);
      });

      await t.step(
        "a will is published only where its client may write",
        () =>
          scoped(async (defer) => {
            const willOf = async (user: string, topic: string) => {
              const c = await raw.RawClient.open(broker.host, broker.port);
              defer(c.close);
              await c.write(raw.connect({
                clientId: uid(user),
                username: user,
                password: `${user}-pw`,
                will: { topic, payload: `${user}'s will` },
              }));
              assert.equal((await c.expect(T.CONNACK)).returnCode, 0);
              await c.close(); // no DISCONNECT: the will is due
            };
            await willOf("bob", "alice/will");
            await broker.waitForLog(/will of bob-\S+ on alice\/will not authorized; dropped/);
            await willOf("carol", "sensors/carol/will");
            await watcher.inbox.waitFor((m) => m.topic === "sensors/carol/will");
            assert.equal(watcher.inbox.on("alice/will").length, 0);
          }),
      );

      await t.step("SIGHUP reloads the ACL and the password file", async () => {
        await bob.publish("news/1", "before", { qos: 1 });
        assert.equal(await connackCode(broker.url, { username: "erin", password: "erin-pw" }), 4);
        await Deno.writeTextFile(aclFile, ACL + "\nuser bob\ntopic write news/#\n");
        await Deno.writeTextFile(pwFile, await passwordFile([...USERS, "erin"]));
        Deno.kill(brokerPid(dir), "SIGHUP");
        await broker.waitForLog(/reloaded password-file, acl/);
        await bob.publish("news/2", "after", { qos: 1 });
        await watcher.inbox.waitFor((m) => m.topic === "news/2");
        assert.equal(watcher.inbox.on("news/1").length, 0);
        assert.equal(await connackCode(broker.url, { username: "erin", password: "erin-pw" }), 0);
      });

      await t.step(
        "after SIGHUP, subscriptions and queued messages the new ACL forbids are dropped",
        async () => {
          const reader = await login("bob");
          assert.deepEqual(await grants(reader, "alice/public/#"), [1]);
          // A persistent session of bob's, offline, with a message queued under the old rules.
          const sessionId = uid("bob-offline");
          const offline = await connectMqttJs(broker.url, {
            clientId: sessionId,
            clean: false,
            username: "bob",
            password: "bob-pw",
          });
          assert.deepEqual(await grants(offline, "alice/public/#"), [1]);
          await offline.close();
          await alice.publish("alice/public/a", "queued", { qos: 1 });
          await reader.inbox.waitFor((m) => m.topic === "alice/public/a");

          await Deno.writeTextFile(
            aclFile,
            ACL.replace("topic read alice/public/#\n", "") + "\nuser bob\ntopic write news/#\n",
          );
          Deno.kill(brokerPid(dir), "SIGHUP");
          await broker.waitForLog(/\d+ subscription\(s\) dropped under the reloaded ACL/);
          const readerId = reader.client.options.clientId!;
          assert.match(
            broker.logs(),
            new RegExp(`client ${readerId}: subscription alice/public/# dropped: no longer`),
          );
          await alice.publish("alice/public/b", "after", { qos: 1 });
          await watcher.inbox.waitFor((m) => m.topic === "alice/public/b");

          // Resumed: its subscription and its two queued messages (one from before the reload,
          // one queued meanwhile) are held to the new rules too.
          const back = await connectMqttJs(broker.url, {
            clientId: sessionId,
            clean: false,
            username: "bob",
            password: "bob-pw",
          });
          clients.push(back);
          await broker.waitForLog(
            new RegExp(
              `client ${sessionId}: 2 queued message\\(s\\) dropped: no longer authorized`,
            ),
          );
          await alice.publish("alice/public/c", "later", { qos: 1 });
          await watcher.inbox.waitFor((m) => m.topic === "alice/public/c");
          // Routed to all at once: after a round trip each has what it was sent.
          await reader.sync();
          await back.sync();
          // (alice/public/r is the retained message from an earlier step.)
          assert.deepEqual(reader.inbox.on().map((m) => m.topic), [
            "alice/public/r",
            "alice/public/a",
          ]);
          assert.deepEqual(back.inbox.on(), []);
        },
      );

      await t.step("a broken ACL on SIGHUP is reported and the old rules stay", async () => {
        await Deno.writeTextFile(aclFile, "user bob\nwhatever\n");
        Deno.kill(brokerPid(dir), "SIGHUP");
        await broker.waitForLog(/reload failed, keeping the previous settings: .*line 2/);
        await bob.publish("news/3", "still", { qos: 1 });
        await watcher.inbox.waitFor((m) => m.topic === "news/3");
      });
    } finally {
      for (const c of clients) await c.close();
      await broker.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
