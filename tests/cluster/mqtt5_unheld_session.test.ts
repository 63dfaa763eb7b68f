/**
 * A session record the shared store (Redis) has but the node does not hold in memory: the node
 * was killed and started again under the same id, and in a cluster sessions are read from the
 * store only when their client connects. Clean Start 0 reads the record: the session is present
 * with its queued message [MQTT-3.2.2-3] [MQTT-4.1.0-1]. Clean Start 1 reads it too, to end it:
 * its subscription leaves the store and routes nothing more [MQTT-3.1.2-4].
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import type { IConnackPacket } from "mqtt";
import { connectMqttJs } from "../helpers/mqttjs.ts";
import { waitFor } from "../helpers/wait.ts";
import { REDIS_IGNORE, startRedis } from "../helpers/redis.ts";
import { scoped, uid } from "../helpers/broker.ts";
import { type NodeProcess, spawnNode } from "./nodes.ts";

const opts = { ignore: REDIS_IGNORE, sanitizeOps: false, sanitizeResources: false };

Deno.test({
  ...opts,
  name:
    "cluster: a 5.0 session in the store but not in the restarted node's memory is read on Clean Start 0 (present, queued message delivered) and ended on Clean Start 1 [MQTT-3.2.2-3] [MQTT-3.1.2-4]",
  fn: () =>
    scoped(async (defer) => {
      const r = await startRedis();
      defer(() => r.kill());
      const args = [`--redis.port=${r.port}`];
      let n1: NodeProcess = await spawnNode("n1", args);
      defer(() => n1.kill());
      const restart = async () => {
        await n1.kill();
        n1 = await spawnNode("n1", args);
        await n1.waitForLog(/restored 0 sessions/);
      };
      const t = uid("unheld");
      const id = `${t}-sub`;
      const persistent = {
        protocolVersion: 5 as const,
        clientId: id,
        clean: false,
        properties: { sessionExpiryInterval: 600 },
      };
      const sub = await connectMqttJs(n1.url, persistent);
      await sub.subscribe(`${t}/#`, 1);
      await sub.close();
      const pub = await connectMqttJs(n1.url, { protocolVersion: 5 });
      await pub.publish(`${t}/m`, "queued", { qos: 1 });
      await pub.close();
      const queued = async () => Number((await r.cli("HLEN", `mqttwk:s:{${id}}:out`)).trim());
      await waitFor(async () => (await queued()) === 1, { what: "the message stored" });
      await restart();

      // Handlers before the CONNACK: the queued message follows it at once.
      const back = mqtt.connect(n1.url, { ...persistent, reconnectPeriod: 0 });
      defer(() => back.endAsync(true));
      back.on("error", () => {});
      const got: string[] = [];
      back.on("message", (topic, payload) => topic === `${t}/m` && got.push(String(payload)));
      const connack = await new Promise<IConnackPacket>((res) => back.once("connect", res));
      assert.equal(connack.sessionPresent, true, "the stored session was read");
      await waitFor(() => got.length > 0, { what: "the queued message", timeout: 10_000 });
      assert.deepEqual(got, ["queued"]);
      await back.endAsync();

      await restart();
      const fresh = await connectMqttJs(n1.url, { ...persistent, clean: true });
      await fresh.close();
      await waitFor(async () => (await r.cli("EXISTS", `mqttwk:s:{${id}}:sub`)).trim() === "0", {
        what: "the old subscription to leave the store",
      });
      const p2 = await connectMqttJs(n1.url, { protocolVersion: 5 });
      defer(() => p2.close());
      await p2.publish(`${t}/after`, "nobody", { qos: 1 });
      const check = await connectMqttJs(n1.url, persistent);
      defer(() => check.close());
      await check.sync();
      assert.deepEqual(check.inbox.messages, [], "nothing kept for the ended session");
    }),
});
